"""Lockout policy: failed verifications counted per caller, per card and per owner, in the database.

Every verification counts on two counters: the caller's and the card's. A caller is its E.164
number; every call without a number we can count shares the one "withheld" counter; each bearer
token of the decrypt API is one caller. The card's counter is keyed by the card's keyed digest,
so it exists alike for a card that no account has: the statements, the keyed work and the
"too many attempts" answer are the same whether the card is known or not.

Callers' counters lock for a day's pattern: SECUREGATHER_LOCKOUT_FAILURES (5) within
SECUREGATHER_LOCKOUT_WINDOW (24 h) lock for SECUREGATHER_LOCKOUT_DURATION (30 minutes). A
card's counter does that too, and bounds a month besides: SECUREGATHER_LOCKOUT_CEILING (10)
failures within SECUREGATHER_LOCKOUT_CEILING_WINDOW (30 days) lock it until the oldest of them
leaves the window. A PIN is checked only while the card's counter is unlocked, and each failed
check adds to it, so no 30 days hold more than 10 checks of any account, whatever the callers,
channels or pacing (docs/security.md has the arithmetic). PCI DSS v4.0 8.3.4 (at most 10
attempts, at least 30 minutes) holds at both steps.

A call from a number registered on an account, with full (A) SHAKEN/STIR attestation, is the
owner: it counts on an owner counter of its own, which strangers cannot reach, and is refused
only by that counter's lock. Its failures count on the card's counter too, so the owner's phone
in someone else's hand adds no tries to the card's. A success clears only the owner counter it
was made on: nothing a stranger can count on is ever cleared by the owner's calls.

Every counter lives in accounts.Lockout and is row-locked for the whole of a verification, so
workers on any number of hosts share it and concurrent calls cannot slip extra guesses past it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.utils import timezone
from django.utils.crypto import salted_hmac

from accounts.models import CARD_PURPOSE, E164, GuessingWindow, Lockout
from audit.models import AuditEvent
from audit.phones import WITHHELD
from keys.keyring import get_keyring

# The counter every call without a number of its own shares: "anonymous", "client:…",
# "sip:…", the keypad spellings of withheld numbers and anything else not in E.164.
WITHHELD_CALLER = "withheld"
# Twilio's StirVerstat for a call whose caller the originating carrier vouches for in full.
FULL_ATTESTATION = "TN-Validation-Passed-A"

Key = tuple[str, str]


@dataclass(frozen=True)
class Policy:
    """How a counter locks: ``limit`` failures within ``window`` lock for ``duration``; when
    ``ceiling`` is set, that many within ``ceiling_window`` lock until the oldest leaves it."""

    limit: int
    window: timedelta
    duration: timedelta
    ceiling: int | None = None
    ceiling_window: timedelta | None = None

    @property
    def kept(self) -> timedelta:
        """How long a failure counts on a counter under this policy."""
        return max(self.window, self.ceiling_window or self.window)


def caller_policy() -> Policy:
    return Policy(
        limit=settings.SECUREGATHER_LOCKOUT_FAILURES,
        window=timedelta(seconds=settings.SECUREGATHER_LOCKOUT_WINDOW),
        duration=timedelta(seconds=settings.SECUREGATHER_LOCKOUT_DURATION),
    )


def card_policy() -> Policy:
    """A card's and an owner's counters: the caller's policy, and the month's ceiling."""
    return Policy(
        limit=settings.SECUREGATHER_LOCKOUT_FAILURES,
        window=timedelta(seconds=settings.SECUREGATHER_LOCKOUT_WINDOW),
        duration=timedelta(seconds=settings.SECUREGATHER_LOCKOUT_DURATION),
        ceiling=settings.SECUREGATHER_LOCKOUT_CEILING,
        ceiling_window=timedelta(seconds=settings.SECUREGATHER_LOCKOUT_CEILING_WINDOW),
    )


def policy(scope: str) -> Policy:
    return caller_policy() if scope == Lockout.Scope.CALLER else card_policy()


def idle(now: datetime) -> Q:
    """Counters that hold no failure that still counts and no lock: purge_sessions' to delete."""
    callers = Q(scope=Lockout.Scope.CALLER, updated_at__lt=now - caller_policy().kept)
    others = ~Q(scope=Lockout.Scope.CALLER) & Q(updated_at__lt=now - card_policy().kept)
    return (callers | others) & ~Q(locked_until__gt=now)


