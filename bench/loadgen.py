"""A load generator for signed calls; benchmark scripts run it in a process of its own.

A call is four steps, as Twilio makes them: incoming, card, PIN, status callback. A reference
(the baseline, or a floor: bench.urls) plays the same number of requests against its one view.
Every request is encoded and signed before the clock starts, as Twilio signs on its own
machines: on a 2-core host, signing while timing would take CPU from the server under test.
"""

from __future__ import annotations

import http.client
import os
import secrets
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

from twilio.request_validator import RequestValidator

STEPS = ("/voice/", "/voice/card/", "/voice/pin/", "/voice/status/")
# The views the secured steps can be held against (bench.urls), by name.
REFERENCES = {
    "baseline": "/bench/baseline/",
    "floor-write": "/bench/floor/write/",
    "floor-append": "/bench/floor/append/",
    "floor-step": "/bench/floor/step/",
}


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    calls: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, seconds: float, ok: bool) -> None:
        with self.lock:
            self.latencies.append(seconds)
            self.errors += not ok

    def summary(self, elapsed: float, busy: float | None = None) -> dict[str, float]:
        """``busy``: CPU seconds the whole machine spent while these steps ran, if known."""
        ordered = sorted(self.latencies)
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] if ordered else 0.0
        summary = {
            "steps": len(ordered),
            "calls": self.calls,
            "errors": self.errors,
            "elapsed": elapsed,
            "steps_per_s": len(ordered) / elapsed if elapsed else 0.0,
            "p50_ms": statistics.median(ordered) * 1000 if ordered else 0.0,
            "p99_ms": p99 * 1000,
        }
        if busy is not None and ordered:
            summary["cpu_ms"] = busy / len(ordered) * 1000
        return summary


