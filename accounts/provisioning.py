"""Accounts made outside the admin: one by `create_account`, many from a CSV file by
`import_accounts`. Each function does the change and writes its audit row in one transaction.

Credentials are sealed and digested as each row is read (Account.set_credentials), so the
plaintext of a card or PIN lives no longer than the parsing of its row. No message here holds a
value from the input: a problem names its line and column, and says what the column takes.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, TextIO

from django.db import transaction

from accounts.models import Account, is_four_digits
from audit.models import AuditEvent
from audit.phones import e164
from audit.system import record_command

# Two capital letters, then letters or digits: "AC87654321". A number of digits alone is
# refused, as it reads like a card's last 4 or a PIN put in the wrong column.
ACCOUNT_NUMBER = re.compile(r"[A-Z]{2}[A-Z0-9]{1,30}")
# Account.balance: 12 digits, 2 of them after the point.
CENT = Decimal("0.01")
BALANCE_LIMIT = Decimal(10) ** 10

COLUMNS = ("account_number", "balance", "card_last4", "pin", "caller_numbers")
# Rows per INSERT: under SQLite's 32,766 bound variables with room to spare.
BATCH = 500


class Invalid(ValueError):
    """What a value must be, in words that never repeat it."""


def account_number(text: str) -> str:
    number = text.strip()
    if not ACCOUNT_NUMBER.fullmatch(number):
        raise Invalid(
            "an account number is 2 capital letters then up to 30 capital letters or digits, "
            "e.g. AC87654321"
        )
    return number


def balance(text: str) -> Decimal:
    try:
        amount = Decimal(text.strip())
    except InvalidOperation:
        amount = Decimal("NaN")
    if not amount.is_finite() or amount != amount.quantize(CENT) or abs(amount) >= BALANCE_LIMIT:
        raise Invalid("a balance is an amount such as 12.55, at most 2 digits after the point")
    return amount


def four_digits(text: str, what: str) -> str:
    if not is_four_digits(text):
        raise Invalid(f"{what} is exactly 4 digits 0-9")
    return text


def caller_numbers(texts: Iterable[str]) -> list[str]:
    """Each number in E.164, in any common spelling; duplicates once."""
    numbers: list[str] = []
    for position, text in enumerate(texts, start=1):
        number = e164(text)
        if number is None:
            raise Invalid(
                f"caller number {position} is not a phone number with its country code, "
                "e.g. +1 555 123 4567"
            )
        if number not in numbers:
            numbers.append(number)
    return numbers


def record_account_command(account: Account, action: str, fields: list[str]) -> None:
    """An account a command saved, as the admin records one (``record_changed``, its number, the
    fields and ``credentials`` when the card and PIN were set), by the OS user who ran it: card
    and PIN are credentials. Call it in the save's transaction."""
    record_command(
        AuditEvent.Event.RECORD_CHANGED,
        AuditEvent.Outcome.SUCCESS,
        account_number=account.number,
        model="accounts.Account",
        action=action,
        fields=fields,
    )


class AccountExists(Exception):
    pass


def create_account(
    number: str, amount: Decimal, callers: list[str], card_last4: str, pin: str
) -> Account:
    """A new account with sealed credentials, and its ``record_changed`` row."""
    account = Account(number=number, balance=amount, caller_numbers=callers)
    account.set_credentials(card_last4, pin)
    with transaction.atomic():
        if Account.objects.filter(number=number).exists():
            raise AccountExists(f"Account {number} already exists.")
        account.save()
        record_account_command(
            account, "added", ["balance", "caller_numbers", "number", "credentials"]
        )
    return account


# --- Many accounts from a CSV file.


@dataclass(frozen=True)
class Problem:
    line: int
    column: str
    reason: str

    def __str__(self) -> str:
        where = f"line {self.line}" + (f", column {self.column}" if self.column else "")
        return f"{where}: {self.reason}"


