"""How many queries each call step may make, so that none creeps in unnoticed.

Counted on PostgreSQL, where each is a round trip. The statements a step runs every time are built
once per process (securegather.statements), so what is left of a query's cost is mostly its round
trip. Every step is one transaction (2: BEGIN/COMMIT, SAVEPOINT/RELEASE inside a test) that reads
its session under a row lock (1) and appends its audit rows in one batch: the chain's head, read
locked, with the session's UPDATE (its answer, for redeliveries) sent ahead of it in the same
round trip (1), then one INSERT with the head's UPDATE ahead of it (1). That is 5; beyond it:

- incoming: the session is inserted instead of read (INSERT … ON CONFLICT DO NOTHING, so a
  racing delivery's row neither aborts the step nor needs a savepoint), the audit log is asked
  whether the call was seen before, as a replay after purge would have been (+1), and the
  caller's lock is checked (+1): 7.
- pin: the accounts the card points to (+1), their lockout counters row-locked, with the
  INSERT that creates the missing ones sent ahead of the lock (+1): 7. The default resolver
  checks the PIN against those same accounts, with no query of its own (another backend runs
  under a savepoint, so that its database error cannot abort the step: +3). A wrong PIN writes
  the failure to each counter it holds, the caller's and the account's; those UPDATEs go with
  the next statement too: 7.

Outside a test's transaction, the step's COMMIT goes with that INSERT (auditchain.batched):
one round trip fewer than counted here. Not counted either: Django's health check of a kept
connection before a request's first query, which securegather.backends.postgresql makes without
a query. SQLite runs in the process, with no round trip to save: the held writes (HELD) are
statements of their own there.
"""

import pytest
from django.db import connection

pytestmark = pytest.mark.django_db

POSTGRESQL = {"incoming": 7, "card": 5, "pin": 7, "pin_failed": 7, "status": 5}
# The writes each step holds for its next statement: the session's UPDATE and the chain head's;
# on the PIN step the counters' INSERT, and after a wrong PIN their two UPDATEs.
HELD = {"incoming": 2, "card": 2, "pin": 3, "pin_failed": 5, "status": 2}


@pytest.fixture
def budget():
    if connection.vendor == "postgresql":
        return POSTGRESQL
    return {step: queries + HELD[step] for step, queries in POSTGRESQL.items()}


def test_each_step_of_a_verified_call_stays_within_its_budget(
    call, demo_account, budget, django_assert_max_num_queries
):
    with django_assert_max_num_queries(budget["incoming"]):
        call.start()
    with django_assert_max_num_queries(budget["card"]):
        call.card("1234")
    with django_assert_max_num_queries(budget["pin"]):
        assert b"AC12345678" in call.pin("4321").content
    with django_assert_max_num_queries(budget["status"]):
        call.status()


def test_a_failed_pin_stays_within_the_pin_budget(
    call, demo_account, budget, django_assert_max_num_queries
):
    call.start()
    call.card("1234")
    with django_assert_max_num_queries(budget["pin_failed"]):
        assert b"not able to locate you" in call.pin("0000").content
