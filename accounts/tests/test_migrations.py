"""accounts 0002: an account's lockout counter becomes its card's, so no lock is lost."""

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from accounts import lockout
from accounts.models import Account, Lockout

BEFORE, AFTER = (
    [("accounts", "0001_initial")],
    [("accounts", "0002_card_counters_and_guessing_watch")],
)
WHEN = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_account_counters_become_card_counters_merged_and_still_locked(demo_account):
    other = Account(number="AC87654321")
    other.set_credentials("1234", "9876")
    other.save()
    old = migrate(BEFORE).get_model("accounts", "Lockout")
    old.objects.create(
        scope="account", key="AC12345678", failures=[WHEN.isoformat()], locked_until=WHEN
    )
    old.objects.create(
        scope="account", key="AC87654321", failures=[WHEN.replace(hour=8).isoformat()]
    )
    old.objects.create(scope="account", key="AC00000000", failures=[WHEN.isoformat()])  # gone
    old.objects.create(scope="caller", key="+15005550006", failures=[WHEN.isoformat()])
    migrate(AFTER)
    rows = {(row.scope, row.key): row for row in Lockout.objects.all()}
    assert set(rows) == {("card", lockout.card_key("1234")), ("caller", "+15005550006")}
    card = rows["card", lockout.card_key("1234")]
    assert card.locked_until == WHEN
    assert card.failures == [WHEN.replace(hour=8).isoformat(), WHEN.isoformat()]
