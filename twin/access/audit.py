"""The audit trail: who did what, when, to which layer, with how many components, and how it ended.

Requests must not wait for the disk, so events are queued and written in batches by one thread;
``flush()`` waits until everything queued so far is written (tests, shutdown, an admin's query).
No credential is ever recorded: paths and details are redacted (:mod:`twin.access.redaction`).
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import astuple, dataclass, fields

from twin.access.redaction import redact
from twin.access.users import now
from twin.errors import InvalidQueryError
from twin.store.base import AccessDB

log = logging.getLogger(__name__)

#: Actions recorded; downloads in file formats are ``export``, refused requests ``denied``.
ACTIONS = ("login", "import", "edit", "delete", "status", "export", "read", "user", "denied")
#: How an action ended.
OUTCOMES = ("ok", "denied", "rejected", "failed")


@dataclass(frozen=True)
class AuditEvent:
    """One line of the trail (``outcome``: ok, denied, rejected or failed)."""

    time: str
    action: str
    outcome: str
    user: str | None = None
    role: str | None = None
    status: int | None = None
    method: str | None = None
    path: str | None = None
    layer: str | None = None
    count: int | None = None
    detail: str | None = None


_COLUMNS = tuple(f.name for f in fields(AuditEvent))


def event_time() -> str:
    return now().strftime("%Y-%m-%dT%H:%M:%S.%f")[:23] + "Z"


class AuditLog:
    """Append events (from any thread) and query them back."""

    def __init__(self, db: AccessDB) -> None:
        self.db = db
        self._queue: queue.Queue[AuditEvent | threading.Event | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="twin-audit", daemon=True)
        self._thread.start()

    def record(self, action: str, outcome: str = "ok", **what: object) -> None:
        """Queue one event; ``what`` holds the other :class:`AuditEvent` fields (``user``, ``layer``, ...)."""
        for name in ("path", "detail"):
            if isinstance(what.get(name), str):
                what[name] = redact(what[name])  # type: ignore[arg-type]
        self._queue.put(AuditEvent(time=event_time(), action=action, outcome=outcome, **what))  # type: ignore[arg-type]

    def flush(self, timeout: float = 10.0) -> None:
        done = threading.Event()
        self._queue.put(done)
        done.wait(timeout)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        columns = ", ".join(f'"{c}"' for c in _COLUMNS)
        sql = f"INSERT INTO {{audit}}({columns}) VALUES ({', '.join('?' * len(_COLUMNS))})"
        while True:
            item = self._queue.get()
            batch, waiters, stop = [], [], False
            while True:
                if item is None:
                    stop = True
                elif isinstance(item, threading.Event):
                    waiters.append(item)
                else:
                    batch.append(astuple(item))
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if batch:
                try:
                    with self.db.write() as w:
                        w.executemany(sql, batch)
                except Exception:  # the log must outlive a database hiccup; the events are in the service log
                    log.exception("could not write %d audit events", len(batch))
            for waiter in waiters:
                waiter.set()
            if stop:
                return

    def query(self, *, user: str | None = None, action: str | None = None, outcome: str | None = None,
              layer: str | None = None, since: str | None = None, until: str | None = None,
              limit: int = 100) -> list[AuditEvent]:
        """The latest events matching every condition given, newest first."""
        if action is not None and action not in ACTIONS:
            raise InvalidQueryError(f"unknown audit action {action!r}; actions: {', '.join(ACTIONS)}")
        if outcome is not None and outcome not in OUTCOMES:
            raise InvalidQueryError(f"unknown outcome {outcome!r}; outcomes: {', '.join(OUTCOMES)}")
        if not 1 <= limit <= 10_000:
            raise InvalidQueryError(f"limit must be 1 to 10000, not {limit}")
        self.flush()
        where, params = [], []
        for column, value in (("user", user), ("action", action), ("outcome", outcome), ("layer", layer)):
            if value is not None:
                where.append(f'"{column}" = ?')
                params.append(value)
        if since is not None:
            where.append("time >= ?")
            params.append(since)
        if until is not None:
            where.append("time <= ?")
            params.append(until)
        columns = ", ".join(f'"{c}"' for c in _COLUMNS)
        sql = (f"SELECT {columns} FROM {{audit}}" + (" WHERE " + " AND ".join(where) if where else "")
               + " ORDER BY id DESC LIMIT ?")
        return [AuditEvent(*row) for row in self.db.read(sql, [*params, limit])]
