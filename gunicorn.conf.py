"""gunicorn settings: `gunicorn -c gunicorn.conf.py securegather.wsgi`."""

import contextlib
import gc
import multiprocessing
import os
import re
import stat
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
# Steps are short and mostly wait on the database: two workers a core, at most 8 a host.
workers = int(os.environ.get("GUNICORN_WORKERS", min(multiprocessing.cpu_count() * 2 + 1, 8)))
# Twilio waits 15 s for a webhook; a worker stuck far shorter than that is restarted.
timeout = 10
graceful_timeout = 10
accesslog = "-"
# Path only (%(U)s), never the query string, and never a body: nothing a caller typed.
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms "%(a)s"'
# No control socket: nothing here uses gunicornc, and its default path (~/.gunicorn/gunicorn.ctl)
# is one per user, so a second gunicorn (a benchmark beside `make run`) would take it over.
control_socket_disable = True

# Each worker writes the figures it measures itself (step latency, lost audit rows) to a file of
# its own in this directory, and a scrape of /metrics on any worker sums them all
# (monitoring.metrics). One directory per master, made by mkdtemp (a new name, the master's
# alone, mode 0700: never one another local user made first under a name they could guess), and
# kept across reloads: this file is read again on HUP, in the same process, and finds it in the
# environment, where the workers forked later find it too. Not gunicorn's raw_env: gunicorn
# removes what raw_env set before it reads this file again.
METRICS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
metrics_dir = os.environ.get(METRICS_VARIABLE) or tempfile.mkdtemp(prefix="securegather-metrics-")
os.environ[METRICS_VARIABLE] = metrics_dir


def post_worker_init(worker: object) -> None:
    # The application is loaded, and lives as long as the worker: frozen, its objects are left
    # out of the cyclic collector's passes, which otherwise walk all of them at every full one.
    gc.freeze()


def record_service(server: Any, what: str) -> None:
    """The audit row for the service starting, reloading or stopping (PCI DSS 10.2.1.6), written by
    `manage.py record_service` in a process of its own: loading Django here, in the master, would
    hand every worker forked later the settings read now, and a reload (HUP) would not re-read
    them."""
    command = [sys.executable, "manage.py", "record_service", what, f"--pid={os.getpid()}"]
    # A command measures nothing for /metrics: it writes no file among the workers'.
    env = {name: value for name, value in os.environ.items() if name != METRICS_VARIABLE}
    try:
        done = subprocess.run(  # noqa: S603  (fixed arguments)
            command, cwd=Path(__file__).parent, env=env, capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        failure = f"{type(exc).__name__}: {exc}"
    else:
        if done.returncode == 0:
            return
        failure = _why(done.stderr + done.stdout) or f"exit status {done.returncode}"
    server.log.error("The audit log did not record service_%s: %s", what, failure)


def _why(output: str) -> str:
    """The line of a failed command's output that says why: its error, or a system check's."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for line in lines:
        if line.startswith("CommandError:") or re.search(r"\(\w+\.E\d+\)", line):
            return line
    return lines[-1] if lines else ""


def forget_metrics() -> None:
    """Remove the figures' files (prometheus-client names them *.db), and nothing else."""
    for path in Path(metrics_dir).glob("*.db"):
        path.unlink(missing_ok=True)


def private_directory(path: str) -> None:
    """Make ``path`` (mode 0700) or accept it only as a directory of this user's that no one else
    may write to, and not a link: anyone who can write there could forge the figures or have
    the workers write where they choose."""
    os.makedirs(path, mode=0o700, exist_ok=True)
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o022:
        # gunicorn prints a RuntimeError's message and exits 1, before any worker starts.
        raise RuntimeError(
            f"{METRICS_VARIABLE}={path} is not a directory of this user's that only it can "
            "write to (a link, another user's, or group- or world-writable): name another, or "
            "leave it unset for a new one."
        )


def on_starting(server: Any) -> None:
    private_directory(metrics_dir)
    # Figures of a previous server, whose workers' pids may come again, are not this one's.
    forget_metrics()


def when_ready(server: Any) -> None:
    record_service(server, "started")


def on_reload(server: Any) -> None:
    record_service(server, "reloaded")


def on_exit(server: Any) -> None:
    record_service(server, "stopped")
    forget_metrics()
    with contextlib.suppress(OSError):  # a directory named in the environment may hold more
        os.rmdir(metrics_dir)
