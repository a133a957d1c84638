from datetime import timedelta
from unittest import mock

import pytest
from django.db import connection, transaction
from django.db.models.sql.compiler import SQLCompiler
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Lockout
from audit.models import AuditEvent
from calls.models import CallSession
from securegather import statements

pytestmark = pytest.mark.django_db

SID = "CA" + "5" * 32

LOCKED = statements.Query(
    lambda sid: CallSession.objects.select_for_update().filter(call_sid=sid).order_by()
)
BY_SCOPE = statements.Query(
    lambda scope: Lockout.objects.filter(scope=scope).exclude(key="").order_by("key")
)


def session() -> CallSession:
    made = CallSession.objects.create(call_sid=SID, caller="+15005550006", tries=2)
    made.seal("card", "8264")
    made.save()
    return made


def field_values(instance: object) -> dict[str, object]:
    return {f.attname: getattr(instance, f.attname) for f in type(instance)._meta.concrete_fields}


def test_a_compiled_query_loads_the_instance_the_orm_loads():
    session()
    with transaction.atomic():
        loaded = LOCKED.first(SID)
    expected = CallSession.objects.get(call_sid=SID)
    assert field_values(loaded) == field_values(expected)
    # Converted as the ORM converts: an aware datetime and a sealed value that opens.
    assert timezone.is_aware(loaded.created_at)
    assert loaded.unseal("card") == "8264"
    assert not loaded._state.adding


def test_a_compiled_query_finds_nothing_as_none_and_keeps_its_order():
    assert LOCKED.first(SID) is None
    Lockout.objects.bulk_create(
        [Lockout(scope="caller", key=key) for key in ("+15005550009", "+15005550001")]
    )
    Lockout.objects.create(scope="account", key="AC1")
    assert [row.key for row in BY_SCOPE.all("caller")] == ["+15005550001", "+15005550009"]
    assert BY_SCOPE.rows("account")[0][2] == "AC1"


def test_a_compiled_query_locks_its_rows_where_the_database_can():
    session()
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        LOCKED.first(SID)
    sql = queries.captured_queries[-1]["sql"]
    assert ("FOR UPDATE" in sql) is connection.features.has_select_for_update


def test_a_query_is_compiled_once_per_database():
    query = statements.Query(lambda sid: CallSession.objects.filter(call_sid=sid))
    with mock.patch.object(
        SQLCompiler, "as_sql", autospec=True, side_effect=SQLCompiler.as_sql
    ) as compile_sql:
        query.first(SID)
        query.first(SID)
        query.all("CA" + "6" * 32)
    assert compile_sql.call_count == 1


@pytest.mark.parametrize(
    "build",
    [
        # A lookup that rewrites its value: the stand-in does not reach the SQL as it is.
        lambda sid: CallSession.objects.filter(call_sid__icontains=sid),
        # A parameter the query never uses.
        lambda sid: CallSession.objects.filter(caller="+15005550006"),
    ],
)
def test_a_query_whose_parameters_are_not_its_slots_is_refused(build):
    with pytest.raises(ValueError, match="slot"):
        statements.Query(build).first(SID)


def test_update_writes_every_field_and_the_auto_now_time():
    made = session()
    before = made.updated_at
    made.tries, made.state, made.card = 0, CallSession.State.AWAITING_PIN, None
    made.ended_at = timezone.now() - timedelta(minutes=1)
    statements.update(made)
    stored = CallSession.objects.get(pk=made.pk)
    assert field_values(stored) == field_values(made)
    assert stored.card is None
    assert stored.updated_at > before


def test_insert_sets_primary_keys_in_order():
    rows = [
        AuditEvent(event="call_started", outcome="info", origin_ip="::1", detail={"n": n})
        for n in range(3)
    ]
    assert statements.insert(rows) == 3
    assert [row.pk for row in rows] == sorted(row.pk for row in rows)
    stored = AuditEvent.objects.order_by("id")
    assert [(row.pk, row.detail, row.origin_ip) for row in stored] == [
        (row.pk, {"n": n}, "::1") for n, row in enumerate(rows)
    ]
    assert not rows[0]._state.adding


