"""Reloading the web service only with a configuration its new workers can start with.

On HUP, gunicorn's master reads its configuration again, starts new workers and stops the old
ones. Each new worker runs the system checks as it loads the application (securegather.checks),
and a worker that fails them fails to boot, on which gunicorn's master stops: a typo in the keys
file, then `kill -HUP`, and the host serves nothing. So the checks run first, as the new workers
will run them (`manage.py check`, in the master's own environment where the system shows it),
and the signal is sent only when they pass. Nothing changes otherwise: the old workers go on
serving.

The checks run with the master's settings but nothing else of its: only the variables the
settings read pass (SERVICE_VARIABLES), Python ignores its own (-E) and the user's site-packages
(-s), and the process must be the caller's own. It runs as the service's user, never as root: root
would run code from whatever process it was pointed at, as root.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from django.conf import settings

# A command measures nothing for /metrics (monitoring.metrics): it writes no file among the
# workers'.
METRICS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
# What of the master's environment the checks see: what settings.py and gunicorn.conf.py read,
# libpq's own (PG*, and HOME for ~/.pgpass) and the locale. Never PYTHON* nor LD_*, which would
# load code of the process's choosing, nor PATH: the interpreter is named in full.
SERVICE_VARIABLES = re.compile(
    r"^(?:DJANGO_\w*|SECUREGATHER_\w*|TWILIO_\w*|GUNICORN_\w*|PG\w*|LC_\w*|DATABASE_URL|LANG|TZ|HOME)$"
)


class ReloadRefused(Exception):
    pass


def read_pid(pidfile: Path) -> int:
    try:
        text = pidfile.read_text().strip()
    except OSError as exc:
        raise ReloadRefused(
            f"Cannot read the pid file {pidfile}: {exc.strerror}. Is gunicorn running with "
            f"--pid {pidfile}?"
        ) from None
    if not text.isdigit():
        raise ReloadRefused(f"The pid file {pidfile} holds no process id.")
    return int(text)


def process_file(pid: int, name: str) -> bytes | None:
    """/proc/<pid>/<name> where the system has it (Linux), else None."""
    try:
        return Path(f"/proc/{pid}/{name}").read_bytes()
    except OSError:
        return None


def environment_of(pid: int) -> dict[str, str]:
    """The variables of SERVICE_VARIABLES in the environment gunicorn's master runs with, which
    its new workers inherit. Where the system does not show it, nothing is checked: this
    command's own environment is not the server's."""
    raw = process_file(pid, "environ")
    if raw is None:
        raise ReloadRefused(
            f"Cannot read the environment of process {pid} (/proc/{pid}/environ): run this as "
            "the service's user on the host gunicorn runs on."
        )
    entries = raw.decode(errors="surrogateescape").split("\0")
    pairs = (entry.split("=", 1) for entry in entries if "=" in entry)
    return {name: value for name, value in pairs if SERVICE_VARIABLES.match(name)}


def directory_of(pid: int) -> str:
    """The master's working directory: relative paths in its settings are read from there."""
    try:
        return os.readlink(f"/proc/{pid}/cwd")
    except OSError as exc:
        raise ReloadRefused(
            f"Cannot read the working directory of process {pid}: {exc.strerror}."
        ) from None


def refuse_root() -> None:
    if os.geteuid() == 0:
        raise ReloadRefused(
            "reload_service does not run as root: run it as the service's user, e.g. "
            "`sudo -u securegather .venv/bin/python manage.py reload_service --pidfile FILE`."
        )


def owner_of(pid: int) -> int | None:
    try:
        return os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return None


def is_gunicorn(pid: int) -> bool | None:
    """Whether the process runs gunicorn (its program, or `python -m gunicorn`); None where the
    system does not say."""
    raw = process_file(pid, "cmdline")
    if raw is None:
        return None
    args = [Path(arg.decode(errors="replace")).name for arg in raw.split(b"\0")[:3]]
    # "gunicorn: master [...]" is the title gunicorn gives itself when setproctitle is installed.
    return any(arg == "gunicorn" or arg.startswith("gunicorn:") for arg in args[:2]) or (
        args[1:3] == ["-m", "gunicorn"]
    )


def parent_of(pid: int) -> int | None:
    raw = process_file(pid, "stat")
    if raw is None:
        return None
    # "pid (command) state ppid ...": the command may hold spaces and parentheses.
    return int(raw.rsplit(b")", 1)[1].split()[1])


def ensure_gunicorn(pid: int) -> None:
    """Refuse a pid that is not a gunicorn master: HUP stops most other processes."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        raise ReloadRefused(f"No process {pid}: gunicorn is not running.") from None
    except PermissionError:
        owner = None
    else:
        owner = owner_of(pid)
    if owner != os.geteuid():
        raise ReloadRefused(
            f"Process {pid} belongs to another user: run this as the service's user."
        )
    if is_gunicorn(pid) is False:
        raise ReloadRefused(f"Process {pid} is not gunicorn.")
    parent = parent_of(pid)
    if parent is not None and is_gunicorn(parent):
        raise ReloadRefused(
            f"Process {pid} is a gunicorn worker: give its master's pid ({parent}), or the pid "
            "file gunicorn writes (--pid)."
        )


def check_problem(env: dict[str, str], directory: str) -> str | None:
    """The first error `manage.py check` finds with ``env`` in ``directory``, or None when it
    passes. This project's manage.py, by its full path: -E -s leave Python's path to the
    project's own directory and the interpreter's site-packages (-I would drop the former)."""
    env = {name: value for name, value in env.items() if name != METRICS_VARIABLE}
    done = subprocess.run(  # noqa: S603  (this interpreter and this project's manage.py)
        [sys.executable, "-E", "-s", str(Path(settings.BASE_DIR) / "manage.py"), "check"],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode == 0:
        return None
    lines = [line.strip() for line in (done.stderr + done.stdout).splitlines() if line.strip()]
    for line in lines:
        # A system check's error ("?: (securegather.E003) …"), or manage.py's own one line.
        if re.search(r"\(\w+\.E\d+\)", line) or line.startswith(("manage.py:", "CommandError:")):
            return line
    return lines[-1] if lines else f"exit status {done.returncode}"


def reload_service(pid: int) -> None:
    """Check the configuration as gunicorn's new workers will, then send its master HUP."""
    refuse_root()
    ensure_gunicorn(pid)
    problem = check_problem(environment_of(pid), directory_of(pid))
    if problem is not None:
        raise ReloadRefused(
            f"Not reloaded: the new workers would fail to start ({problem}). The running "
            "workers go on serving with the configuration they have; fix it and run this again."
        )
    os.kill(pid, signal.SIGHUP)
