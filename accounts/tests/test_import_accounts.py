import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.models import Account
from accounts.resolvers import resolve
from audit.models import AuditEvent

pytestmark = pytest.mark.django_db

HEADER = "account_number,balance,card_last4,pin,caller_numbers\n"


def csv_file(tmp_path, *rows: str, header: str = HEADER):
    path = tmp_path / "accounts.csv"
    path.write_text(header + "".join(row + "\n" for row in rows))
    return path


def import_accounts(*args, stdin=None) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    extra = {"stdin": stdin} if stdin is not None else {}
    call_command("import_accounts", *args, stdout=out, stderr=err, **extra)
    return out.getvalue(), err.getvalue()


def refused(*args, stdin=None) -> tuple[str, str]:
    """stderr's problem lines and the CommandError of an import that must fail."""
    err = io.StringIO()
    extra = {"stdin": stdin} if stdin is not None else {}
    with pytest.raises(CommandError) as failed:
        call_command("import_accounts", *args, stdout=io.StringIO(), stderr=err, **extra)
    return err.getvalue(), str(failed.value)


def test_imports_each_row_sealed_and_resolvable(tmp_path, monkeypatch):
    monkeypatch.setattr("getpass.getuser", lambda: "deploy")
    path = csv_file(
        tmp_path,
        "AC20000001,12.55,8264,5937,",
        "AC20000002,0.10,7391,2846,+1 (555) 123-0000;+44 20 7946 0958",
    )
    out, err = import_accounts(str(path))
    assert err == ""
    assert out.startswith(
        "Imported 2 accounts (1 with caller numbers) from accounts.csv in "
    ) and out.endswith("s.\n")
    for digits in ("8264", "5937", "7391", "2846"):
        assert digits not in out
    assert resolve("8264", "5937", "").account_number == "AC20000001"
    second = Account.objects.get(number="AC20000002")
    assert second.caller_numbers == ["+15551230000", "+442079460958"]
    assert resolve("7391", "2846", "+15551230000").balance == second.balance
    row = AuditEvent.objects.get(event="accounts_imported")
    assert (row.actor, row.channel, row.outcome, row.account_number) == (
        "deploy",
        "system",
        "success",
        "",
    )
    assert row.detail == {"model": "accounts.Account", "rows": 2, "source": "accounts.csv"}


def test_reads_standard_input(tmp_path):
    stdin = io.StringIO(HEADER + "AC20000001,1.00,8264,5937,\n")
    out, _ = import_accounts("-", stdin=stdin)
    assert "Imported 1 accounts (0 with caller numbers) from stdin" in out
    assert Account.objects.filter(number="AC20000001").exists()


def test_a_spreadsheets_byte_order_mark_and_column_order_are_accepted(tmp_path):
    path = tmp_path / "accounts.csv"
    path.write_bytes(
        b"\xef\xbb\xbfpin,card_last4,account_number,caller_numbers,balance\r\n"
        b"5937,8264,AC20000001,,1.00\r\n"
    )
    import_accounts(str(path))
    assert resolve("8264", "5937", "").account_number == "AC20000001"


def test_dry_run_checks_every_row_and_writes_nothing(tmp_path):
    path = csv_file(tmp_path, "AC20000001,12.55,8264,5937,", "AC20000002,1,7391,2846,+15551230000")
    out, _ = import_accounts(str(path), "--dry-run")
    assert out == (
        "Dry run: 2 accounts (1 with caller numbers) would be imported from accounts.csv; "
        "nothing was written.\n"
    )
    assert not Account.objects.exists()
    assert not AuditEvent.objects.filter(event="accounts_imported").exists()


