"""A step that is its whole transaction sends its COMMIT with its last statement (PostgreSQL)."""

import pytest
from django.db import connection, transaction

from audit import chain as auditchain
from audit.models import AuditEvent
from calls.models import CallSession
from calls.tests.test_faults import APOLOGY, refuse
from conftest import spoken

pytestmark = pytest.mark.postgres


class Sent:
    """The statements as they leave for the server."""

    def __init__(self) -> None:
        self.sql: list[str] = []

    def __call__(self, execute, sql, params, many, context):
        self.sql.append(sql)
        return execute(sql, params, many, context)


@pytest.mark.django_db(transaction=True)
def test_the_audit_insert_carries_the_commit_and_the_step_is_stored(call, demo_account):
    call.start()
    sent = Sent()
    with connection.execute_wrapper(sent):
        call.card("1234")
    last = sent.sql[-1]
    assert 'INSERT INTO "audit_auditevent"' in last and last.endswith("; COMMIT")
    assert connection.connection.info.transaction_status.name == "IDLE"
    assert CallSession.objects.get().state == CallSession.State.AWAITING_PIN
    assert AuditEvent.objects.filter(event="card_entered").exists()
    assert auditchain.verify(AuditEvent.objects.order_by("id")).intact


@pytest.mark.django_db(transaction=True)
def test_a_step_inside_a_larger_transaction_leaves_the_commit_to_it(call):
    call.start()
    sent = Sent()
    with (
        pytest.raises(RuntimeError),
        connection.execute_wrapper(sent),
        transaction.atomic(),
    ):
        call.card("1234")
        raise RuntimeError  # the outer transaction rolls back, the step with it
    assert not any(sql.endswith("COMMIT") for sql in sent.sql)
    assert CallSession.objects.get().state == CallSession.State.AWAITING_CARD
    assert not AuditEvent.objects.filter(event="card_entered").exists()


@pytest.mark.django_db(transaction=True)
def test_a_failed_last_statement_rolls_the_step_back(call):
    call.start()
    # The chain head's UPDATE goes out with the INSERT and its COMMIT: refuse that batch.
    with connection.execute_wrapper(refuse('UPDATE "SECUREGATHER_AUDITCHAINHEAD"')):
        response = call.card("1234")
    assert spoken(response) == APOLOGY
    assert CallSession.objects.get().state == CallSession.State.AWAITING_CARD
    assert not AuditEvent.objects.filter(event="card_entered").exists()
    assert auditchain.verify(AuditEvent.objects.order_by("id")).intact


@pytest.mark.django_db(transaction=True)
def test_a_step_run_with_autocommit_already_off_leaves_the_commit_to_its_caller(call):
    call.start()
    sent = Sent()
    connection.set_autocommit(False)
    try:
        with connection.execute_wrapper(sent):
            call.card("1234")
        assert not any(sql.endswith("COMMIT") for sql in sent.sql)
        connection.rollback()
    finally:
        connection.set_autocommit(True)
    assert CallSession.objects.get().state == CallSession.State.AWAITING_CARD
