"""Django's PostgreSQL backend, with a connection health check that costs no round trip.

With CONN_HEALTH_CHECKS on, Django checks a kept connection before each request's first query by
running ``SELECT 1``: one round trip per request, one in six of a call step's. A server that
restarted, or ended the session, has said so on the socket already: PostgreSQL sends a FATAL error
before it closes a connection, and the kernel an end of file. Between requests an idle connection
has nothing else to read (nothing here LISTENs), so a readable socket means a dead connection.
A host that vanished without a word passes this check, as it would pass SELECT 1 until a timeout.
"""

from __future__ import annotations

import select

from django.db.backends.postgresql import base
from psycopg.pq import TransactionStatus


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self) -> bool:
        connection = self.connection
        if connection is None or connection.closed or connection.broken:
            return False
        if connection.info.transaction_status != TransactionStatus.IDLE:
            # Mid-transaction or failed: only a query tells.
            return super().is_usable()
        readable, _, _ = select.select([connection.fileno()], [], [], 0)
        return not readable
