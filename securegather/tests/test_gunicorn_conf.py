"""gunicorn.conf.py: workers answer inside Twilio's 15 s; the access log holds no body; the
service's start, reload and stop are recorded."""

from __future__ import annotations

import os
import runpy
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from django.conf import settings

CONF = Path(settings.BASE_DIR) / "gunicorn.conf.py"


METRICS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def load(monkeypatch, **env: str) -> dict:
    """The file as gunicorn reads it. The metrics directory is named (the file would make one, and
    set it in this process's environment) unless a test says otherwise: monkeypatch restores it."""
    for name in ("GUNICORN_WORKERS", "GUNICORN_BIND"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(METRICS_VARIABLE, "/nonexistent/securegather-metrics")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    if env.get(METRICS_VARIABLE) == "":
        monkeypatch.delenv(METRICS_VARIABLE)
    return runpy.run_path(str(CONF))


def test_each_master_makes_a_metrics_directory_of_its_own_and_keeps_it_across_reloads(
    monkeypatch, tmp_path
):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    # What another local user could make first under the name of old: the pid is easy to guess.
    planted = tmp_path / f"securegather-metrics-{os.getpid()}"
    planted.mkdir()
    planted.chmod(0o777)
    made = Path(load(monkeypatch, PROMETHEUS_MULTIPROC_DIR="")["metrics_dir"])
    assert made != planted and made.parent == tmp_path
    assert made.name.startswith("securegather-metrics-")
    info = made.lstat()
    assert (stat.S_IMODE(info.st_mode), info.st_uid) == (0o700, os.geteuid())
    # Read again on HUP, in the same process: the same directory, from the environment.
    assert os.environ[METRICS_VARIABLE] == str(made)
    assert runpy.run_path(str(CONF))["metrics_dir"] == str(made)


def test_a_metrics_directory_named_is_made_private_or_refused_when_others_could_write(
    monkeypatch, tmp_path
):
    fresh = tmp_path / "fresh"
    load(monkeypatch, PROMETHEUS_MULTIPROC_DIR=str(fresh))["on_starting"](None)
    assert stat.S_IMODE(fresh.lstat().st_mode) == 0o700
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    link = tmp_path / "link"
    link.symlink_to(fresh)
    for named in (shared, link):
        conf = load(monkeypatch, PROMETHEUS_MULTIPROC_DIR=str(named))
        with pytest.raises(RuntimeError, match=f"{METRICS_VARIABLE}={named} is not a directory"):
            conf["on_starting"](None)


def test_workers_follow_the_cpu_count_up_to_8(monkeypatch):
    monkeypatch.setattr("multiprocessing.cpu_count", lambda: 2)
    assert load(monkeypatch)["workers"] == 5
    monkeypatch.setattr("multiprocessing.cpu_count", lambda: 64)
    assert load(monkeypatch)["workers"] == 8
    assert load(monkeypatch, GUNICORN_WORKERS="3")["workers"] == 3


def test_a_stuck_worker_is_restarted_well_before_twilio_gives_up_at_15_s(monkeypatch):
    conf = load(monkeypatch)
    assert conf["timeout"] <= 10 and conf["graceful_timeout"] <= 10


def test_the_access_log_has_the_path_only(monkeypatch):
    fmt = load(monkeypatch)["access_log_format"]
    assert "%(U)s" in fmt
    # %(r)s is the request line and %(q)s the query string; gunicorn has no body field.
    assert "%(r)s" not in fmt and "%(q)s" not in fmt and "{" not in fmt


def test_it_binds_to_loopback_unless_told(monkeypatch):
    assert load(monkeypatch)["bind"] == "127.0.0.1:8000"
    assert load(monkeypatch, GUNICORN_BIND="0.0.0.0:8000")["bind"] == "0.0.0.0:8000"


def test_a_worker_freezes_the_loaded_application_out_of_the_cyclic_collector(monkeypatch):
    from gunicorn.config import Config

    hook = load(monkeypatch)["post_worker_init"]
    # gunicorn takes it as its hook: a callable of one argument, the worker.
    config = Config()
    config.set("post_worker_init", hook)
    assert config.post_worker_init is hook
    frozen = []
    monkeypatch.setattr("gc.freeze", lambda: frozen.append(True))
    hook(object())
    assert frozen == [True]


def test_no_control_socket_is_opened(monkeypatch):
    from gunicorn.config import Config

    config = Config()
    config.set("control_socket_disable", load(monkeypatch)["control_socket_disable"])
    assert config.control_socket_disable is True


class FakeLog:
    def __init__(self) -> None:
        self.errors: list[str] = []

    def error(self, message: str, *args: object) -> None:
        self.errors.append(message % args)


class FakeServer:
    def __init__(self) -> None:
        self.log = FakeLog()


def test_start_reload_and_stop_are_hooks_that_record_the_service(monkeypatch):
    from gunicorn.config import Config

    conf = load(monkeypatch)
    runs = []

    def run(command, **kwargs):
        runs.append((command, kwargs["cwd"]))
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr("subprocess.run", run)
    config = Config()
    for hook in ("when_ready", "on_reload", "on_exit"):
        config.set(hook, conf[hook])  # gunicorn takes each: a callable of one argument
        getattr(config, hook)(FakeServer())
    assert runs == [
        (
            [sys.executable, "manage.py", "record_service", what, f"--pid={os.getpid()}"],
            CONF.parent,
        )
        for what in ("started", "reloaded", "stopped")
    ]


SYSTEM_CHECK_FAILED = """SystemCheckError: System check identified some issues:

ERRORS:
?: (securegather.E003) The keyring is unusable: key 'k1' is not hexadecimal.
\tHINT: Set SECUREGATHER_KEYS (or SECUREGATHER_KEYS_FILE) to 'kid:64-hex-chars' entries.

System check identified 1 issue (0 silenced).
"""


@pytest.mark.parametrize(
    ("outcome", "logged"),
    [
        (
            subprocess.CompletedProcess(
                [], 1, "", "CommandError: Cannot connect to the database.\n"
            ),
            "CommandError: Cannot connect to the database.",
        ),
        (
            subprocess.CompletedProcess([], 1, "", SYSTEM_CHECK_FAILED),
            "?: (securegather.E003) The keyring is unusable: key 'k1' is not hexadecimal.",
        ),
        (subprocess.CompletedProcess([], -9, "", ""), "exit status -9"),
        (
            subprocess.TimeoutExpired("manage.py", 30),
            "TimeoutExpired: Command 'manage.py' timed out after 30 seconds",
        ),
    ],
)
def test_a_row_not_recorded_is_an_error_in_the_server_log(monkeypatch, outcome, logged):
    def run(command, **kwargs):
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    conf = load(monkeypatch)
    monkeypatch.setattr("subprocess.run", run)
    server = FakeServer()
    conf["when_ready"](server)  # the server still starts: a lost row is not a lost call
    assert len(server.log.errors) == 1
    assert server.log.errors == [f"The audit log did not record service_started: {logged}"]
