"""A step is one transaction: its session and its audit rows commit together, or neither does."""

import pytest
from django.db import connection, transaction

from audit import chain as auditchain
from audit.models import AuditEvent
from calls.models import CallSession
from calls.tests.test_faults import APOLOGY, refuse
from conftest import spoken


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
    with connection.execute_wrapper(refuse('INSERT INTO "AUDIT_AUDITEVENT"')):
        response = call.card("1234")
    assert spoken(response) == APOLOGY
    assert CallSession.objects.get().state == CallSession.State.AWAITING_CARD
    assert not AuditEvent.objects.filter(event="card_entered").exists()
    assert auditchain.verify(AuditEvent.objects.order_by("id")).intact