class ImportRefused(Exception):
    """The file has problems: nothing was written."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(f"{len(problems)} problem(s); no account was imported")
        self.problems = problems


@dataclass
class Imported:
    accounts: int = 0
    with_callers: int = 0
    dry_run: bool = False


def read_accounts(stream: TextIO) -> Iterator[tuple[int, Account | Problem]]:
    """Each data row's line and its unsaved Account with sealed credentials, or a Problem per
    bad cell."""
    reader = csv.reader(stream)
    header = next(reader, None)
    if header is None:
        yield 1, Problem(1, "", "the file is empty: its first line names the columns")
        return
    names = [name.strip().lower() for name in header]
    missing = [name for name in COLUMNS if name not in names]
    if missing or len(set(names)) != len(names) or len(names) != len(COLUMNS):
        yield (
            1,
            Problem(
                1,
                "",
                f"the header names the columns {','.join(COLUMNS)}, each once"
                + (f"; it lacks {', '.join(missing)}" if missing else ""),
            ),
        )
        return
    where = {name: names.index(name) for name in COLUMNS}
    for cells in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in cells):
            continue  # a blank line, often the last
        if len(cells) != len(names):
            yield (
                line,
                Problem(line, "", f"{len(cells)} cells, where the header names {len(names)}"),
            )
            continue
        for item in _account(line, {name: cells[i] for name, i in where.items()}):
            yield line, item


def _account(line: int, row: dict[str, str]) -> Iterator[Account | Problem]:
    problems = []
    readers: dict[str, Callable[[str], Any]] = {
        "account_number": account_number,
        "balance": balance,
        "card_last4": lambda text: four_digits(text, "a card's last 4"),
        "pin": lambda text: four_digits(text, "a PIN"),
        # Several numbers in one cell, separated by ";"; an empty cell for none.
        "caller_numbers": lambda text: caller_numbers(n for n in text.split(";") if n.strip()),
    }
    values: dict[str, Any] = {}
    for column, read in readers.items():
        try:
            values[column] = read(row[column])
        except Invalid as exc:
            problems.append(Problem(line, column, str(exc)))
    if problems:
        yield from problems
        return
    account = Account(
        number=values["account_number"],
        balance=values["balance"],
        caller_numbers=values["caller_numbers"],
    )
    account.set_credentials(values["card_last4"], values["pin"])
    yield account


def import_accounts(stream: TextIO, *, source: str, dry_run: bool = False) -> Imported:
    """Every account in the CSV ``stream``, or none: ImportRefused lists each problem found.

    One ``accounts_imported`` row records how many, from where and by whom; never which
    accounts or what they hold.
    """
    accounts: list[Account] = []
    problems: list[Problem] = []
    line_of: dict[str, int] = {}
    for line, item in read_accounts(stream):
        if isinstance(item, Problem):
            problems.append(item)
        elif item.number in line_of:
            problems.append(
                Problem(
                    line, "account_number", f"repeats the number on line {line_of[item.number]}"
                )
            )
        else:
            line_of[item.number] = line
            accounts.append(item)
    for start in range(0, len(accounts), BATCH):
        chunk = [account.number for account in accounts[start : start + BATCH]]
        for number in Account.objects.filter(number__in=chunk).values_list("number", flat=True):
            problems.append(Problem(line_of[number], "account_number", "already exists"))
    if problems:
        order = {name: i for i, name in enumerate(("", *COLUMNS))}
        raise ImportRefused(sorted(problems, key=lambda p: (p.line, order[p.column])))
    result = Imported(
        accounts=len(accounts),
        with_callers=sum(1 for account in accounts if account.caller_numbers),
        dry_run=dry_run,
    )
    if dry_run:
        return result
    with transaction.atomic():
        Account.objects.bulk_create(accounts, batch_size=BATCH)
        record_command(
            AuditEvent.Event.ACCOUNTS_IMPORTED,
            AuditEvent.Outcome.SUCCESS,
            model="accounts.Account",
            rows=len(accounts),
            source=source,
        )
    return result
