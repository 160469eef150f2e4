"""SQLite connections kept one per thread and closed together: read-only ones to a store file
(:class:`ReaderPool`), and the general pool it is built on (:class:`ThreadConnections`)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

from twin.store.gpkg.blob import register_sql_functions


class ThreadConnections:
    """One connection per thread, made by ``connect`` on the thread's first use; ``close`` closes them all."""

    def __init__(self, connect: Callable[[], sqlite3.Connection]) -> None:
        self._connect = connect
        self._local = threading.local()
        self._lock = threading.Lock()
        self._all: list[sqlite3.Connection] = []

    def get(self) -> sqlite3.Connection:
        """This thread's connection, opened on first use."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def close(self) -> None:
        """Close every connection opened, in any thread."""
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()


class ReaderPool(ThreadConnections):
    """Per-thread read-only connections to one GeoPackage, for services that read from many threads.

    Each connection has a modest private page cache; the operating system's page cache holds the hot
    pages for all of them. No mmap: every connection would map the whole file again, inflating RSS.
    ``setup`` adds what a caller needs on each new connection (SQL functions, pragmas).
    """

    def __init__(self, path: Path, *, cache_kib: int = 16384,
                 setup: Callable[[sqlite3.Connection], None] | None = None) -> None:
        self.path = Path(path)
        self._cache_kib = cache_kib
        self._setup = setup
        super().__init__(self._open)

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False,
                               isolation_level=None, timeout=60)
        register_sql_functions(conn)
        conn.execute("PRAGMA query_only = 1")
        conn.execute(f"PRAGMA cache_size = -{int(self._cache_kib)}")
        conn.execute("PRAGMA mmap_size = 0")
        if self._setup is not None:
            self._setup(conn)
        return conn
