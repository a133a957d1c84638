"""Faults: the database gone or failing mid-step, a resolver timing out or erroring. A step is one
transaction: its session and its audit rows commit together, or neither does."""

import pytest
from django.db import OperationalError, connection, transaction

from accounts.models import Lockout
from audit import chain as auditchain
from audit.models import AuditEvent
from calls.models import CallSession
from conftest import hangs_up, spoken

APOLOGY = "Sorry, we cannot take your details right now. Please call again later. Goodbye."
TRY_LATER = "Sorry, we cannot check your details right now. Please try later. Goodbye."
REFUSED = "connection to server failed: " + "refused"


def refuse(sql_prefix=""):
    """A query wrapper failing every statement (or those starting with sql_prefix) as a dead
    server does, before it reaches the database."""

    def execute(execute, sql, params, many, context):
        if sql.lstrip().upper().startswith(sql_prefix):
            raise OperationalError(REFUSED)
        return execute(sql, params, many, context)

    return execute


# Transactional: the refused ROLLBACK would otherwise poison the test's own transaction.
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("step", ["start", "card", "pin", "status"])
def test_a_database_that_refuses_every_query_gets_an_apology(call, demo_account, plaintext, step):
    call.start()
    call.card("1234")
    with connection.execute_wrapper(refuse()):
        response = {
            "start": call.start,
            "card": lambda: call.card("1234"),
            "pin": lambda: call.pin("4321"),
            "status": call.status,
        }[step]()
    assert response.status_code == 200
    if step != "status":
        assert spoken(response) == APOLOGY and hangs_up(response)
    log = plaintext.caplog.text
    assert "failed: OperationalError" in log and "could not audit the failure" in log
    assert REFUSED not in log  # the type and the frames, never the message
    plaintext.assert_absent("1234", "4321")


@pytest.mark.django_db
def test_an_error_mid_step_rolls_the_step_back_and_is_audited(call, plaintext):
    call.start()
    # The session's write fails; the audit chain's own UPDATE (of its head) still works.
    with connection.execute_wrapper(refuse("UPDATE CALLS_CALLSESSION")):
        response = call.card("8264")
    assert spoken(response) == APOLOGY
    session = CallSession.objects.get()
    assert (session.state, session.card) == ("awaiting_card", None)
    event = AuditEvent.objects.get(event="step_failed")
    assert event.detail == {"path": "/voice/card/", "error": "OperationalError"}
    assert not AuditEvent.objects.filter(event="card_entered").exists()
    plaintext.assert_absent("8264")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_unreachable_database_server_gets_an_apology(call, caplog):
    saved = dict(connection.settings_dict)
    connection.close()
    # Nothing listens on this port: the connection is refused as by a server that is down.
    connection.settings_dict.update(PORT="8299", OPTIONS={**saved["OPTIONS"], "connect_timeout": 2})
    try:
        response = call.start()
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(saved)
    assert spoken(response) == APOLOGY and hangs_up(response)
    assert "failed: OperationalError" in caplog.text
    assert not CallSession.objects.exists()


class TimesOut:
    def resolve(self, card_last4, pin, caller):
        raise TimeoutError(f"backend took too long for {card_last4}")


class BrokenQuery:
    def resolve(self, card_last4, pin, caller):
        with connection.cursor() as cursor:
            cursor.execute("SELECT * FROM no_such_table WHERE card = %s", [card_last4])


@pytest.mark.django_db
@pytest.mark.parametrize("backend", ["TimesOut", "BrokenQuery"])
def test_a_failing_resolver_is_unavailable_not_a_wrong_pin(
    call, demo_account, plaintext, settings, backend
):
    settings.SECUREGATHER_RESOLVER = f"calls.tests.test_faults.{backend}"
    call.start()
    call.card("1234")
    response = call.pin("4321")
    assert spoken(response) == TRY_LATER and hangs_up(response)
    # The call's own transaction survived the backend's error: the outcome and audit are saved.
    assert CallSession.objects.get().outcome == "resolver_unavailable"
    events = set(AuditEvent.objects.values_list("event", flat=True))
    assert "resolver_unavailable" in events
    assert not events & {"not_found", "step_failed", "locked_out"}
    assert not any(row.failures for row in Lockout.objects.all())
    # SQLite calls a missing table an OperationalError, PostgreSQL a ProgrammingError.
    logged = plaintext.caplog.text
    assert "resolver failed: " + ("TimeoutError" if backend == "TimesOut" else "") in logged
    assert "backend took too long" not in logged
    plaintext.assert_absent("1234", "4321")


@pytest.mark.django_db(transaction=True)
def test_with_the_language_menu_on_a_dead_database_still_gets_an_apology(call, settings):
    settings.SECUREGATHER_OFFER_LANGUAGES = True
    call.start()
    with connection.execute_wrapper(refuse()):
        response = call.card("8264")
    assert spoken(response) == APOLOGY and hangs_up(response)


@pytest.mark.django_db(transaction=True)
def test_a_step_stores_its_session_with_its_audit_rows(call, demo_account):
    call.start()
    call.card("1234")
    assert CallSession.objects.get().state == CallSession.State.AWAITING_PIN
    assert AuditEvent.objects.filter(event="card_entered").exists()
    assert auditchain.verify(AuditEvent.objects.order_by("id")).intact


@pytest.mark.django_db(transaction=True)
def test_a_step_inside_a_larger_transaction_rolls_back_with_it(call):
    call.start()
    with pytest.raises(RuntimeError), transaction.atomic():
        call.card("1234")
        raise RuntimeError  # the outer transaction rolls back, the step with it
    assert CallSession.objects.get().state == CallSession.State.AWAITING_CARD
    assert not AuditEvent.objects.filter(event="card_entered").exists()


@pytest.mark.django_db(transaction=True)
def test_a_failed_last_statement_rolls_the_step_back(call):
    call.start()
    # The audit rows' INSERT comes last, after the session's UPDATE and the chain head's.
    with connection.execute_wrapper(refuse("INSERT INTO AUDIT_AUDITEVENT")):
        response = call.card("1234")
    assert spoken(response) == APOLOGY
    assert CallSession.objects.get().state == CallSession.State.AWAITING_CARD
    assert not AuditEvent.objects.filter(event="card_entered").exists()
    assert auditchain.verify(AuditEvent.objects.order_by("id")).intact
