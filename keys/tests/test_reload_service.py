"""reload_service: a keys file that does not parse is refused before gunicorn hears of it, and
the running workers go on serving; a sound one reloads them. With a real gunicorn."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from conftest import SOUND_KEY, server_env
from keys import reloading
from keys.keyring import new_key_entry
from keys.reloading import ReloadRefused, environment_of, is_gunicorn, process_file

GUNICORN = Path(sys.executable).parent / "gunicorn"
# reload_service runs as the service's user, never as root; a test run as root plays that user
# with nobody's uid. The interpreter may live where only root can read (pyenv under /root), so
# the process keeps the capability to read and search files, and none to write them.
SERVICE_UID = 65534


def as_service_user() -> list[str]:
    """The prefix of a command line that runs it as the service's user: as is, unless root."""
    if os.geteuid() != 0:
        return []
    caps = "+dac_read_search"
    ids = [f"--reuid={SERVICE_UID}", f"--regid={SERVICE_UID}", "--clear-groups"]
    return ["setpriv", *ids, f"--inh-caps={caps}", f"--ambient-caps={caps}"]


def owned_by_service_user(directory: Path) -> Path:
    if os.geteuid() == 0:
        os.chown(directory, SERVICE_UID, SERVICE_UID)
    return directory


def service_manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """manage.py as the service's user, with ``env`` as its whole environment."""
    return subprocess.run(  # noqa: S603  (this interpreter and manage.py, with the test's words)
        [*as_service_user(), sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


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
    owned_by_service_user(tmp_path)
    keys = tmp_path / "keys"
    keys.write_text(SOUND_KEY + "\n")
    env = server_env(tmp_path, SECUREGATHER_KEYS="", SECUREGATHER_KEYS_FILE=str(keys))
    migrate = service_manage(env, "migrate", "--noinput", "--verbosity", "0")
    assert migrate.returncode == 0, migrate.stderr
    port, pidfile, log = free_port(), tmp_path / "gunicorn.pid", tmp_path / "gunicorn.log"
    process = subprocess.Popen(  # noqa: S603  (fixed arguments)
        [
            *as_service_user(),
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
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until(lambda: answers(port), "gunicorn answering")
        yield process, port, pidfile, keys, env
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def workers(master: int) -> set[int]:
    children = Path(f"/proc/{master}/task/{master}/children")
    return {int(pid) for pid in children.read_text().split()}


def test_a_keys_file_that_does_not_parse_is_refused_and_the_old_workers_keep_serving(server):
    process, port, pidfile, keys, env = server
    before = workers(process.pid)
    keys.write_text(SOUND_KEY + ",k2:not-hex\n")  # the typo
    run = service_manage(env, "reload_service", "--pidfile", str(pidfile))
    assert run.returncode == 1
    assert run.stderr == (
        "CommandError: Not reloaded: the new workers would fail to start (?: (securegather.E003) "
        "The keyring is unusable: key 'k2' is not hexadecimal.). The running workers go on "
        "serving with the configuration they have; fix it and run this again.\n"
    )
    assert process.poll() is None and answers(port)
    assert workers(process.pid) == before
    # Fixed, and reloaded: gunicorn logs each HUP it handles, and it handled this one alone.
    keys.write_text(SOUND_KEY + "\n")
    assert service_manage(env, "reload_service", "--pidfile", str(pidfile)).returncode == 0
    wait_until(lambda: not (workers(process.pid) & before), "the old workers replaced")
    log = (pidfile.parent / "gunicorn.log").read_text()
    assert log.count("Handling signal: hup") == 1, log


def test_a_sound_keys_file_reloads_new_workers(server):
    process, port, pidfile, keys, env = server
    before = workers(process.pid)
    keys.write_text(f"{SOUND_KEY},{new_key_entry('k2')}\n")
    run = service_manage(env, "reload_service", "--pidfile", str(pidfile))
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
    run = service_manage(elsewhere, "reload_service", "--pid", str(process.pid))
    assert run.returncode == 1 and "securegather.E004" in run.stderr


@contextmanager
def fake_gunicorn(env: dict[str, str], directory: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A process of the service's user that calls itself gunicorn, in ``directory``."""
    process = subprocess.Popen(  # noqa: S603  (fixed arguments)
        [*as_service_user(), "bash", "-c", "exec -a gunicorn sleep 120"], cwd=directory, env=env
    )
    try:
        wait_until(lambda: is_gunicorn(process.pid), "the process named gunicorn")
        yield process
    finally:
        process.kill()
        process.wait()


def test_a_process_naming_its_own_python_path_runs_none_of_it(tmp_path):
    """Its PYTHONPATH's sitecustomize.py is not run by the checks, and its keys file is read
    from its own working directory."""
    planted = owned_by_service_user(tmp_path)
    (planted / "sitecustomize.py").write_text(
        "from pathlib import Path\nPath(__file__).with_name('ran').write_text('ran')\n"
    )
    (planted / "keys").write_text(SOUND_KEY + "\n")
    env = server_env(tmp_path, SECUREGATHER_KEYS="", SECUREGATHER_KEYS_FILE="keys")
    env |= {"PYTHONPATH": str(planted), "PYTHONSTARTUP": str(planted / "sitecustomize.py")}
    with fake_gunicorn(env, planted) as process:
        run = service_manage(server_env(tmp_path), "reload_service", "--pid", str(process.pid))
    assert (run.returncode, run.stderr) == (0, "")
    assert not (planted / "ran").exists()


def test_only_the_services_variables_are_read_from_its_environment():
    env = {
        "DJANGO_SETTINGS_MODULE": "securegather.settings",
        "SECUREGATHER_KEYS": SOUND_KEY,
        "DATABASE_URL": "sqlite:///db.sqlite3",
        "LANG": "C.UTF-8",
        "PYTHONPATH": "/srv/planted",
        "PYTHONHOME": "/srv/planted",
        "LD_PRELOAD": "/srv/planted.so",
        "PATH": "/srv/planted",
        "EDITOR": "vi",
    }
    child = subprocess.Popen(["/bin/sleep", "60"], env=env)
    try:
        wait_until(lambda: (process_file(child.pid, "environ") or b"").count(b"\0") >= 9, "exec")
        seen = environment_of(child.pid)
    finally:
        child.kill()
        child.wait()
    assert seen == {
        name: env[name]
        for name in ("DJANGO_SETTINGS_MODULE", "SECUREGATHER_KEYS", "DATABASE_URL", "LANG")
    }


def test_an_environment_the_system_does_not_show_is_refused_not_replaced(monkeypatch):
    monkeypatch.setattr(reloading, "process_file", lambda pid, name: None)
    with pytest.raises(ReloadRefused, match=r"Cannot read the environment of process \d+"):
        environment_of(os.getpid())


def test_root_is_refused_with_the_way_to_run_it(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    with pytest.raises(CommandError) as refused:
        call_command("reload_service", "--pid", str(os.getpid()))
    assert str(refused.value) == (
        "reload_service does not run as root: run it as the service's user, e.g. `sudo -u "
        "securegather .venv/bin/python manage.py reload_service --pidfile FILE`."
    )


def test_another_users_process_is_refused(monkeypatch):
    # This process is not the user's whom the command runs as (a uid that owns nothing here).
    monkeypatch.setattr(os, "geteuid", lambda: 54321)
    with pytest.raises(CommandError, match=f"Process {os.getpid()} belongs to another user"):
        call_command("reload_service", "--pid", str(os.getpid()))


def test_a_pid_that_is_not_gunicorn_is_refused(tmp_path):
    sleeper = subprocess.Popen([*as_service_user(), "/bin/sleep", "60"])  # noqa: S603
    try:
        wait_until(lambda: is_gunicorn(sleeper.pid) is False, "sleep running")
        run = service_manage(server_env(tmp_path), "reload_service", "--pid", str(sleeper.pid))
    finally:
        sleeper.kill()
        sleeper.wait()
    assert run.stderr == f"CommandError: Process {sleeper.pid} is not gunicorn.\n"


def test_a_missing_pid_file_says_what_to_check(tmp_path):
    missing = owned_by_service_user(tmp_path) / "none.pid"
    run = service_manage(server_env(tmp_path), "reload_service", "--pidfile", str(missing))
    assert run.stderr == (
        f"CommandError: Cannot read the pid file {missing}: No such file or directory. Is "
        f"gunicorn running with --pid {missing}?\n"
    )


def test_a_process_that_is_gone_is_refused(tmp_path):
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    run = service_manage(server_env(tmp_path), "reload_service", "--pid", str(child.pid))
    assert run.stderr == f"CommandError: No process {child.pid}: gunicorn is not running.\n"


def test_a_worker_is_refused_with_its_masters_pid(server):
    process, _, _, _, env = server
    (worker,) = workers(process.pid)
    run = service_manage(env, "reload_service", "--pid", str(worker))
    assert run.stderr == (
        f"CommandError: Process {worker} is a gunicorn worker: give its master's pid "
        f"({process.pid}), or the pid file gunicorn writes (--pid).\n"
    )
    assert workers(process.pid) == {worker}
