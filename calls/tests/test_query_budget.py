"""How many queries each call step makes, so that none creeps in unnoticed.

Each is a round trip on PostgreSQL, and the counts are the same on SQLite. Every step is one
transaction (2: SAVEPOINT and RELEASE inside a test's own, BEGIN and COMMIT outside one) that
reads its session under a row lock (1), writes it back with its answer, for redeliveries (1),
and appends its audit rows in one batch: the chain's head read under a row lock, its UPDATE,
one INSERT (3). That is 7; beyond it:

- incoming: the session is inserted instead of read (ON CONFLICT DO NOTHING, so that a racing
  delivery's row neither fails the step nor needs a savepoint); the audit log is asked whether
  the call was seen before, as a replay after purge would have been (+1); and the caller's lock
  is checked (+1): 9.
- pin: the accounts the card points to (+1), and their lockout counters: the INSERT that
  creates the missing ones (ON CONFLICT DO NOTHING, no savepoint), then their row lock (+2): 10.
  The default resolver checks the PIN against those same accounts, with no query of its own
  (another backend runs under a savepoint, so that its database error cannot abort the step:
  +2). A wrong PIN writes the failure to each counter it holds, the caller's and the
  card's (+2), and counts it on the guessing watch's window: its INSERT if missing, its row
  lock, its UPDATE (+3): 15. The same for an unknown card: the card's counter exists alike.
- status: no more than the 7.

Not counted: Django's health check of a kept connection before a request's first query
(CONN_HEALTH_CHECKS), which psycopg makes outside Django's cursor.
"""

import pytest

pytestmark = pytest.mark.django_db

QUERIES = {"incoming": 9, "card": 7, "pin": 10, "pin_failed": 15, "status": 7}


def test_each_step_of_a_verified_call_makes_its_count_of_queries(
    call, demo_account, django_assert_num_queries
):
    with django_assert_num_queries(QUERIES["incoming"]):
        call.start()
    with django_assert_num_queries(QUERIES["card"]):
        call.card("1234")
    with django_assert_num_queries(QUERIES["pin"]):
        assert b"AC12345678" in call.pin("4321").content
    with django_assert_num_queries(QUERIES["status"]):
        call.status()


@pytest.mark.parametrize("card", ["1234", "9999"])
def test_a_failed_pin_makes_its_count_of_queries_for_known_and_unknown_cards(
    call, demo_account, django_assert_num_queries, card
):
    call.start()
    call.card(card)
    with django_assert_num_queries(QUERIES["pin_failed"]):
        assert b"not able to locate you" in call.pin("0000").content
