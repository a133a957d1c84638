"""How many queries each call step may make, so that none creeps in unnoticed.

Counted on PostgreSQL, where a step costs the most (SQLite has no advisory lock: one fewer).
The statements a step runs every time are built once per process (securegather.statements), so
what is left of a query's cost is mostly its round trip. Every step is one transaction (2:
BEGIN/COMMIT, SAVEPOINT/RELEASE inside a test) that reads its session under a row lock (1),
writes it back with its answer for redeliveries (1), and appends its audit rows in one batch:
chain lock, chain head, one INSERT (3). That is 7; beyond it:

- incoming: the session is inserted instead of read (INSERT … ON CONFLICT DO NOTHING, so a
  racing delivery's row neither aborts the step nor needs a savepoint), the audit log is asked
  whether the call was seen before, as a replay after purge would have been (+1), and the
  caller's lock is checked (+1): 9.
- pin: the accounts the card points to (+1), their lockout counters created if missing and
  row-locked (+2): 10. The default resolver checks the PIN against those same accounts, with
  no query of its own (another backend runs under a savepoint, so that its database error
  cannot abort the step: +3). A wrong PIN also writes the failure to each counter it holds,
  the caller's and the account's (+2): 12.
"""

import pytest

pytestmark = pytest.mark.django_db

BUDGET = {"incoming": 9, "card": 7, "pin": 10, "pin_failed": 12, "status": 7}


def test_each_step_of_a_verified_call_stays_within_its_budget(
    call, demo_account, django_assert_max_num_queries
):
    with django_assert_max_num_queries(BUDGET["incoming"]):
        call.start()
    with django_assert_max_num_queries(BUDGET["card"]):
        call.card("1234")
    with django_assert_max_num_queries(BUDGET["pin"]):
        assert b"AC12345678" in call.pin("4321").content
    with django_assert_max_num_queries(BUDGET["status"]):
        call.status()


def test_a_failed_pin_stays_within_the_pin_budget(
    call, demo_account, django_assert_max_num_queries
):
    call.start()
    call.card("1234")
    with django_assert_max_num_queries(BUDGET["pin_failed"]):
        assert b"not able to locate you" in call.pin("0000").content
