"""reload_service: a keys file that does not parse is refused before gunicorn hears of it, and
the running workers go on serving; a sound one reloads them. With a real gunicorn."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from conftest import SOUND_KEY, manage_with, server_env
from keys.keyring import new_key_entry

GUNICORN = Path(sys.executable).parent / "gunicorn"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def wait_until(condition, what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {seconds} s"
        time.sleep(0.2)


@pytest.fixture
def server(tmp_path):
    """gunicorn with the project's gunicorn.conf.py, its keyring in a file. One worker: once it
    answers, no worker is still booting, to read a keys file the test is about to break."""
    keys = tmp_path / "keys"
    keys.write_text(SOUND_KEY + "\n")
    env = server_env(tmp_path, SECUREGATHER_KEYS="", SECUREGATHER_KEYS_FILE=str(keys))
    migrate = manage_with(env, "migrate", "--noinput", "--verbosity", "0", timeout=120)
    assert migrate.returncode == 0, migrate.stderr
    port, pidfile = free_port(), tmp_path / "gunicorn.pid"
    process = subprocess.Popen(  # noqa: S603  (fixed arguments)
        [
            str(GUNICORN),
            "-c",
            "gunicorn.conf.py",
            "-w",
            "1",
            "-b",
            f"127.0.0.1:{port}",
            "--pid",
            str(pidfile),
            "securegather.wsgi",
        ],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_until(lambda: answers(port), "gunicorn answering")
        yield process, port, pidfile, keys, env
    finally:
        process.terminate()
        try:
            process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


def workers(master: int) -> set[int]:
    children = Path(f"/proc/{master}/task/{master}/children")
    return {int(pid) for pid in children.read_text().split()}


def test_a_keys_file_that_does_not_parse_is_refused_and_the_old_workers_keep_serving(server):
    process, port, pidfile, keys, env = server
    before = workers(process.pid)
    keys.write_text(SOUND_KEY + ",k2:not-hex\n")  # the typo
    run = manage_with(env, "reload_service", "--pidfile", str(pidfile))
    assert run.returncode == 1
    assert run.stderr == (
        "CommandError: Not reloaded: the new workers would fail to start (?: (securegather.E003) "
        "The keyring is unusable: key 'k2' is not hexadecimal.). The running workers go on "
        "serving with the configuration they have; fix it and run this again.\n"
    )
    time.sleep(2)  # what a HUP would have taken to stop the host
    assert process.poll() is None and answers(port)
    assert workers(process.pid) == before  # the same workers: no HUP was sent


def test_a_sound_keys_file_reloads_new_workers(server):
    process, port, pidfile, keys, env = server
    before = workers(process.pid)
    keys.write_text(f"{SOUND_KEY},{new_key_entry('k2')}\n")
    run = manage_with(env, "reload_service", "--pidfile", str(pidfile))
    assert (run.returncode, run.stderr) == (0, "")
    assert run.stdout.startswith(f"The checks pass: sent HUP to gunicorn (pid {process.pid}).")
    wait_until(lambda: not (workers(process.pid) & before), "the old workers replaced")
    assert answers(port)


def test_the_servers_own_environment_is_the_one_checked(server, tmp_path):
    """Run from a shell whose environment names another (sound) keyring, the check still reads
    the file the server reads."""
    process, _, _, keys, _ = server
    keys.write_text("k1:abcd\n")  # 2 bytes, not 32
    elsewhere = server_env(tmp_path, SECUREGATHER_KEYS=SOUND_KEY)
    run = manage_with(elsewhere, "reload_service", "--pid", str(process.pid))
    assert run.returncode == 1 and "securegather.E004" in run.stderr


def test_a_pid_that_is_not_gunicorn_is_refused():
    with pytest.raises(CommandError, match=f"Process {os.getpid()} is not gunicorn."):
        call_command("reload_service", "--pid", str(os.getpid()))


def test_a_missing_pid_file_says_what_to_check(tmp_path):
    with pytest.raises(CommandError) as refused:
        call_command("reload_service", "--pidfile", str(tmp_path / "none.pid"))
    assert str(refused.value) == (
        f"Cannot read the pid file {tmp_path / 'none.pid'}: No such file or directory. Is "
        f"gunicorn running with --pid {tmp_path / 'none.pid'}?"
    )


def test_a_process_that_is_gone_is_refused():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    with pytest.raises(CommandError, match=f"No process {child.pid}: gunicorn is not running."):
        call_command("reload_service", "--pid", str(child.pid))


def test_a_worker_is_refused_with_its_masters_pid(server):
    process, _, _, _, _ = server
    (worker,) = workers(process.pid)
    with pytest.raises(CommandError) as refused:
        call_command("reload_service", "--pid", str(worker))
    assert str(refused.value) == (
        f"Process {worker} is a gunicorn worker: give its master's pid ({process.pid}), or the "
        "pid file gunicorn writes (--pid)."
    )
    assert workers(process.pid) == {worker}
