"""Reaching a PostGIS store: the URL, a pool of connections, and database errors in words a user can act on.

A store is named ``postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?schema=NAME&...]``; ``schema`` (default
``twin``) is twin's own parameter, every other one goes to libpq as it is (``sslmode``, ``host=/run/...`` for a
socket, ``target_session_attrs``...). Connections run in autocommit, with server-side bound parameters and no
named prepared statements, so that they work unchanged behind pgbouncer in transaction mode and on a standby.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from twin.errors import StoreError, StoreUnavailableError

log = logging.getLogger(__name__)
SCHEMES = ("postgresql://", "postgres://")
#: A pooled connection idle longer than this is tried before it is handed out.
CHECK_IDLE_S = 2.0
DEFAULT_SCHEMA = "twin"


def is_postgres_url(target: object) -> bool:
    """Whether ``target`` names a PostGIS store rather than a GeoPackage file."""
    return isinstance(target, str) and target.startswith(SCHEMES)


@dataclass(frozen=True)
class Target:
    """A parsed store URL: what libpq is given, the schema, and the URL as shown to people (no password)."""

    conninfo: str
    schema: str
    shown: str


def parse_url(url: str) -> Target:
    """Split twin's ``schema`` parameter off a PostgreSQL URL; the shown form hides any password."""
    if not is_postgres_url(url):
        raise StoreError(f"{url!r} is not a PostgreSQL URL (postgresql://USER@HOST:PORT/DATABASE)")
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = next((v for k, v in query if k == "schema"), DEFAULT_SCHEMA)
    rest = [(k, v) for k, v in query if k != "schema"]
    conninfo = urlunsplit(parts._replace(query=urlencode(rest)))
    netloc = parts.netloc
    if "@" in netloc and ":" in netloc.split("@", 1)[0]:
        user = netloc.split("@", 1)[0].split(":", 1)[0]
        netloc = f"{user}:***@{netloc.split('@', 1)[1]}"
    shown = urlunsplit(parts._replace(netloc=netloc, query=urlencode([(k, v) for k, v in query if k != "password"])))
    return Target(conninfo, schema, shown)


def refused(exc: psycopg.Error, shown: str) -> str:
    """A write the database refused, in one line: its message and SQLSTATE, never the rows it was given (the
    CONTEXT PostgreSQL adds to a failed COPY quotes the row's values, personal ones among them)."""
    message = exc.diag.message_primary or (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return f"{shown}: the database refused the write: {message} (SQLSTATE {exc.sqlstate})"


def explain(exc: BaseException, shown: str) -> str:
    """What went wrong reaching the database, in one line that names the store (never a password)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    lower = text.lower()
    if "password authentication failed" in lower or "no password supplied" in lower:
        return f"{shown}: the database refused the user name or password ({text})"
    if "does not exist" in lower and "database" in lower:
        return f"{shown}: no such database ({text}); create it first (createdb, or scripts/postgis createdb NAME)"
    if "could not translate host name" in lower or "name or service not known" in lower:
        return f"{shown}: no such host ({text})"
    if ("terminating connection" in lower or "server closed the connection" in lower or "connection is closed"
            in lower or "consuming input failed" in lower or "the database system is shutting down" in lower
            or "the database system is starting up" in lower):
        return f"{shown}: the database connection was lost (the server stopped or restarted; retry shortly)"
    if "connection refused" in lower or "could not connect" in lower or "no such file" in lower:
        return f"{shown}: no PostgreSQL server answers there ({text}); is it running (scripts/postgis start)?"
    if "timeout" in lower:
        return f"{shown}: the database did not answer in time ({text})"
    return f"{shown}: {text}"


def scalar(cursor: psycopg.Cursor[Any]) -> Any:
    """The one value of a statement that always answers one row (an aggregate, ``EXISTS``, a counter)."""
    row = cursor.fetchone()
    if row is None:
        raise StoreError("the database answered no row to a statement that always answers one")
    return row[0]


def connect(target: Target, **kwargs: object) -> psycopg.Connection:
    """One autocommit connection (for the writer, the change listener and set-up)."""
    try:
        return psycopg.connect(target.conninfo, autocommit=True, prepare_threshold=None,
                               application_name="twin", connect_timeout=10, **kwargs)  # type: ignore[arg-type]
    except psycopg.OperationalError as exc:
        raise StoreUnavailableError(explain(exc, target.shown)) from None


class Pool:
    """Pooled autocommit connections for reads, opened lazily and replaced when the database restarts."""

    def __init__(self, target: Target, *, max_size: int = 16, timeout_s: float = 10.0) -> None:
        self.target = target
        self._timeout = timeout_s
        self._returned: weakref.WeakKeyDictionary[psycopg.Connection, float] = weakref.WeakKeyDictionary()
        self._pool = ConnectionPool(
            target.conninfo, min_size=1, max_size=max_size, open=False, timeout=timeout_s, name="twin",
            check=self._check, reset=self._reset,
            kwargs={"autocommit": True, "prepare_threshold": None, "application_name": "twin",
                    "connect_timeout": 10})

    def _reset(self, conn: psycopg.Connection) -> None:
        self._returned[conn] = time.monotonic()

    def _check(self, conn: psycopg.Connection) -> None:
        """Try a connection idle for a while before handing it out, so that after a restart of the database no
        request gets one that died with the old server (the pool opens a new one instead). One in use moments
        ago is handed out untried: under load that spares every request a round trip."""
        if time.monotonic() - self._returned.get(conn, 0.0) > CHECK_IDLE_S:
            ConnectionPool.check_connection(conn)

    def open(self) -> None:
        try:
            self._pool.open(wait=True, timeout=self._timeout)
        except PoolTimeout:
            with connect(self.target):  # the real reason, in words
                pass
            raise StoreUnavailableError(f"{self.target.shown}: could not open connections in time") from None

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        """A connection for the length of the block; database failures become :class:`StoreUnavailableError`."""
        try:
            with self._pool.connection() as conn:
                yield conn
        except PoolTimeout:
            raise StoreUnavailableError(f"{self.target.shown}: no database connection free or possible within "
                                        f"{self._timeout:g} s") from None
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            raise StoreUnavailableError(explain(exc, self.target.shown)) from None

    def close(self) -> None:
        self._pool.close()
