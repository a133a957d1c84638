"""Django's SQLite backend, with writers queued on a lock file beside the database.

Every transaction here starts with ``BEGIN IMMEDIATE`` (settings), so SQLite lets one writer in
at a time, and the others wait in its busy handler: it sleeps and retries, in steps that grow to
100 ms, so a writer may sleep on long after the lock came free. With several gunicorn workers on
one file that idle time was a sixth of a saturated call step. Here each transaction first takes
an exclusive ``flock`` on ``<database>.writers``, which the kernel hands to the next waiter the
moment it is released; SQLite's own lock is then free, and its busy handler only serves writers
outside this backend (``sqlite3`` at a shell). In-memory databases (the tests') have one process
and no file: no gate.
"""

from __future__ import annotations

import fcntl
import os
from typing import Any

from django.db.backends.sqlite3 import base


# The hooks below are Django's private ones, which django-stubs leaves out: hence the ignores.
class DatabaseWrapper(base.DatabaseWrapper):
    _gate: int | None = None  # the lock file's descriptor, open while this wrapper is connected
    _gate_held = False

    def _gate_path(self) -> str | None:
        return None if self.is_in_memory_db() else f"{self.settings_dict['NAME']}.writers"

    def _enter_gate(self) -> None:
        if self._gate is None:
            if (path := self._gate_path()) is None:
                return
            self._gate = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self._gate, fcntl.LOCK_EX)
        self._gate_held = True

    def _leave_gate(self) -> None:
        if self._gate_held and self._gate is not None:
            self._gate_held = False
            fcntl.flock(self._gate, fcntl.LOCK_UN)

    def _start_transaction_under_autocommit(self) -> None:
        self._enter_gate()
        try:
            super()._start_transaction_under_autocommit()  # type: ignore[misc]
        except BaseException:
            self._leave_gate()
            raise

    def _commit(self) -> Any:
        try:
            return super()._commit()  # type: ignore[misc]
        finally:
            self._leave_gate()

    def _rollback(self) -> Any:
        try:
            return super()._rollback()  # type: ignore[misc]
        finally:
            self._leave_gate()

    def _close(self) -> Any:
        try:
            return super()._close()  # type: ignore[misc]
        finally:
            self._leave_gate()
            if self._gate is not None:
                os.close(self._gate)
                self._gate = None
