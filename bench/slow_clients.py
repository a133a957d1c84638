"""Slow clients against the service: how long /healthz and a signed webhook take while N
connections hold half-sent requests open, for gunicorn's sync workers on their own, for a
threaded worker class, and for sync workers behind the shipped nginx (deploy/nginx).

Then what each setup costs a request when no client is slow: the median and p99 of sequential
signed webhooks.

    .venv/bin/python bench/slow_clients.py [--held 0,5,8,20] [--db sqlite]
"""

from __future__ import annotations

import argparse
import http.client
import os
import secrets
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import ExitStack, closing, contextmanager
from pathlib import Path

from twilio.request_validator import RequestValidator

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.server import (  # noqa: E402
    AUTH_TOKEN,
    bench_env,
    fresh_database,
    machine,
    manage,
)
from deploy.proxy import Proxy, free_port, nginx  # noqa: E402

# The project's worker count on this machine (gunicorn.conf.py: 2 a core + 1, at most 8).
WORKERS = min(2 * (os.cpu_count() or 1) + 1, 8)
THREADS = 4
# Half a request's headers, and whole headers with half a body.
HALF = [
    b"POST /voice/ HTTP/1.1\r\nHost: localhost\r\nContent-Type: applic",
    b"POST /voice/ HTTP/1.1\r\nHost: localhost\r\nContent-Length: 400\r\n"
    b"Content-Type: application/x-www-form-urlencoded\r\n\r\nCallSid=CA",
]
PATIENCE = 30.0


@contextmanager
def gunicorn(env: dict[str, str], port: int, *extra: str) -> Iterator[None]:
    with tempfile.TemporaryFile("w+") as log:
        process = subprocess.Popen(  # noqa: S603  (constants and integers)
            [
                *[sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py"],
                *["--bind", f"127.0.0.1:{port}", "--workers", str(WORKERS), *extra],
                *["--access-logfile", "/dev/null", "bench.wsgi"],
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                if process.poll() is not None:
                    log.seek(0)
                    raise SystemExit(log.read()[-2000:])
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise SystemExit("gunicorn did not listen in 60 s") from None
                    time.sleep(0.1)
            yield
        finally:
            process.terminate()
            process.wait(timeout=60)


class Target:
    """Where requests go: gunicorn's port in plain http, or nginx's in https."""

    def __init__(self, port: int, proxy: Proxy | None = None) -> None:
        self.port, self.proxy = port, proxy
        self.context = ssl.create_default_context(cafile=str(proxy.certificate)) if proxy else None

    @property
    def origin(self) -> str:
        return self.proxy.origin if self.proxy else f"http://localhost:{self.port}"

    def connection(self) -> http.client.HTTPConnection:
        if self.proxy and self.context:
            return http.client.HTTPSConnection(
                "localhost", self.proxy.https_port, context=self.context, timeout=PATIENCE
            )
        return http.client.HTTPConnection("localhost", self.port, timeout=PATIENCE)

    def half_sent(self, n: int) -> socket.socket:
        if self.proxy and self.context:
            raw = socket.create_connection(("127.0.0.1", self.proxy.https_port), timeout=60)
            sock: socket.socket = self.context.wrap_socket(raw, server_hostname="localhost")
        else:
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=60)
        sock.sendall(HALF[n % 2])
        return sock

    def timed(self, method: str, path: str, body: str = "", **headers: str) -> float:
        """Seconds to a whole answer; PATIENCE when none came in time."""
        started = time.monotonic()
        connection = self.connection()
        try:
            connection.request(method, path, body=body or None, headers=headers)
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                raise SystemExit(f"{method} {path} answered {response.status}")
        except TimeoutError:
            return PATIENCE
        finally:
            connection.close()
        return time.monotonic() - started

    def healthz(self) -> float:
        return self.timed("GET", "/healthz")

    def webhook(self) -> float:
        params = {
            "CallSid": "CA" + secrets.token_hex(16),
            "AccountSid": "AC" + "cd" * 16,
            "From": "+15005550006",
            "To": "+15005550001",
            "CallStatus": "ringing",
        }
        url = self.origin + "/voice/"
        return self.timed(
            "POST",
            "/voice/",
            urllib.parse.urlencode(params),
            **{
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Twilio-Signature": RequestValidator(AUTH_TOKEN).compute_signature(url, params),
            },
        )


def under_slow_clients(target: Target, held: int) -> tuple[float, float]:
    """/healthz's and a webhook's seconds while ``held`` connections hold half requests."""
    with ExitStack() as stack:
        for n in range(held):
            stack.enter_context(closing(target.half_sent(n)))
        time.sleep(0.2)  # let the server take them in
        figures = target.healthz(), target.webhook()
    # The workers that were held come back when gunicorn's timeout (10 s) kills them.
    deadline = time.monotonic() + 60
    while target.healthz() > 0.5 and time.monotonic() < deadline:
        time.sleep(0.5)
    return figures


def quiet_cost(target: Target, requests: int) -> tuple[float, float]:
    """Median and p99 (ms) of sequential signed webhooks with no slow client."""
    times = sorted(target.webhook() * 1000 for _ in range(requests))
    return statistics.median(times), times[int(len(times) * 0.99) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--held", default="0,5,8,20", help="slow connections, comma separated")
    parser.add_argument("--requests", type=int, default=300, help="quiet webhooks per setup")
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    args = parser.parse_args()
    held_counts = [int(n) for n in args.held.split(",")]

    port = free_port()
    print(f"{machine()}; {WORKERS} gunicorn workers; {args.db}")
    rows = []
    gthread = ("-k", "gthread", "--threads", str(THREADS))
    for name, extra, proxied in [
        ("gunicorn sync, direct", (), False),
        (f"gunicorn gthread ({THREADS} threads), direct", gthread, False),
        ("nginx, then gunicorn sync", (), True),
    ]:
        database = fresh_database(args.db, "securegather_slow_clients")
        with ExitStack() as stack:
            proxy = stack.enter_context(nginx(port)) if proxied else None
            env = bench_env(
                database,
                DJANGO_ALLOWED_HOSTS="localhost",
                SECUREGATHER_PUBLIC_URL=proxy.origin if proxy else f"http://localhost:{port}",
                SECUREGATHER_TRUSTED_PROXY_HEADER="X-Forwarded-For" if proxy else "",
                SECUREGATHER_TRUSTED_PROXY_COUNT="1" if proxy else "0",
                DJANGO_SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto" if proxy else "",
            )
            manage(env, "migrate", "--noinput")
            stack.enter_context(gunicorn(env, port, *extra))
            target = Target(port, proxy)
            for _ in range(2 * WORKERS):  # every worker opens its database once
                target.webhook()
            stalls = {held: under_slow_clients(target, held) for held in held_counts}
            cost = quiet_cost(target, args.requests)
        rows.append((name, stalls, cost))
        print(f"{name}: done")

    print()
    header = " | ".join(f"{held} held: healthz / webhook" for held in held_counts)
    print(f"| setup | {header} | quiet webhook p50 / p99 |")
    print("|" + " --- |" * (len(held_counts) + 2))
    for name, stalls, (p50, p99) in rows:
        cells = " | ".join(
            f"{fmt(stalls[held][0])} / {fmt(stalls[held][1])}" for held in held_counts
        )
        print(f"| {name} | {cells} | {p50:.1f} / {p99:.1f} ms |")


def fmt(seconds: float) -> str:
    if seconds >= PATIENCE:
        return f"> {PATIENCE:.0f} s"
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


if __name__ == "__main__":
    main()