def test_insert_ignoring_conflicts_leaves_the_existing_row():
    existing = session()
    duplicate = CallSession(call_sid=SID, caller="+15005550007")
    assert statements.insert([duplicate], ignore_conflicts=True) == 0
    assert duplicate.pk is None and duplicate._state.adding
    assert CallSession.objects.get(call_sid=SID).caller == existing.caller
    fresh = CallSession(call_sid="CA" + "7" * 32)
    assert statements.insert([fresh], ignore_conflicts=True) == 1
    assert CallSession.objects.get(pk=fresh.pk).call_sid == fresh.call_sid


HOLDS = connection.vendor == "postgresql"  # where an UPDATE can wait for the next statement


def test_a_held_update_goes_with_the_next_statement_which_sees_it():
    made = session()
    made.tries = 7
    with transaction.atomic(), statements.deferring():
        with CaptureQueriesContext(connection) as sent:
            statements.update(made)
        assert len(sent) == (0 if HOLDS else 1)
        with CaptureQueriesContext(connection) as sent:
            loaded = LOCKED.first(SID)
        # One round trip for both, and the read sees the write sent ahead of it.
        assert len(sent) == 1
        assert loaded.tries == 7
    assert CallSession.objects.get().tries == 7


def test_an_insert_after_a_held_update_still_gets_its_primary_keys():
    made = session()
    made.tries = 5
    rows = [AuditEvent(event="call_started", outcome="info") for _ in range(2)]
    with transaction.atomic(), statements.deferring():
        statements.update(made)
        assert statements.insert(rows) == 2
    assert [row.pk for row in rows] == list(
        AuditEvent.objects.order_by("id").values_list("id", flat=True)
    )
    assert CallSession.objects.get().tries == 5


def test_the_blocks_end_sends_what_is_still_held():
    made = session()
    made.tries = 3
    with transaction.atomic():
        with CaptureQueriesContext(connection) as sent, statements.deferring():
            statements.update(made)
            assert CallSession.objects.get().tries == (2 if HOLDS else 3)  # the ORM: not yet
        assert len(sent) == 2  # the ORM's read, and the UPDATE (at the block's end on PostgreSQL)
    assert CallSession.objects.get().tries == 3


def test_a_block_that_raises_sends_nothing_it_held():
    made = session()
    made.tries = 9
    with transaction.atomic():
        with pytest.raises(RuntimeError), statements.deferring():
            statements.update(made)
            raise RuntimeError
        assert CallSession.objects.get().tries == (2 if HOLDS else 9)


def test_an_inner_block_leaves_what_it_holds_to_the_outer_one():
    made = session()
    made.tries = 4
    with (
        transaction.atomic(),
        statements.deferring(),
        CaptureQueriesContext(connection) as sent,
    ):
        with statements.deferring():
            statements.update(made)
        assert len(sent) == (0 if HOLDS else 1)
        assert LOCKED.first(SID).tries == 4


def test_inserting_missing_rows_is_held_and_skips_those_there():
    Lockout.objects.create(scope="caller", key="+15005550001", failures=["x"])
    wanted = [Lockout(scope="caller", key=key) for key in ("+15005550001", "+15005550002")]
    with transaction.atomic(), statements.deferring():
        with CaptureQueriesContext(connection) as sent:
            statements.insert_missing(wanted)
        assert len(sent) == (0 if HOLDS else 1)
        assert [(row.key, row.failures) for row in BY_SCOPE.all("caller")] == [
            ("+15005550001", ["x"]),
            ("+15005550002", []),
        ]


def test_values_skipped_past_the_orms_conversion_are_those_it_sends_unchanged():
    from django.apps import apps

    instance_of = {model: model() for model in apps.get_models()}
    checked = 0
    for model, instance in instance_of.items():
        for field in statements._written_fields(model):
            if statements._sent_as_is(field):
                setattr(instance, field.attname, "some text")
                sent = field.get_db_prep_save(field.pre_save(instance, True), connection)
                assert sent == "some text", field
                checked += 1
    assert checked > 20
    # Fields with conversions of their own take the ORM's way.
    assert not statements._sent_as_is(CallSession._meta.get_field("card"))
    assert not statements._sent_as_is(CallSession._meta.get_field("updated_at"))
    assert not statements._sent_as_is(AuditEvent._meta.get_field("origin_ip"))


def test_update_leaves_the_fields_it_excludes():
    made = session()
    made.caller, made.tries = "+15005550999", 6
    statements.update(made, exclude=("caller",))
    stored = CallSession.objects.get()
    assert (stored.caller, stored.tries) == ("+15005550006", 6)
