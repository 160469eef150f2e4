"""The events of alerts and work orders, in the order they happened: each opening, acknowledgement, step and closing
is one numbered event, so an app follows them from where it left off (``after``), like the change feed."""

from __future__ import annotations

from twin.model.area import Area
from twin.store.base import AccessDB, AccessWriter

COLUMNS = ("id", "kind", "ref", "status", "at", "by", "committee", "subdistrict", "district")


def record(w: AccessWriter, kind: str, ref: int, status: str, at: str, by: str | None,
           chain: tuple[object, object, object]) -> None:
    """Add one event (in the transaction that made it happen)."""
    w.execute("INSERT INTO {watch_events} (kind, ref, status, at, by, committee, subdistrict, district) "
              "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", [kind, ref, status, at, by, *chain])


def since(db: AccessDB, kind: str, after: int, scope: Area | None, limit: int) -> tuple[list[dict[str, object]], int]:
    """Events of ``kind`` after event ``after`` that a reader bounded by ``scope`` may see, oldest first, and where
    to go on from (the last event read, seen or not)."""
    rows = db.read(f"SELECT {', '.join(COLUMNS)} FROM {{watch_events}} WHERE kind = ? AND id > ? ORDER BY id LIMIT ?",
                   [kind, after, limit])
    out = [dict(zip(COLUMNS, r, strict=True)) for r in rows]
    last = int(rows[-1][0]) if rows else after
    if scope is not None:
        out = [e for e in out if scope.key in (e["committee"], e["subdistrict"], e["district"])]
    return out, last
