"""The guessing watch: failed verifications across all accounts, against a rate."""

import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test import Client, override_settings
from django.utils import timezone

from accounts import lockout
from accounts.models import GuessingWindow, Lockout
from accounts.resolvers import resolve
from audit.models import AuditEvent
from conftest import LEGACY_KEY, START, tutorial_encrypt

URL = "/api/decrypt-gather"

pytestmark = pytest.mark.django_db
WATCH = {"SECUREGATHER_GUESSING_FAILURES": 3, "SECUREGATHER_GUESSING_WINDOW": 600}


def spray(n, first=0):
    """Wrong PINs for ``n`` cards, each from a number of its own: no counter comes near a lock."""
    for i in range(first, first + n):
        assert resolve(f"{i:04d}", "0000", f"+1555{i:07d}") is None


@override_settings(**WATCH)
def test_failures_across_accounts_over_the_rate_write_one_row_per_window(demo_account, clock):
    spray(2)
    assert not AuditEvent.objects.filter(event="guessing_suspected").exists()
    spray(5, first=2)
    (row,) = AuditEvent.objects.filter(event="guessing_suspected")
    assert (row.outcome, row.actor, row.channel) == ("failure", "twilio", "voice")
    assert row.detail == {
        "failures": 3,
        "window_start": START.isoformat(),
        "window_seconds": 600,
    }
    clock.shift(timedelta(minutes=10))
    spray(3, first=20)
    assert AuditEvent.objects.filter(event="guessing_suspected").count() == 2


@override_settings(**WATCH)
def test_verified_calls_do_not_count(demo_account, clock):
    for _ in range(5):
        assert resolve("1234", "4321", "+15005550006") is not None
    assert not AuditEvent.objects.filter(event="guessing_suspected").exists()


@override_settings(**WATCH)
def test_the_watch_shows_on_healthz_for_two_windows(client, demo_account, clock):
    assert client.get("/healthz").json()["guessing_suspected"] is False
    spray(3)
    assert client.get("/healthz").json() == {"status": "ok", "guessing_suspected": True}
    clock.shift(timedelta(minutes=19))
    assert lockout.guessing_suspected() is True
    clock.shift(timedelta(minutes=1))
    assert client.get("/healthz").json()["guessing_suspected"] is False


@override_settings(**WATCH)
def test_api_failures_count_and_the_row_names_the_channel(demo_account, clock):
    for i in range(3):
        resolve(f"{i:04d}", "0000", "", channel="api", actor="api", caller_counter=f"api:{i}")
    row = AuditEvent.objects.get(event="guessing_suspected")
    assert (row.actor, row.channel) == ("api", "api")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@override_settings(SECUREGATHER_GUESSING_FAILURES=5, SECUREGATHER_GUESSING_WINDOW=3600)
def test_workers_racing_past_the_threshold_write_one_row(demo_account):
    start = threading.Barrier(8)

    def guess(i):
        try:
            start.wait()
            resolve(f"{i:04d}", "0000", f"+1555{i:07d}")
        finally:
            connection.close()

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert AuditEvent.objects.filter(event="guessing_suspected").count() == 1
    assert GuessingWindow.objects.get().failures == 8


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@override_settings(SECUREGATHER_GUESSING_FAILURES=6, SECUREGATHER_GUESSING_WINDOW=3600)
def test_voice_and_api_verifications_of_many_cards_share_the_watch_without_deadlock(
    demo_account, settings
):
    # Each verification takes its counters, then the watch's window, then the chain's head:
    # in one order on both channels, so none waits on another that waits on it.
    settings.SECUREGATHER_LEGACY_KEY = LEGACY_KEY
    settings.SECUREGATHER_API_TOKEN = ""
    ciphertexts = tutorial_encrypt(*[digits for i in range(4) for digits in (f"7{i}00", "0000")])
    # Expired locks on every card: each verification writes an audit row (the expiry) before it
    # counts its failure on the watch.
    Lockout.objects.bulk_create(
        Lockout(scope="card", key=lockout.card_key(card), locked_until=timezone.now())
        for i in range(4)
        for card in (f"7{i}00", f"8{i}00")
    )
    start, errors = threading.Barrier(8), []

    def voice(i):
        try:
            start.wait()
            with transaction.atomic(), AuditEvent.batched():
                assert resolve(f"8{i}00", "0000", f"+1555{i:07d}") is None
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    def api(i):
        try:
            start.wait()
            body = {
                "encryptedCardDigits": ciphertexts[2 * i],
                "encryptedPinDigits": ciphertexts[2 * i + 1],
            }
            response = Client().post(URL, body, content_type="application/json")
            assert response.status_code == 404
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=voice, args=(i,)) for i in range(4)]
    threads += [threading.Thread(target=api, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert GuessingWindow.objects.get().failures == 8
    assert AuditEvent.objects.filter(event="guessing_suspected").count() == 1
    assert AuditEvent.objects.filter(event="not_found").count() == 4  # the API's own rows
    assert AuditEvent.objects.filter(event="unlocked").count() == 8