def counts_caller(caller: str) -> bool:
    return E164.fullmatch(caller) is not None and caller not in WITHHELD


def caller_key(caller: str) -> str:
    """The counter a voice caller counts on: its own number, or the one shared by all calls
    without a number we can count (a fresh counter for each would be no counter at all)."""
    return caller if counts_caller(caller) else WITHHELD_CALLER


def api_caller(token: str) -> str:
    """The counter of a decrypt API caller: one per bearer token, named by a keyed digest of
    it (never the token itself), or one for all when the API takes no token."""
    if not token:
        return "api:open"
    return "api:" + salted_hmac("accounts.lockout.api_caller", token).hexdigest()[:16]


def card_key(card_last4: str) -> str:
    """The card counter's key: the card's lookup digest under the primary key."""
    return get_keyring().digest(card_last4, CARD_PURPOSE)


def owner_key(account_number: str, caller: str) -> str:
    return f"{account_number}|{caller}"


def is_fully_attested(attestation: str) -> bool:
    return attestation == FULL_ATTESTATION


def caller_lock(caller: str) -> Lockout | None:
    """The caller's lock, if one holds now: read without a row lock, to warn at the start."""
    row = Lockout.objects.filter(scope=Lockout.Scope.CALLER, key=caller_key(caller)).first()
    return row if row is not None and row.is_locked(timezone.now()) else None


# Tries at taking a verification's counters when some vanish under it (see Counters.hold).
_ATTEMPTS = 3


class CountersVanished(Exception):
    """A verification's counters were deleted each time it locked them: it checks no PIN."""


