"""The GeoPackage engine's access database: users, hashed tokens, browser sessions, sign-in codes and the audit log,
in one SQLite file beside the store (``city.gpkg`` -> ``city.access.db``).

It is kept apart from the GeoPackage on purpose: a failed import rolls the store back but its audit
record stays, and copying the store file to share it never copies anyone's credentials.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from twin.errors import StoreError, StoreVersionError
from twin.store.base import ACCESS_TABLES, AccessResult
from twin.store.gpkg.connections import ThreadConnections

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY, role TEXT NOT NULL, area TEXT, created TEXT NOT NULL, revoked TEXT);
CREATE TABLE IF NOT EXISTS tokens (
    id TEXT PRIMARY KEY, "user" TEXT NOT NULL REFERENCES users(name), hash TEXT NOT NULL,
    created TEXT NOT NULL, expires TEXT NOT NULL, revoked TEXT);
CREATE INDEX IF NOT EXISTS tokens_user ON tokens("user");
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY, time TEXT NOT NULL, "user" TEXT, role TEXT, action TEXT NOT NULL,
    outcome TEXT NOT NULL, status INTEGER, method TEXT, path TEXT, layer TEXT, count INTEGER, detail TEXT);
CREATE INDEX IF NOT EXISTS audit_time ON audit(time);
CREATE INDEX IF NOT EXISTS audit_user ON audit("user", time);
CREATE TABLE IF NOT EXISTS sessions (
    hash TEXT PRIMARY KEY, "user" TEXT NOT NULL, role TEXT NOT NULL, area TEXT, via TEXT NOT NULL, token TEXT,
    created TEXT NOT NULL, expires TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS sessions_user ON sessions("user");
CREATE TABLE IF NOT EXISTS sign_in_codes (
    hash TEXT PRIMARY KEY, token TEXT NOT NULL, created TEXT NOT NULL, expires TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS vitals (
    indicator TEXT NOT NULL, area TEXT NOT NULL, changeset INTEGER NOT NULL, base INTEGER NOT NULL,
    n REAL NOT NULL, v REAL NOT NULL, d REAL NOT NULL);
CREATE INDEX IF NOT EXISTS vitals_at ON vitals(indicator, changeset);
CREATE TABLE IF NOT EXISTS vitals_state (
    indicator TEXT PRIMARY KEY, changeset INTEGER NOT NULL, signature TEXT NOT NULL, base INTEGER NOT NULL,
    pending INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY, rule TEXT NOT NULL, subject TEXT NOT NULL, object TEXT NOT NULL, committee TEXT,
    subdistrict TEXT, district TEXT, status TEXT NOT NULL, severity TEXT NOT NULL, distance REAL, geometry TEXT,
    message TEXT NOT NULL, opened_at TEXT NOT NULL, opened_changeset INTEGER NOT NULL, acknowledged_at TEXT,
    acknowledged_by TEXT, closed_at TEXT, closed_by TEXT, closed_reason TEXT, ended_at TEXT);
CREATE INDEX IF NOT EXISTS alerts_active ON alerts(rule, ended_at);
CREATE TABLE IF NOT EXISTS alert_state (rule TEXT PRIMARY KEY, changeset INTEGER NOT NULL, signature TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS work_orders (
    id INTEGER PRIMARY KEY, alert INTEGER, title TEXT NOT NULL, note TEXT, lon REAL NOT NULL, lat REAL NOT NULL,
    committee TEXT NOT NULL, subdistrict TEXT, district TEXT, status TEXT NOT NULL, resources TEXT NOT NULL,
    opened_at TEXT NOT NULL, opened_by TEXT NOT NULL, accepted_at TEXT, accepted_by TEXT, handling_at TEXT,
    handling_by TEXT, closed_at TEXT, closed_by TEXT, log TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS watch_events (
    id INTEGER PRIMARY KEY, kind TEXT NOT NULL, ref INTEGER NOT NULL, status TEXT NOT NULL, at TEXT NOT NULL,
    by TEXT, committee TEXT, subdistrict TEXT, district TEXT);
"""
#: Version 1: users, tokens, audit. Version 2 adds sessions and one-time sign-in codes, version 3 the city's vital
#: signs (:mod:`twin.vitals`), version 4 alerts and work orders (:mod:`twin.rules`), version 5 their events: an older
#: database gains the new tables when it is opened (the statements above only create what is missing).
SCHEMA_VERSION = 5
_TABLES = {name: name for name in ACCESS_TABLES} | {"codes": "sign_in_codes", "vitals": "vitals",
                                                    "vitals_state": "vitals_state", "alerts": "alerts",
                                                    "alert_state": "alert_state", "work_orders": "work_orders",
                                                    "watch_events": "watch_events"}


#: Held while an access database is opened for the first time in this process (see SqliteAccessDB._migrate).
_MIGRATING = threading.Lock()


def access_db_path(store: Path) -> Path:
    """Where the access database of ``store`` lives by default: ``city.gpkg`` -> ``city.access.db``."""
    store = Path(store)
    return store.with_name(store.stem + ".access.db")


class SqliteAccessDB:
    """:class:`~twin.store.base.AccessDB` in an SQLite file: thread-local connections.

    The file is made by the first write, not before: reading a store's users or a command that fails before it
    writes leaves no file behind. An existing file from a newer twin is refused when opened.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.location = str(self.path)
        self._pool = ThreadConnections(self._open)
        self._ready = False
        if self.path.exists():
            self._migrate()

    def _migrate(self) -> None:
        """Create or bring the schema up to :data:`SCHEMA_VERSION`; a database from a newer twin is refused.

        One thread of the process at a time, whichever instance it uses: a new file's first connection switches it
        to WAL, which SQLite refuses ("database is locked") while another connection holds it in rollback mode."""
        if self._ready:
            return
        with _MIGRATING:
            self._migrate_now()

    def _migrate_now(self) -> None:
        if self._ready:
            return
        conn = self._pool.get()
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            self.close()
            raise StoreVersionError(f"{self.path}: access database version {version} was written by a newer twin "
                                    f"(this one reads up to {SCHEMA_VERSION}); upgrade twin")
        if version < SCHEMA_VERSION:
            conn.executescript(f"BEGIN IMMEDIATE; {SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;")
        self._ready = True

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        for attempt in range(100):  # a new file switched to WAL while another process holds it: SQLite will not wait
            try:
                conn.execute("PRAGMA journal_mode = WAL")
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt == 99:
                    raise
                time.sleep(0.05)
        conn.execute("PRAGMA synchronous = NORMAL")
        return conn

    def read(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        with self._errors():
            if not self._ready:
                if not self.path.exists():
                    return []  # nobody was ever added, nothing was ever recorded
                self._migrate()
            return self._pool.get().execute(sql.format_map(_TABLES), params).fetchall()

    @contextmanager
    def write(self) -> Iterator[_Writer]:
        with self._errors():
            self._migrate()
            conn = self._pool.get()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield _Writer(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """SQLite's failures (a locked, read-only or damaged file) as a :class:`StoreError` naming the file."""
        try:
            yield
        except sqlite3.OperationalError as exc:
            raise StoreError(f"{self.path}: the access database cannot be used ({exc})") from None
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: not an access database ({exc})") from None

    def close(self) -> None:
        self._pool.close()


class _Writer:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Sequence[object] = ()) -> AccessResult:
        cur = self.conn.execute(sql.format_map(_TABLES), params)
        rows = cur.fetchall()
        return AccessResult(rows, cur.rowcount)

    def executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        self.conn.executemany(sql.format_map(_TABLES), rows)
