"""The month's bound as a property: whatever the pacing, no 30 days hold more than 10 checks."""

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from unittest import mock

from hypothesis import given
from hypothesis import strategies as st

from accounts import lockout
from accounts.models import Lockout

START = datetime(2026, 1, 1, tzinfo=UTC)
MONTH = timedelta(days=30)
# Gaps between tries: from a second to three days, as a guesser paces them.
GAPS = st.lists(st.integers(min_value=1, max_value=3 * 86400), min_size=1, max_size=400)


def checks_allowed(gaps: list[int]) -> list[tuple[datetime, bool]]:
    """The times at which a card's counter, under the default policy, let a wrong PIN be
    checked, each with whether its failure locked the counter."""
    rule = lockout.card_policy()
    row, now, checked = Lockout(scope="card", key="k1:ab"), START, []
    with mock.patch.object(Lockout, "_audit"):  # the audit log is not what is tested here
        for gap in gaps:
            now += timedelta(seconds=gap)
            if row.is_locked(now):
                continue
            row.locked_until = None
            locked = row.fail(
                now,
                limit=rule.limit,
                window=rule.window,
                duration=rule.duration,
                ceiling=rule.ceiling,
                ceiling_window=rule.ceiling_window,
            )
            checked.append((now, locked))
    return checked


def most_in_a_month(times: list[datetime]) -> int:
    return max((sum(start <= when < start + MONTH for when in times) for start in times), default=0)


@given(GAPS)
def test_no_30_days_hold_more_than_10_failed_checks(gaps):
    assert most_in_a_month([when for when, _ in checks_allowed(gaps)]) <= 10


@given(GAPS)
def test_each_lock_holds_at_least_30_minutes(gaps):
    # PCI DSS 8.3.4: a failure that locks lets no check through for 30 minutes.
    checked = checks_allowed(gaps)
    for (before, locked), (after, _) in pairwise(checked):
        if locked:
            assert after - before >= timedelta(minutes=30)


def test_a_try_a_day_gets_10_then_waits_until_the_first_is_30_days_old():
    checked = [when for when, _ in checks_allowed([86400] * 40)]
    days = [(when - START).days for when in checked]
    assert days == [*range(1, 11), *range(31, 41)]
