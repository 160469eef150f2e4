"""Waiting for other servers' changesets: ``LISTEN`` on the store's channel over a connection of its own.

Writers announce each changeset with ``NOTIFY`` in their transaction (delivered at commit). The listener's
:meth:`Listener.wait` returns when a notification arrives, or after a while (so a missed one is caught up by the
feed's read of the log), or when its connection broke (it reconnects on the next call, with a pause while the
database is down).
"""

from __future__ import annotations

import logging
import threading
import time

import psycopg

from twin.errors import StoreUnavailableError
from twin.store.postgis.connect import Target, connect

log = logging.getLogger(__name__)
#: Longest wait without a notification before the feed reads the log all the same.
QUIET_S = 5.0
#: How often a waiting listener looks whether it was told to stop (closing a store waits at most this long).
TICK_S = 0.2


class Listener:
    def __init__(self, target: Target, channel: str) -> None:
        self.target = target
        self.channel = channel
        self._conn: psycopg.Connection | None = None

    def _connected(self, stop: threading.Event) -> psycopg.Connection | None:
        while self._conn is None or self._conn.closed:
            try:
                self._conn = connect(self.target)
                self._conn.execute(f'LISTEN "{self.channel}"')
            except (StoreUnavailableError, psycopg.Error) as exc:
                log.warning("change listener: %s; retrying", exc)
                self._conn = None
                if stop.wait(2.0):
                    return None
        return self._conn

    def wait(self, stop: threading.Event) -> None:
        """Return after a notification, after :data:`QUIET_S`, when ``stop`` is set, or when the connection
        broke."""
        conn = self._connected(stop)
        if conn is None:
            return
        quiet_until = time.monotonic() + QUIET_S
        try:
            while not stop.is_set() and time.monotonic() < quiet_until:
                if any(True for _ in conn.notifies(timeout=TICK_S, stop_after=1)):
                    break
        except psycopg.OperationalError:
            log.warning("change listener lost its connection; reconnecting")
            conn.close()
        if stop.is_set():
            conn.close()