def busy_seconds() -> float | None:
    """CPU seconds the machine's cores have spent busy since boot, or None without /proc/stat.

    Every process counts: the server's workers, the database's and the load generator's own.
    A step's share of them is what bounds the steps a second once every core is busy.
    """
    try:
        with open("/proc/stat") as stat:
            ticks = [int(n) for n in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    # user, nice, system, irq, softirq: not idle, iowait, or time the hypervisor took (steal).
    busy = ticks[0] + ticks[1] + ticks[2] + ticks[5] + ticks[6]
    return busy / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Step:
    """One webhook request, encoded and signed before the clock starts."""

    path: str
    body: str
    headers: dict[str, str]
    resolves: bool  # the PIN step: its answer must name the account


class Caller:
    def __init__(self, base_url: str, auth_token: str, reference: str, timeout: float = 30) -> None:
        """``reference``: the path of the view whose requests these are (bench.urls), or "" for
        the signed call steps."""
        parts = urlsplit(base_url)
        if parts.hostname is None:
            raise ValueError(f"no host in {base_url!r}")
        self.host, self.port, self.base_url = parts.hostname, parts.port, base_url.rstrip("/")
        self.validator = RequestValidator(auth_token)
        self.reference, self.timeout = reference, timeout

    def prepare(self, card: str, pin: str) -> list[Step]:
        """One call's four requests, with the parameters and headers Twilio sends (an
        idempotency token on each: the step then keeps its answer for a redelivery). Twilio
        signs on its side: the signing is not timed here."""
        caller = "+1555" + str(secrets.randbelow(10**7)).zfill(7)
        call = {
            "CallSid": "CA" + secrets.token_hex(16),
            "AccountSid": "AC" + "0" * 32,
            "ApiVersion": "2010-04-01",
            "Direction": "inbound",
            "From": caller,
            "Caller": caller,
            "FromCity": "SAN FRANCISCO",
            "FromState": "CA",
            "FromZip": "94103",
            "FromCountry": "US",
            "To": "+15005550001",
            "Called": "+15005550001",
            "ToCity": "",
            "ToState": "CA",
            "ToZip": "",
            "ToCountry": "US",
        }
        gathered = {"CallStatus": "in-progress", "FinishedOnKey": "", "msg": "Gather End"}
        keys = [
            {"CallStatus": "ringing"},
            {**gathered, "Digits": card},
            {**gathered, "Digits": pin},
            {
                "CallStatus": "completed",
                "CallDuration": "12",
                "CallbackSource": "call-progress-events",
            },
        ]
        steps = []
        for i, (path, extra) in enumerate(zip(STEPS, keys, strict=True)):
            params = {**call, **extra}
            headers = {
                "Content-Type": "application/x-www-form-urlencoded",
                "User-Agent": "TwilioProxy/1.1",
                "I-Twilio-Idempotency-Token": secrets.token_hex(16),
            }
            if self.reference:
                path = self.reference
            else:
                signature = self.validator.compute_signature(self.base_url + path, params)
                headers["X-Twilio-Signature"] = signature
            steps.append(Step(path, urlencode(params), headers, not self.reference and i == 2))
        return steps

    def post(self, step: Step) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            conn.request("POST", step.path, step.body, step.headers)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def answered(self, step: Step) -> bool:
        """Post one step: whether it was answered as the demo call's step is, the PIN step
        with the demo account."""
        try:
            status, body = self.post(step)
        except OSError:
            return False
        return status == 200 and (not step.resolves or b"AC12345678" in body)

    def call(self, tally: Tally, steps: list[Step], first_step_since: float | None = None) -> None:
        """Play one call; the first step's latency counts from ``first_step_since`` if given."""
        for i, step in enumerate(steps):
            started = time.perf_counter()
            ok = self.answered(step)
            since = first_step_since if (i == 0 and first_step_since is not None) else started
            tally.add(time.perf_counter() - since, ok)
        with tally.lock:
            tally.calls += 1


def _back_to_back(caller: Caller, tally: Tally, concurrency: int, calls: int) -> float:
    """Play ``calls`` calls, ``concurrency`` at a time, each starting as one ends; the seconds."""
    prepared = [caller.prepare("1234", "4321") for _ in range(calls)]
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        for steps in prepared:
            pool.submit(caller.call, tally, steps)
    return time.perf_counter() - started


def closed_loop(
    base_url: str, auth_token: str, reference: str, concurrency: int, calls: int
) -> dict[str, float]:
    """``concurrency`` callers, each starting its next call as soon as one ends: saturation."""
    caller, tally = Caller(base_url, auth_token, reference), Tally()
    return tally.summary(_back_to_back(caller, tally, concurrency, calls))


def closed_loop_alternating(
    base_url: str, auth_token: str, reference: str, concurrency: int, calls: int, chunks: int
) -> tuple[dict[str, float], dict[str, float]]:
    """The reference's and the secured closed loops (as closed_loop), ``calls`` each, in
    ``chunks`` alternating chunks timed one by one: a slow spell of a shared VM falls on both.

    Returns the reference's summary, then the secured one's.
    """
    kinds = [(Caller(base_url, auth_token, path), Tally()) for path in (reference, "")]
    elapsed, busy = [0.0, 0.0], [0.0, 0.0]
    known = busy_seconds() is not None
    for chunk in range(chunks):
        size = calls // chunks + (chunk < calls % chunks)
        for i, (caller, tally) in enumerate(kinds):
            before = busy_seconds() or 0.0
            elapsed[i] += _back_to_back(caller, tally, concurrency, size)
            busy[i] += (busy_seconds() or 0.0) - before
    (_, base), (_, secured) = kinds
    return (
        base.summary(elapsed[0], busy[0] if known else None),
        secured.summary(elapsed[1], busy[1] if known else None),
    )


def open_loop(
    base_url: str, auth_token: str, reference: str, interval: float, calls: int
) -> dict[str, float]:
    """A new call every ``interval`` seconds whatever the answers: latency under a steady rate."""
    caller, tally = Caller(base_url, auth_token, reference), Tally()
    prepared = [caller.prepare("1234", "4321") for _ in range(calls)]
    started = time.perf_counter()
    with ThreadPoolExecutor(256) as pool:
        for i, steps in enumerate(prepared):
            due = started + i * interval
            time.sleep(max(0.0, due - time.perf_counter()))
            pool.submit(caller.call, tally, steps, due)
    return tally.summary(time.perf_counter() - started)
