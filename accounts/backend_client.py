"""The request to the user's backend: signed, idempotent, bounded in time, behind a breaker.

One POST per verification carries the two HPKE tokens (keys.hpke), the backend's key id, the
CallSid, the caller's number and a timestamp, as JSON. ``X-SecureGather-Signature`` is
HMAC-SHA256 under SECUREGATHER_BACKEND_SECRET over ``<timestamp>.<body>``; the idempotency key,
derived from the CallSid, is in the body (so signed) and in ``Idempotency-Key``. The backend's
receiver (examples/backend/receiver.py) answers a repeated key with its first answer.

Anything but a well-formed answer within SECUREGATHER_BACKEND_TIMEOUT is BackendUnavailable,
whose message is a short reason naming no value. After SECUREGATHER_BACKEND_BREAKER_FAILURES
failures in a row, this process answers BackendUnavailable("circuit_open") at once for
SECUREGATHER_BACKEND_BREAKER_SECONDS, instead of making every caller wait out the timeout.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings

from keys import hpke

SIGNATURE_HEADER = "X-SecureGather-Signature"
TIMESTAMP_HEADER = "X-SecureGather-Timestamp"
# An answer larger than this is no answer of a resolver's.
MAX_ANSWER = 16 * 1024
ACCOUNT_NUMBER = re.compile(r"[A-Za-z0-9-]{1,32}")
# The backend's opaque account reference: what the lockout counts a wrong PIN on.
ACCOUNT_REF = re.compile(r"[A-Za-z0-9._:-]{1,64}")
STATUSES = ("found", "not_found", "locked")


class BackendUnavailable(Exception):
    """The backend gave no usable answer; the message is a reason naming no value."""


@dataclass(frozen=True)
class BackendAnswer:
    status: str
    account: str = ""
    balance: Decimal | None = None
    account_ref: str = ""


class CircuitBreaker:
    """Consecutive failures of this process's requests; open for a while after too many."""

    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        self.now = now
        self.failures = 0
        self.open_until = 0.0
        self._lock = threading.Lock()

    def allows(self) -> bool:
        """Whether a request may go; once the open time is over, requests go again (each
        failure then opens it anew, as the count still stands at the limit)."""
        with self._lock:
            return self.now() >= self.open_until

    def succeeded(self) -> None:
        with self._lock:
            self.failures, self.open_until = 0, 0.0

    def failed(self) -> None:
        with self._lock:
            self.failures += 1
            if self.failures >= settings.SECUREGATHER_BACKEND_BREAKER_FAILURES:
                self.open_until = self.now() + settings.SECUREGATHER_BACKEND_BREAKER_SECONDS


# One per process (gunicorn worker): a per-process view of the backend's health is enough to
# spare callers the wait, and needs no shared state.
BREAKER = CircuitBreaker()


def idempotency_key(call_sid: str) -> str:
    """One per call: the PIN step runs once per call, so a repeat is a redelivery."""
    return hashlib.sha256(f"securegather.resolve|{call_sid}".encode()).hexdigest()[:32]


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    return "v1=" + hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def request_body(card: str, pin: str, caller: str, call_sid: str, timestamp: str) -> bytes:
    return json.dumps(
        {
            "version": 1,
            "kid": hpke.token_kid(card),
            "card": card,
            "pin": pin,
            "call_sid": call_sid,
            "caller": caller,
            "timestamp": timestamp,
            "idempotency_key": idempotency_key(call_sid),
        },
        separators=(",", ":"),
    ).encode()


def ssl_context() -> ssl.SSLContext:
    """The system's trust (or SECUREGATHER_BACKEND_CA_FILE's), and the client certificate for
    mutual TLS when one is configured."""
    context = ssl.create_default_context(cafile=settings.SECUREGATHER_BACKEND_CA_FILE or None)
    if settings.SECUREGATHER_BACKEND_CLIENT_CERT:
        context.load_cert_chain(
            settings.SECUREGATHER_BACKEND_CLIENT_CERT, settings.SECUREGATHER_BACKEND_CLIENT_KEY
        )
    return context


class NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is an error, never followed: the answer is trusted for the TLS connection it
    came on (SECUREGATHER_BACKEND_URL's), and a redirect could send the request, and take the
    answer, anywhere, plain http included."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def post(body: bytes, headers: dict[str, str]) -> bytes:
    """POST to SECUREGATHER_BACKEND_URL; the answer's body when the status is 200, within
    SECUREGATHER_BACKEND_TIMEOUT for the whole exchange.

    urllib's timeout bounds each socket operation, not the exchange: a backend sending its
    answer a byte at a time would hold the PIN step (and its row locks) for as long as it likes.
    The exchange runs in a thread of its own, and the step waits for it no longer than the
    timeout; a thread left behind ends with its socket's own timeout.
    """
    outcome: list[bytes | BackendUnavailable] = []
    exchange = threading.Thread(target=lambda: outcome.append(_exchange(body, headers)))
    exchange.daemon = True
    exchange.start()
    exchange.join(settings.SECUREGATHER_BACKEND_TIMEOUT)
    if not outcome:
        raise BackendUnavailable("timeout")
    if isinstance(outcome[0], BackendUnavailable):
        raise outcome[0]
    return outcome[0]


def _exchange(body: bytes, headers: dict[str, str]) -> bytes | BackendUnavailable:
    """One POST and its answer, or what went wrong, as a value: it runs in post()'s thread."""
    url = settings.SECUREGATHER_BACKEND_URL
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    try:
        context = ssl_context() if url.startswith("https:") else None
        opener = urllib.request.build_opener(
            NoRedirects(), urllib.request.HTTPSHandler(context=context)
        )
        # The URL's scheme is checked: accounts.E010.
        with opener.open(request, timeout=settings.SECUREGATHER_BACKEND_TIMEOUT) as response:
            answer: bytes = response.read(MAX_ANSWER + 1)
    except urllib.error.HTTPError as exc:
        return BackendUnavailable(f"http_{exc.code}")
    except TimeoutError:
        return BackendUnavailable("timeout")
    except urllib.error.URLError as exc:
        timed_out = isinstance(exc.reason, TimeoutError)
        return BackendUnavailable("timeout" if timed_out else "unreachable")
    except (OSError, ValueError) as exc:
        return BackendUnavailable(type(exc).__name__)
    if len(answer) > MAX_ANSWER:
        return BackendUnavailable("answer_too_large")
    return answer


def parse(answer: bytes) -> BackendAnswer:
    """The backend's JSON answer, checked field by field: BackendUnavailable otherwise."""
    try:
        data: Any = json.loads(answer)
    except (ValueError, UnicodeDecodeError):
        raise BackendUnavailable("bad_answer") from None
    if not isinstance(data, dict) or data.get("status") not in STATUSES:
        raise BackendUnavailable("bad_answer")
    reference = data.get("account_ref", "")
    if not isinstance(reference, str) or (reference and not ACCOUNT_REF.fullmatch(reference)):
        raise BackendUnavailable("bad_answer")
    if data["status"] != "found":
        return BackendAnswer(data["status"], account_ref=reference)
    account, balance = data.get("account"), data.get("balance")
    if not isinstance(account, str) or not ACCOUNT_NUMBER.fullmatch(account):
        raise BackendUnavailable("bad_answer")
    try:
        amount = Decimal(str(balance)) if isinstance(balance, str | int) else None
    except InvalidOperation:
        amount = None
    if amount is None or not amount.is_finite():
        raise BackendUnavailable("bad_answer")
    return BackendAnswer("found", account, amount, reference)


def ask(card: str, pin: str, caller: str, call_sid: str) -> BackendAnswer:
    """One verification by the backend, of two HPKE tokens."""
    if not BREAKER.allows():
        raise BackendUnavailable("circuit_open")
    timestamp = str(int(time.time()))
    body = request_body(card, pin, caller, call_sid, timestamp)
    headers = {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: sign(settings.SECUREGATHER_BACKEND_SECRET.encode(), timestamp, body),
        "Idempotency-Key": idempotency_key(call_sid),
    }
    try:
        answer = parse(post(body, headers))
    except BackendUnavailable:
        BREAKER.failed()
        raise
    BREAKER.succeeded()
    return answer
