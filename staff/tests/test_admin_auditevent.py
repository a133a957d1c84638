import csv
import io
import re
from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.models import AuditEvent
from conftest import make_staff, verified_client
from staff.admin import CappedCountPaginator

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/audit/auditevent/"
EXPORT = "/admin/audit/auditevent/export.csv"


def streamed_csv(response) -> list[dict[str, str]]:
    assert response.streaming
    body = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(body)))


@pytest.fixture
def rows():
    AuditEvent.record("call_started", "info", call_sid="CA" + "1" * 32, caller="+15005550006")
    AuditEvent.record("not_found", "failure", call_sid="CA" + "1" * 32, account_number="")
    AuditEvent.record("verified", "success", call_sid="CA" + "2" * 32, account_number="AC1")


def test_superuser_can_neither_add_change_nor_delete_an_audit_row(admin_client, rows):
    row = AuditEvent.objects.get(event="call_started")
    change = f"{CHANGELIST}{row.pk}/change/"
    assert admin_client.get(f"{CHANGELIST}add/").status_code == 403
    assert admin_client.post(change, {"outcome": "success"}).status_code == 403
    assert admin_client.get(f"{CHANGELIST}{row.pk}/delete/").status_code == 403
    assert admin_client.post(f"{CHANGELIST}{row.pk}/delete/", {"post": "yes"}).status_code == 403
    response = admin_client.post(
        CHANGELIST, {"action": "delete_selected", "_selected_action": [row.pk], "post": "yes"}
    )
    # The list offers no action: naming one is refused, and audited as any refusal is.
    assert response.status_code == 403
    assert AuditEvent.objects.filter(event="unauthorized", detail__method="POST").exists()
    page = admin_client.get(change).content.decode()
    assert 'name="_save"' not in page and "/delete/" not in page
    assert AuditEvent.objects.get(pk=row.pk).outcome == "info"
    assert AuditEvent.objects.filter(pk=row.pk).exists()


def test_changelist_offers_no_actions_and_no_add_button(admin_client, rows):
    page = admin_client.get(CHANGELIST).content.decode()
    assert "action-checkbox" not in page
    assert f"{CHANGELIST}add/" not in page


def test_filters_search_and_date_hierarchy(admin_client, rows):
    page = admin_client.get(CHANGELIST, {"event": "verified"}).content.decode()
    assert "CA" + "2" * 32 in page and "CA" + "1" * 32 not in page
    page = admin_client.get(CHANGELIST, {"q": "CA" + "1" * 32}).content.decode()
    assert "CA" + "2" * 32 not in page and page.count("CA" + "1" * 32) >= 2
    page = admin_client.get(CHANGELIST, {"q": "AC1"}).content.decode()
    assert "CA" + "2" * 32 in page and "CA" + "1" * 32 not in page
    page = admin_client.get(CHANGELIST, {"outcome": "failure"}).content.decode()
    assert "not_found" in page
    assert '<nav class="toplinks">' in page  # the date hierarchy
    year = AuditEvent.objects.get(event="verified").created_at.year
    page = admin_client.get(CHANGELIST, {"created_at__year": year + 1}).content.decode()
    assert "CA" + "2" * 32 not in page


def test_export_streams_the_filtered_rows_and_is_audited(admin_client, rows):
    response = admin_client.get(EXPORT, {"q": "CA" + "1" * 32})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="audit-log-')
    exported = streamed_csv(response)
    assert [r["event"] for r in exported] == ["call_started", "not_found"]
    assert exported[0]["caller"] == "**********06"
    assert exported[0]["mac"].startswith("test2:")
    export = AuditEvent.objects.filter(event="exported").get()
    assert (export.actor, export.channel) == ("root", "admin")
    assert export.detail["filters"] == {"q": "CA" + "1" * 32}


def test_an_export_whose_querystring_holds_a_nul_is_audited(admin_client, rows):
    # The filters are kept on the export's row; PostgreSQL's jsonb refuses a NUL, and a lost
    # row would turn the export into a 500.
    response = admin_client.get(EXPORT, {"o": "\x00", "all": "a\x00b"})
    assert response.status_code == 200
    streamed_csv(response)
    export = AuditEvent.objects.filter(event="exported").get()
    assert export.detail["filters"] == {"o": "\ufffd", "all": "a\ufffdb"}


def test_export_link_keeps_the_changelist_filters(admin_client, rows):
    page = admin_client.get(CHANGELIST, {"event": "verified"}).content.decode()
    assert f'href="{EXPORT}?event=verified"' in page


def test_export_neutralises_spreadsheet_formulas(admin_client, client_ua_formula):
    exported = streamed_csv(admin_client.get(EXPORT, {"event": "signature_rejected"}))
    assert exported[0]["user_agent"] == '\'=HYPERLINK("http://evil")'


@pytest.fixture
def client_ua_formula(rf):
    request = rf.post("/voice/", HTTP_USER_AGENT='=HYPERLINK("http://evil")')
    AuditEvent.record("signature_rejected", "failure", request=request)


