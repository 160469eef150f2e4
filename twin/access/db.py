"""The access database: users, their hashed tokens, browser sessions and the audit log, in one SQLite file
beside the store.

It is kept apart from the GeoPackage on purpose: a failed import rolls the store back but its audit
record stays, and copying the store to share it never copies anyone's credentials.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from twin.errors import StoreVersionError
from twin.store.readers import ThreadConnections

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY, role TEXT NOT NULL, area TEXT, created TEXT NOT NULL, revoked TEXT);
CREATE TABLE IF NOT EXISTS tokens (
    id TEXT PRIMARY KEY, user TEXT NOT NULL REFERENCES users(name), hash TEXT NOT NULL,
    created TEXT NOT NULL, expires TEXT NOT NULL, revoked TEXT);
CREATE INDEX IF NOT EXISTS tokens_user ON tokens(user);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY, time TEXT NOT NULL, user TEXT, role TEXT, action TEXT NOT NULL,
    outcome TEXT NOT NULL, status INTEGER, method TEXT, path TEXT, layer TEXT, count INTEGER, detail TEXT);
CREATE INDEX IF NOT EXISTS audit_time ON audit(time);
CREATE INDEX IF NOT EXISTS audit_user ON audit(user, time);
CREATE TABLE IF NOT EXISTS sessions (
    hash TEXT PRIMARY KEY, user TEXT NOT NULL, role TEXT NOT NULL, area TEXT, via TEXT NOT NULL, token TEXT,
    created TEXT NOT NULL, expires TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS sessions_user ON sessions(user);
CREATE TABLE IF NOT EXISTS sign_in_codes (
    hash TEXT PRIMARY KEY, token TEXT NOT NULL, created TEXT NOT NULL, expires TEXT NOT NULL);
"""
#: Version 1: users, tokens, audit. Version 2 adds sessions and one-time sign-in codes: an older database
#: gains the new tables when it is opened (the statements above only create what is missing).
SCHEMA_VERSION = 2


def access_db_path(store: Path) -> Path:
    """Where the access database of ``store`` lives by default: ``city.gpkg`` -> ``city.access.db``."""
    store = Path(store)
    return store.with_name(store.stem + ".access.db")


class AccessDB:
    """Thread-local connections to the access database, created with its schema on first use."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._pool = ThreadConnections(self._open)
        self._migrate()

    def _migrate(self) -> None:
        """Create or bring the schema up to :data:`SCHEMA_VERSION`; a database from a newer twin is refused."""
        conn = self.conn()
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            self.close()
            raise StoreVersionError(f"{self.path}: access database version {version} was written by a newer twin "
                                    f"(this one reads up to {SCHEMA_VERSION}); upgrade twin")
        if version < SCHEMA_VERSION:
            conn.executescript(f"BEGIN IMMEDIATE; {SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;")

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        return conn

    def conn(self) -> sqlite3.Connection:
        return self._pool.get()

    def close(self) -> None:
        self._pool.close()
