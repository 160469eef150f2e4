"""The PostGIS engine's access tables: users, hashed tokens, sessions, sign-in codes and the audit trail, in the
store's schema (``twin_users``, ``twin_tokens`` ...), so every server of a deployment shares them."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg

from twin.store.base import AccessResult
from twin.store.postgis import ddl
from twin.store.postgis.connect import Pool
from twin.store.postgis.writing import lock_key

_PLACEHOLDER = re.compile(r"\?")


class PgAccessDB:
    """:class:`~twin.store.base.AccessDB` over the store's connection pool; writers take one advisory lock."""

    def __init__(self, pool: Pool, schema: str) -> None:
        self.pool = pool
        self.location = f"{pool.target.shown} (schema {schema})"
        s = ddl.schema_ident(schema)
        self._tables = {"users": f"{s}.twin_users", "tokens": f"{s}.twin_tokens", "sessions": f"{s}.twin_sessions",
                        "codes": f"{s}.twin_sign_in_codes", "audit": f"{s}.twin_audit",
                        "vitals": f"{s}.twin_vitals", "vitals_state": f"{s}.twin_vitals_state",
                        "alerts": f"{s}.twin_alerts", "alert_state": f"{s}.twin_alert_state",
                        "work_orders": f"{s}.twin_work_orders", "watch_events": f"{s}.twin_watch_events"}
        self._lock = lock_key("access:" + schema)

    def _sql(self, sql: str) -> str:
        return _PLACEHOLDER.sub("%s", sql.format_map(self._tables))

    def read(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        with self.pool.connection() as conn:
            return conn.execute(self._sql(sql), params).fetchall()

    @contextmanager
    def write(self) -> Iterator[_Writer]:
        with self.pool.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock,))
            yield _Writer(conn, self._sql)

    def close(self) -> None:
        """The pool belongs to the store, which closes it."""


class _Writer:
    def __init__(self, conn: psycopg.Connection, translate: Callable[[str], str]) -> None:
        self.conn = conn
        self._sql = translate

    def execute(self, sql: str, params: Sequence[object] = ()) -> AccessResult:
        cur = self.conn.execute(self._sql(sql), params)
        rows = cur.fetchall() if cur.description else []
        return AccessResult(rows, cur.rowcount)

    def executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        with self.conn.cursor() as cur:
            cur.executemany(self._sql(sql), rows)