def test_one_bad_row_imports_nothing_and_each_problem_names_line_and_column(tmp_path):
    path = csv_file(
        tmp_path,
        "AC20000001,12.55,8264,5937,",
        "12345,1.00,82a4,59370,+15551230000;5551230000",
        "AC20000003,1.005,7391,2846,",
    )
    problems, error = refused(str(path))
    assert problems.splitlines() == [
        "line 3, column account_number: an account number is 2 capital letters then up to 30 "
        "capital letters or digits, e.g. AC87654321",
        "line 3, column card_last4: a card's last 4 is exactly 4 digits 0-9",
        "line 3, column pin: a PIN is exactly 4 digits 0-9",
        "line 3, column caller_numbers: caller number 2 is not a phone number with its country "
        "code, e.g. +1 555 123 4567",
        "line 4, column balance: a balance is an amount such as 12.55, at most 2 digits after "
        "the point",
    ]
    assert error == "No account imported: 5 problem(s) in accounts.csv."
    # No value from the file comes back, good or bad.
    for value in ("82a4", "59370", "5551230000", "8264", "5937", "12345", "1.005"):
        assert value not in problems + error
    assert not Account.objects.exists()
    assert not AuditEvent.objects.filter(event="accounts_imported").exists()


def test_numbers_repeated_in_the_file_or_already_held_are_refused(tmp_path, demo_account):
    path = csv_file(
        tmp_path,
        "AC20000001,1,8264,5937,",
        "AC12345678,1,8264,5937,",
        "AC20000001,1,7391,2846,",
    )
    problems, error = refused(str(path))
    assert problems.splitlines() == [
        "line 3, column account_number: already exists",
        "line 4, column account_number: repeats the number on line 2",
    ]
    assert error == "No account imported: 2 problem(s) in accounts.csv."
    assert Account.objects.count() == 1


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("", "line 1: the file is empty: its first line names the columns"),
        (
            "number,balance,card,pin\nAC1,1,8264,5937\n",
            "line 1: the header names the columns account_number,balance,card_last4,pin,"
            "caller_numbers, each once; it lacks account_number, card_last4, caller_numbers",
        ),
        (HEADER + "AC20000001,1,8264\n", "line 2: 3 cells, where the header names 5"),
    ],
)
def test_a_file_of_the_wrong_shape_says_what_shape_it_takes(tmp_path, content, problem):
    path = tmp_path / "accounts.csv"
    path.write_text(content)
    problems, _ = refused(str(path))
    assert problems == problem + "\n"


def test_a_missing_file_or_one_not_utf8_is_one_line(tmp_path):
    _, error = refused(str(tmp_path / "nowhere.csv"))
    assert error == f"Cannot read {tmp_path / 'nowhere.csv'}: No such file or directory."
    path = tmp_path / "latin1.csv"
    path.write_bytes(HEADER.encode() + "AC20000001,1,8264,5937,\xe9\n".encode("latin-1"))
    _, error = refused(str(path))
    assert error == "latin1.csv is not UTF-8 text: save the CSV as UTF-8."


def test_round_trips_ten_thousand_rows(tmp_path):
    rows = [
        f"AC3{n:07d},{n % 1000}.{n % 100:02d},{n % 10000:04d},{(n * 7919) % 10000:04d},"
        + (f"+1555{n:07d}" if n % 3 == 0 else "")
        for n in range(10_000)
    ]
    out, _ = import_accounts(str(csv_file(tmp_path, *rows)))
    assert out.startswith("Imported 10000 accounts (3334 with caller numbers)")
    accounts = {account.number: account for account in Account.objects.all()}
    assert len(accounts) == 10_000
    for n in range(10_000):
        account = accounts[f"AC3{n:07d}"]
        assert account.unseal("card_last4") == f"{n % 10000:04d}"
        assert account.check_pin(f"{(n * 7919) % 10000:04d}")
        assert str(account.balance) == f"{n % 1000}.{n % 100:02d}"
        assert account.caller_numbers == ([f"+1555{n:07d}"] if n % 3 == 0 else [])
    assert AuditEvent.objects.get(event="accounts_imported").detail["rows"] == 10_000