def test_export_needs_its_own_permission():
    viewer = make_staff("vera")
    viewer.user_permissions.add(Permission.objects.get(codename="view_auditevent"))
    client = verified_client(viewer)
    assert client.get(CHANGELIST).status_code == 200
    assert "Export CSV" not in client.get(CHANGELIST).content.decode()
    assert client.get(EXPORT).status_code == 403
    assert not AuditEvent.objects.filter(event="exported").exists()


def test_ops_can_export(ops_client, rows):
    assert "Export CSV" in ops_client.get(CHANGELIST).content.decode()
    assert len(streamed_csv(ops_client.get(EXPORT))) == AuditEvent.objects.count() - 1
    # The export's own row came after the rows it streamed.
    assert AuditEvent.objects.order_by("id").last().event == "exported"


def test_export_needs_a_signed_in_staff_member(rows):
    response = Client().get(EXPORT)
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


def test_search_matches_exactly(admin_client, rows):
    AuditEvent.record(
        "record_viewed", "info", actor="olive", channel="admin", call_sid="CA" + "3" * 32
    )
    page = admin_client.get(CHANGELIST, {"q": "ca" + "1" * 32}).content.decode()
    assert "CA" + "1" * 32 not in page  # CallSids are case-sensitive, as Twilio spells them
    assert "CA" + "3" * 32 not in admin_client.get(CHANGELIST, {"q": "OLIVE"}).content.decode()
    assert "CA" + "3" * 32 in admin_client.get(CHANGELIST, {"q": "olive"}).content.decode()
    assert "CA" + "2" * 32 not in admin_client.get(CHANGELIST, {"q": "ac1"}).content.decode()


def query_plan(sql: str) -> str:
    with connection.cursor() as cursor:
        explain = "EXPLAIN" if connection.vendor == "postgresql" else "EXPLAIN QUERY PLAN"
        cursor.execute(f"{explain} {sql}")
        return "\n".join(str(row) for row in cursor.fetchall())


@pytest.fixture
def busy_log(rows):
    """Thousands of call rows (raw: the plans need rows, not a chain)."""
    raw_rows(*[timezone.now()] * 5000)
    if connection.vendor == "postgresql":
        # As autovacuum keeps them. Nothing runs ANALYZE on a SQLite file: its planner goes by
        # its own rules, as in production.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE audit_auditevent")


def test_search_reads_indexes_not_the_whole_log(admin_client, busy_log):
    """A year of rows is millions: every query of a search must find them through indexes."""
    with CaptureQueriesContext(connection) as queries:
        assert admin_client.get(CHANGELIST, {"q": "CA" + "1" * 32}).status_code == 200
    searches = [q["sql"] for q in queries if "auditevent" in q["sql"] and "actor" in q["sql"]]
    assert len(searches) >= 2  # the page's rows and their count, at least
    for sql in searches:
        plan = query_plan(sql)
        assert "Seq Scan on audit_auditevent" not in plan, plan
        assert "SCAN audit_auditevent" not in plan, plan
        # Nor an index read end to end, its rows filtered on the searched columns.
        filters = [line for line in plan.splitlines() if "Filter:" in line]
        assert not [line for line in filters if "call_sid" in line], plan


def raw_rows(*created: datetime) -> None:
    """Call rows at the given times, inserted raw (the admin reads rows, not the chain)."""
    columns = "created_at, event, outcome, channel, actor, call_sid, caller, detail, prev_mac, mac"
    with connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO audit_auditevent ({columns}, account_number, key_id, user_agent) "  # noqa: S608
            "VALUES (%s, 'card_entered', 'success', 'voice', 'twilio', %s, '', '{}', '', '', '', "
            "'', '')",
            [(at, f"CA{i:032x}") for i, at in enumerate(created)],
        )


def day_links(page: str) -> list[int]:
    return sorted(int(day) for day in set(re.findall(r"created_at__day=(\d+)", page)))


def changelist_reads(client, params: dict | None = None) -> tuple[str, list[str]]:
    """The changelist page, and its queries of the audit table (read before the next request,
    which clears Django's query log)."""
    with CaptureQueriesContext(connection) as queries:
        page = client.get(CHANGELIST, params or {}).content.decode()
    return page, [q["sql"] for q in queries if "auditevent" in q["sql"]]


def test_date_hierarchy_lists_the_calendar_without_reading_every_row(admin_client):
    raw_rows(datetime(2025, 12, 30, 9, tzinfo=UTC), datetime(2026, 3, 2, 9, tzinfo=UTC))
    raw_rows(datetime(2026, 3, 5, 23, tzinfo=UTC))
    page, reads = changelist_reads(admin_client)
    assert "created_at__year=2025" in page and "created_at__year=2026" in page
    year, more = changelist_reads(admin_client, {"created_at__year": 2026})
    assert "created_at__month=3" in year and "created_at__month=2" not in year
    reads += more
    march, more = changelist_reads(admin_client, {"created_at__year": 2026, "created_at__month": 3})
    assert day_links(march) == [2, 3, 4, 5]  # the 3rd and 4th have no rows, and are listed
    reads += more
    assert reads and not [sql for sql in reads if "DISTINCT" in sql.upper()]


