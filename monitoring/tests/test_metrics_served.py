"""Under gunicorn with several workers, a scrape of any of them gives the whole service's figures:
each worker writes its own to the directory gunicorn.conf.py names, and a scrape sums them."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from django.conf import settings
from prometheus_client.parser import text_string_to_metric_families

from conftest import manage_with, server_env

GUNICORN = Path(sys.executable).parent / "gunicorn"
TOKEN = "m" * 40
REQUESTS = 30


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def post_unsigned(port: int) -> int:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/voice/", data=b"CallSid=x")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def incoming_steps(port: int) -> float:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        text = response.read().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "securegather_step_seconds_count" and sample.labels == {
                "step": "incoming"
            }:
                return sample.value
    return 0


def test_every_scrape_sums_every_workers_step_latency(tmp_path):
    # Plain http, as a scraper on the host would speak to gunicorn behind a TLS proxy.
    env = server_env(tmp_path, SECUREGATHER_METRICS_TOKEN=TOKEN, DJANGO_SECURE_SSL_REDIRECT="false")
    metrics_dir = tmp_path / "metrics"
    env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    migrate = manage_with(env, "migrate", "--noinput", "--verbosity", "0", timeout=120)
    assert migrate.returncode == 0, migrate.stderr
    port = free_port()
    server = subprocess.Popen(  # noqa: S603  (fixed arguments)
        [
            str(GUNICORN),
            "-c",
            "gunicorn.conf.py",
            "-w",
            "3",
            "-b",
            f"127.0.0.1:{port}",
            "securegather.wsgi",
        ],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while post_unsigned(port) != 403:  # unsigned: refused, and timed as a step
            assert server.poll() is None and time.monotonic() < deadline, "gunicorn did not start"
            time.sleep(0.2)
        time.sleep(3)  # every worker booted
        for _ in range(REQUESTS - 1):
            assert post_unsigned(port) == 403
        # Scrapes land on different workers: each gives the sum of all of them.
        figures = {incoming_steps(port) for _ in range(12)}
        assert figures == {REQUESTS}
        assert len(list(metrics_dir.glob("histogram_*.db"))) >= 2  # more than one worker wrote
    finally:
        server.terminate()
        server.wait(timeout=60)
    assert not metrics_dir.exists()  # gunicorn's exit removes it