@dataclass
class Counters:
    """The row-locked counters of one verification. Use inside transaction.atomic().

    ``refusing``: the keys whose lock refuses this verification (every counter but the card's
    on an owner's call). ``accounts``: the numbers of the accounts the card points to, which
    the audit rows of the card's counter name.
    """

    rows: list[Lockout]
    now: datetime
    refusing: set[Key] = field(default_factory=set)
    accounts: Sequence[str] = ()

    @classmethod
    def hold(
        cls,
        keys: Iterable[Key],
        *,
        refusing: Iterable[Key] | None = None,
        accounts: Sequence[str] = (),
        channel: str = AuditEvent.Channel.VOICE,
    ) -> Counters:
        """Take (creating if needed) every counter, in one order, row-locked until commit.

        A lock found expired is cleared, its row on the ``channel`` that found it."""
        wanted = set(keys)
        # Every counter exists before it is locked (INSERT … ON CONFLICT DO NOTHING, no
        # savepoint), so even a caller's first verification has a row to wait on.
        # Inserted in the locks' order too: in a set's order, which differs between processes,
        # two steps creating the same two counters could each wait on the other's.
        # A counter can vanish between its INSERT and its lock: purge_sessions deletes idle ones,
        # and a lock that waited on its DELETE finds no row (PostgreSQL). Counted on nothing, the
        # failure would be lost, so it is inserted and locked again; made now, it is not idle.
        # (That INSERT comes with locks held: a step inserting the same counter and waiting on
        # one of them is a deadlock, which PostgreSQL ends by rolling one step back.)
        ordered = sorted(wanted)
        matches = Q()
        for scope, key in ordered:
            matches |= Q(scope=scope, key=key)
        for _ in range(_ATTEMPTS):
            Lockout.objects.bulk_create(
                [Lockout(scope=scope, key=key) for scope, key in ordered], ignore_conflicts=True
            )
            # Locked in the same order (scope, key): two verifications that share counters never
            # wait on each other in turn.
            counters = Lockout.objects.select_for_update().filter(matches).order_by("scope", "key")
            rows = list(counters)
            if len(rows) == len(wanted):
                break
        else:
            raise CountersVanished(f"{len(wanted) - len(rows)} lockout counter(s) kept vanishing")
        # The time once every row is held: a failure counted while this one waited is older.
        now = timezone.now()
        for row in rows:
            if row.expire(now, channel=channel, accounts=cls._named(row, accounts)):
                row.save()
        return cls(rows, now, wanted if refusing is None else set(refusing), accounts)

    @staticmethod
    def _named(row: Lockout, accounts: Sequence[str]) -> Sequence[str] | None:
        return accounts if row.scope == Lockout.Scope.CARD else None

    def lock(self) -> Lockout | None:
        """The refusing counter that is locked now, if any: a card's or an owner's before a
        caller's, so that the refusal's (staff-only) audit rows name the accounts it was for."""
        locked = [
            row
            for row in self.rows
            if (row.scope, row.key) in self.refusing and row.is_locked(self.now)
        ]
        locked.sort(key=lambda row: row.scope == Lockout.Scope.CALLER)
        return next(iter(locked), None)

    def fail(self, **audit: Any) -> bool:
        """Count the failure on every counter, and on the guessing watch; True when it locked
        any counter."""
        # The watch's window first: its row lock comes before any audit row this failure
        # writes, and so before the chain's head, in every verification.
        watch(self.now, **audit)
        locked = False
        for row in self.rows:
            rule = policy(row.scope)
            locked |= row.fail(
                self.now,
                limit=rule.limit,
                window=rule.window,
                duration=rule.duration,
                ceiling=rule.ceiling,
                ceiling_window=rule.ceiling_window,
                accounts=self._named(row, self.accounts),
                **audit,
            )
            row.save()
        return locked

    def succeed(self, account_number: str) -> None:
        """Clear the owner counter the success was made on; nothing a stranger counts on."""
        for row in self.rows:
            if (
                row.scope == Lockout.Scope.OWNER
                and row.key.partition("|")[0] == account_number
                and row.failures
            ):
                row.forget_failures()
                row.save()


def watch(now: datetime, **audit: Any) -> None:
    """Count one failed verification across all accounts; the failure that takes a window
    over SECUREGATHER_GUESSING_FAILURES writes its one ``guessing_suspected`` row."""
    seconds = settings.SECUREGATHER_GUESSING_WINDOW
    start = datetime.fromtimestamp(now.timestamp() // seconds * seconds, tz=now.tzinfo)
    threshold = settings.SECUREGATHER_GUESSING_FAILURES
    if GuessingWindow.locked(start).count(now, threshold):
        from staff.auditing import served  # it imports the admin's models

        AuditEvent.record(
            AuditEvent.Event.GUESSING_SUSPECTED,
            AuditEvent.Outcome.FAILURE,
            request=served(),
            actor=audit.get("actor", "twilio"),
            channel=audit.get("channel", AuditEvent.Channel.VOICE),
            failures=threshold,
            window_start=start.isoformat(),
            window_seconds=seconds,
        )


def guessing_suspected(now: datetime | None = None) -> bool:
    """Whether this window or the one before went over the guessing watch's threshold."""
    now = now or timezone.now()
    since = now - timedelta(seconds=2 * settings.SECUREGATHER_GUESSING_WINDOW)
    return GuessingWindow.objects.filter(start__gt=since, reported_at__isnull=False).exists()


def lift(target: str, by: str, **detail: Any) -> list[Lockout]:
    """Lift every lock (and count) held by a caller number (any common spelling), an account
    number (its card's counter and its owner counters) or a counter's key."""
    rows = list(
        Lockout.objects.filter(Lockout.matching(target)).exclude(locked_until=None, failures=[])
    )
    for row in rows:
        row.lift(by, **detail)
    return rows