@pytest.mark.parametrize(("zone", "days"), [("UTC", [2, 3, 4, 5]), ("America/New_York", [1, 2])])
def test_date_hierarchy_days_are_the_local_ones(admin_client, settings, zone, days):
    settings.TIME_ZONE = zone
    # 03:00 UTC on 2 March is 22:00 on 1 March in New York.
    raw_rows(
        datetime(2026, 3, 2, 3, tzinfo=UTC),
        datetime(2026, 3, 5 if zone == "UTC" else 2, 12, tzinfo=UTC),
    )
    page, _ = changelist_reads(admin_client, {"created_at__year": 2026, "created_at__month": 3})
    assert day_links(page) == days


def test_the_count_stops_at_the_paginators_limit(admin_client, monkeypatch):
    monkeypatch.setattr(CappedCountPaginator, "LIMIT", 5)
    raw_rows(*[timezone.now()] * 12)
    with CaptureQueriesContext(connection) as queries:
        page = admin_client.get(CHANGELIST).content.decode()
    assert "more than 5 audit events: filter or search" in page
    [count] = [q["sql"] for q in queries if "COUNT" in q["sql"] and "auditevent" in q["sql"]]
    assert "LIMIT 6" in count
    page = admin_client.get(CHANGELIST, {"q": "twilio"}).content.decode()
    assert "more than 5 results" in page and "6 results" not in page  # beside the search bar
    monkeypatch.setattr(CappedCountPaginator, "LIMIT", 12)
    page = admin_client.get(CHANGELIST, {"q": "twilio"}).content.decode()
    assert "12 audit events" in page and "12 results" in page and "more than" not in page


def test_export_records_every_value_of_a_repeated_filter(admin_client, rows):
    response = admin_client.get(EXPORT, {"event__exact": ["verified", "call_started"], "q": "AC1"})
    assert [r["event"] for r in streamed_csv(response)] == ["verified"]
    export = AuditEvent.objects.filter(event="exported").get()
    assert export.detail["filters"] == {"event__exact": ["verified", "call_started"], "q": "AC1"}


def test_export_escapes_a_leading_apostrophe_so_one_can_be_stripped(admin_client, rf):
    sent = ["'quoted", "''twice", "=1+1", "'=1+1", "Twilio"]
    for header in sent:
        request = rf.post("/voice/", HTTP_USER_AGENT=header)
        AuditEvent.record("signature_rejected", "failure", request=request)
    exported = streamed_csv(admin_client.get(EXPORT, {"event": "signature_rejected"}))
    cells = [r["user_agent"] for r in exported]
    assert cells == ["''quoted", "'''twice", "'=1+1", "''=1+1", "Twilio"]
    # The rule an assessor applies: a cell that begins with an apostrophe had one added.
    assert [cell.removeprefix("'") for cell in cells] == sent


def test_reading_the_audit_log_is_audited(ops_client, rows):
    # PCI DSS 10.2.1.3: every access to the audit log, its list and each row's page.
    newest = AuditEvent.objects.order_by("-id").first()
    page = ops_client.get(CHANGELIST, {"outcome": "info"})
    assert page.status_code == 200
    # Written once the page was rendered: not on the page it records.
    assert [row.event for row in page.context_data["cl"].result_list] == ["call_started"]
    assert ops_client.get(f"{CHANGELIST}{newest.pk}/change/").status_code == 200
    views = AuditEvent.objects.filter(event="record_viewed").order_by("id")
    assert [(v.actor, v.channel, v.outcome, v.detail) for v in views] == [
        (
            "olive",
            "admin",
            "info",
            {"model": "audit.AuditEvent", "filters": {"outcome": "info"}},
        ),
        (
            "olive",
            "admin",
            "info",
            {"model": "audit.AuditEvent", "object_id": str(newest.pk)},
        ),
    ]
    # A refused filter opens nothing: no row.
    ops_client.get(CHANGELIST, {"caller__startswith": "+1"})
    assert AuditEvent.objects.filter(event="record_viewed").count() == 2


def test_a_page_that_shows_no_row_writes_no_view_row(ops_client, rows):
    # A bad filter's redirect to ?e=1 and a row that is not there open nothing: "record_viewed"
    # would claim a reading that never happened.
    assert ops_client.get(CHANGELIST, {"created_at__gte": "not a date"}).status_code == 302
    missing = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() + 1000
    assert ops_client.get(f"{CHANGELIST}{missing}/change/").status_code == 302
    assert not AuditEvent.objects.filter(event="record_viewed").exists()
