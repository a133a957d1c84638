"""The SQLite backend's writer gate: a transaction holds the lock file from BEGIN to its end."""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import OperationalError, connections
from django.db.backends.sqlite3 import base
from django.db.utils import ConnectionHandler

from securegather.backends.sqlite.base import DatabaseWrapper


@pytest.fixture
def sqlite_file(tmp_path: Path, django_db_blocker) -> Iterator[tuple[DatabaseWrapper, Path]]:
    # A database of the test's own, outside the test database pytest-django manages.
    handler = ConnectionHandler(
        {
            "default": {
                "ENGINE": "securegather.backends.sqlite",
                "NAME": str(tmp_path / "db.sqlite3"),
                "OPTIONS": {"transaction_mode": "IMMEDIATE"},
            }
        }
    )
    wrapper = handler["default"]
    with django_db_blocker.unblock():
        yield wrapper, tmp_path / "db.sqlite3.writers"
        wrapper.close()


def gate_is_free(path: Path) -> bool:
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return True
    finally:
        os.close(fd)


def begin(wrapper: DatabaseWrapper) -> None:
    # What transaction.atomic() does on entry for SQLite.
    wrapper.set_autocommit(False, force_begin_transaction_with_broken_autocommit=True)


def test_a_transaction_holds_the_gate_until_commit(sqlite_file):
    wrapper, gate = sqlite_file
    begin(wrapper)
    assert not gate_is_free(gate)
    wrapper.cursor().execute("CREATE TABLE t (x integer)")
    wrapper.commit()
    wrapper.set_autocommit(True)
    assert gate_is_free(gate)


def test_rollback_and_close_let_go_of_the_gate(sqlite_file):
    wrapper, gate = sqlite_file
    begin(wrapper)
    wrapper.rollback()
    wrapper.set_autocommit(True)
    assert gate_is_free(gate)
    begin(wrapper)
    wrapper.close()
    assert gate_is_free(gate)


def test_a_second_writer_waits_at_the_gate_then_goes_in(sqlite_file):
    wrapper, _ = sqlite_file
    # No busy timeout: a writer that met SQLite's lock would fail at once with "locked".
    settings = {**wrapper.settings_dict, "OPTIONS": {"timeout": 0, "transaction_mode": "IMMEDIATE"}}
    began, errors = threading.Event(), []

    def second_writer() -> None:
        other = DatabaseWrapper(settings, alias="other")
        try:
            begin(other)
            began.set()
            other.rollback()
        except Exception as exc:  # reported by the assertion below
            errors.append(exc)
        finally:
            other.close()

    begin(wrapper)
    thread = threading.Thread(target=second_writer)
    thread.start()
    assert not began.wait(0.3), "the second writer began while the first held the gate"
    wrapper.commit()
    wrapper.set_autocommit(True)
    thread.join(10)
    assert began.is_set() and not errors


def test_a_writer_outside_the_gate_still_meets_sqlites_lock(sqlite_file):
    wrapper, _ = sqlite_file
    begin(wrapper)
    outsider = base.DatabaseWrapper({**wrapper.settings_dict, "OPTIONS": {"timeout": 0}}, "x")
    with pytest.raises(OperationalError, match="locked"):
        outsider.cursor().execute("BEGIN IMMEDIATE")
    outsider.close()
    wrapper.rollback()
    wrapper.set_autocommit(True)


def test_in_memory_databases_have_no_gate(db):
    wrapper = connections["default"]
    if wrapper.vendor != "sqlite":
        pytest.skip("the default database is not SQLite in this run")
    assert wrapper._gate_path() is None
