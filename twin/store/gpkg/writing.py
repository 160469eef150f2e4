"""Committing planned writes to a GeoPackage layer: history, rows, R-tree and layer metadata.

A :class:`LayerWriter` is one changeset: it opens a transaction, takes any number of chunks, and
commits them together (or rolls all of them back), so a large import is bounded in memory and
still all or nothing.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import geopandas as gpd
import numpy as np
import orjson
import shapely

from twin.catalogue import LayerSpec
from twin.store.base import Changeset, WritePlan
from twin.store.gpkg import ddl
from twin.store.gpkg.blob import encode
from twin.store.gpkg.rtree_bulk import bulk_load
from twin.store.planning import plan_write, stored_values

TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def utc_now() -> str:
    return datetime.now(UTC).strftime(TIME_FORMAT)


class LayerWriter:
    """One changeset on one layer, fed in chunks; use through ``GeoPackageStore.writer``."""

    def __init__(self, conn: sqlite3.Connection, spec: LayerSpec, *, author: str, source: str, kind: str,
                 source_crs: str | None, note: str, dry_run: bool) -> None:
        self.conn, self.spec, self.dry_run = conn, spec, dry_run
        self.time = utc_now() if dry_run else _next_time(conn)
        self.counts = {"insert": 0, "update": 0, "unchanged": 0, "delete": 0}
        self.changeset: Changeset | None = None
        cs_id = -1
        if not dry_run:
            cur = conn.execute(
                "INSERT INTO twin_changesets (time, author, source, layer, kind, inserted, updated, deleted, "
                "unchanged, source_crs, note) VALUES (?, ?, ?, ?, ?, 0, 0, 0, 0, ?, ?)",
                (self.time, author, source, spec.id, kind, source_crs, note),
            )
            cs_id = int(cur.lastrowid or 0)
            _run(conn, ddl.layer_script("rtree_triggers_drop", spec))
        count = conn.execute("SELECT feature_count FROM twin_layers WHERE layer = ?", (spec.id,)).fetchone()[0]
        self.session = SqliteLookup(conn, spec, cs_id, base_empty=int(count) == 0)
        # a first import into an empty layer builds its R-tree in one packed pass at the end
        self._deferred: list[tuple[list[int], np.ndarray]] | None = None
        if self.session.base_empty and not dry_run:
            self._deferred = []
            _run(conn, ddl.layer_script("layer_indexes_drop", spec))
        self._pending = Changeset(cs_id, self.time, author, source, spec.id, kind, 0, 0, 0, 0, source_crs, note)

    @property
    def pending(self) -> Changeset:
        """The changeset being written (its id and time; counts are filled in when it is finished)."""
        return self._pending

    def add(self, frame: gpd.GeoDataFrame) -> WritePlan:
        """Plan one chunk and, unless this is a dry run, write it; returns the plan."""
        plan = plan_write(self.session, self.spec, frame, self.time)
        self._write(plan)
        return plan

    def edit(self, frame: gpd.GeoDataFrame, fids: Sequence[int], keys: Sequence[str]) -> WritePlan:
        """Replace components' values and geometries (row by row), keeping their keys."""
        plan = plan_write(self.session, self.spec, frame, self.time, fixed=(fids, keys))
        self._write(plan)
        return plan

    def delete(self, fids: list[int]) -> None:
        """Retire components by fid, moving their last version to history."""
        if not self.dry_run and fids:
            _archive(self.conn, self.spec, fids, self._pending, "delete")
            table, rtree = ddl.q(self.spec.id), ddl.q(f"rtree_{self.spec.id}_geom")
            self.conn.executemany(f"DELETE FROM {table} WHERE fid = ?", [(f,) for f in fids])
            self.conn.executemany(f"DELETE FROM {rtree} WHERE id = ?", [(f,) for f in fids])
            self.conn.execute("UPDATE twin_layers SET feature_count = feature_count - ? WHERE layer = ?",
                              (len(fids), self.spec.id))
        self.counts["delete"] += len(fids)

    def _write(self, plan: WritePlan) -> None:
        for action in ("insert", "update", "unchanged"):
            self.counts[action] += plan.count(action)
        if not self.dry_run:
            _write_rows(self.conn, self.spec, plan, self._pending, self._deferred)
        self.session.record(plan)

    def finish(self) -> Changeset | None:
        """Record the counts and put the R-tree triggers back (still inside the transaction)."""
        if self.dry_run:
            return None
        c = self.counts
        self.conn.execute(
            "UPDATE twin_changesets SET inserted = ?, updated = ?, deleted = ?, unchanged = ? WHERE id = ?",
            (c["insert"], c["update"], c["delete"], c["unchanged"], self._pending.id),
        )
        self.conn.execute("UPDATE gpkg_contents SET last_change = ? WHERE table_name IN (?, ?)",
                          (self.time, self.spec.id, self.spec.id + "_history"))
        if self._deferred is not None:
            if self._deferred:
                fids = np.concatenate([np.asarray(f, dtype=np.int64) for f, _ in self._deferred])
                bulk_load(self.conn, self.spec.id, fids, np.concatenate([b for _, b in self._deferred]))
            _run(self.conn, ddl.layer_script("layer_indexes", self.spec))
        _run(self.conn, ddl.layer_script("rtree_triggers", self.spec))
        self.changeset = replace(self._pending, inserted=c["insert"], updated=c["update"], deleted=c["delete"],
                                 unchanged=c["unchanged"])
        return self.changeset


class SqliteLookup:
    """:class:`~twin.store.planning.PlanLookup` over the writer's connection; what earlier chunks claimed and, in a
    dry run, the keys they would create are kept in temporary tables."""

    def __init__(self, conn: sqlite3.Connection, spec: LayerSpec, changeset: int, *, base_empty: bool) -> None:
        self.conn, self.spec, self.changeset, self.base_empty = conn, spec, changeset, base_empty
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS twin_claimed (fid INTEGER PRIMARY KEY)")
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS twin_planned (\"key\" TEXT PRIMARY KEY)")
        conn.execute("DELETE FROM temp.twin_claimed")
        conn.execute("DELETE FROM temp.twin_planned")

    @property
    def dry_run(self) -> bool:
        return self.changeset < 0

    def count(self) -> int:
        row = self.conn.execute("SELECT feature_count FROM twin_layers WHERE layer = ?", (self.spec.id,)).fetchone()
        return int(row[0])

    def existing(self, fps: np.ndarray, columns: list[str]) -> list[tuple[Any, ...]]:
        cols = ", ".join(f'"{c}"' for c in ["fid", "key", "fp", *columns])
        return self.conn.execute(
            f"SELECT {cols} FROM {ddl.q(self.spec.id)} WHERE fp IN (SELECT value FROM json_each(?)) "
            "AND changeset != ? AND fid NOT IN (SELECT fid FROM temp.twin_claimed) ORDER BY \"key\"",
            (orjson.dumps(fps.tolist()).decode(), self.changeset),
        ).fetchall()

    def stored(self, fids: Sequence[int], columns: list[str]) -> dict[int, tuple[Any, ...]]:
        cols = ", ".join(f'"{c}"' for c in columns)
        rows = self.conn.execute(f"SELECT fid, fp, {cols} FROM {ddl.q(self.spec.id)} WHERE fid IN "
                                 "(SELECT value FROM json_each(?))", (orjson.dumps([int(f) for f in fids]).decode(),))
        return {int(r[0]): tuple(r[1:]) for r in rows}

    def used_keys(self, prefixes: list[str]) -> list[str]:
        sql = ('SELECT k."key" FROM json_each(?) AS j CROSS JOIN {table} AS k '
               "WHERE k.\"key\" >= j.value AND k.\"key\" < substr(j.value, 1, length(j.value) - 1) || '.'")
        found: list[str] = []
        for table in (ddl.q(self.spec.id), ddl.q(self.spec.id + "_history"), "temp.twin_planned"):
            found += [k for (k,) in self.conn.execute(sql.format(table=table), (orjson.dumps(prefixes).decode(),))]
        return found

    def record(self, plan: WritePlan) -> None:
        if self.dry_run:
            claimed = plan.fids[plan.action != "insert"]
            new = plan.frame["key"].to_numpy()[plan.action == "insert"]
            self.conn.executemany("INSERT INTO temp.twin_planned VALUES (?)", ((k,) for k in new.tolist()))
        else:
            claimed = plan.fids[plan.action == "unchanged"]
        self.conn.executemany("INSERT OR IGNORE INTO temp.twin_claimed VALUES (?)", ((int(f),) for f in claimed))


@contextmanager
def layer_writer(conn: sqlite3.Connection, spec: LayerSpec, begin: Callable[[], object], end: Callable[[bool], object],
                 **options: object) -> Iterator[LayerWriter]:
    """Run a :class:`LayerWriter` inside ``begin()`` ... ``end(ok)``; any exception rolls everything back."""
    begin()
    try:
        writer = LayerWriter(conn, spec, **options)  # type: ignore[arg-type]
        yield writer
        writer.finish()
    except BaseException:
        end(False)
        raise
    end(True)


def _run(conn: sqlite3.Connection, script: str) -> None:
    for statement in ddl.statements(script):
        conn.execute(statement)


def _archive(conn: sqlite3.Connection, spec: LayerSpec, fids: list[int], cs: Changeset, op: str) -> None:
    cols = ", ".join(f'"{c}"' for c in [*ddl.SYSTEM_COLUMNS, *spec.field_names])
    conn.executemany(
        f"INSERT INTO {ddl.q(spec.id + '_history')} ({cols}, valid_to, changeset_to, op) "
        f"SELECT {cols}, ?, ?, ? FROM {ddl.q(spec.id)} WHERE fid = ?",
        [(cs.time, cs.id, op, f) for f in fids],
    )


def _write_rows(conn: sqlite3.Connection, spec: LayerSpec, plan: WritePlan, cs: Changeset,
                deferred: list[tuple[list[int], np.ndarray]] | None) -> None:
    """Write a chunk's updates and inserts; index entries of inserts go to ``deferred`` when it is a list."""
    table, rtree = ddl.q(spec.id), ddl.q(f"rtree_{spec.id}_geom")
    frame = plan.frame
    attrs = ["status", "updated_at", *spec.field_names]
    geoms = frame.geometry.to_numpy()
    upd = np.flatnonzero(plan.action == "update")
    ins = np.flatnonzero(plan.action == "insert")
    ins = ins[np.argsort(frame["key"].to_numpy()[ins].astype(str), kind="stable")]  # fids follow space: faster R-tree
    if len(upd):
        fids = plan.fids[upd].tolist()
        _archive(conn, spec, fids, cs, "update")
        sets = ", ".join(f'"{c}" = ?' for c in ["geom", "fp", *attrs])
        rows = stored_values(frame.iloc[upd], attrs)
        conn.executemany(
            f"UPDATE {table} SET {sets}, version = version + 1, changeset = ?, valid_from = ? WHERE fid = ?",
            [(b, int(fp), *r, cs.id, cs.time, f)
             for b, fp, r, f in zip(encode(geoms[upd]), plan.fps[upd].tolist(), rows, fids, strict=True)],
        )
        _index_rows(conn, rtree, fids, geoms[upd])
    if len(ins):
        start = _next_fid(conn, spec.id)
        fids = list(range(start, start + len(ins)))
        names = ", ".join(f'"{c}"' for c in ["fid", "geom", "key", "fp", "version", "changeset", "valid_from", *attrs])
        marks = ", ".join("?" * (7 + len(attrs)))
        rows = stored_values(frame.iloc[ins], attrs)
        keys = frame["key"].to_numpy()[ins].tolist()
        conn.executemany(
            f"INSERT INTO {table} ({names}) VALUES ({marks})",
            [(f, b, k, int(fp), 1, cs.id, cs.time, *r)
             for f, b, k, fp, r in zip(fids, encode(geoms[ins]), keys, plan.fps[ins].tolist(), rows, strict=True)],
        )
        if deferred is None:
            _index_rows(conn, rtree, fids, geoms[ins])
        else:
            deferred.append((fids, shapely.bounds(geoms[ins])))
        conn.execute("UPDATE twin_layers SET feature_count = feature_count + ? WHERE layer = ?", (len(ins), spec.id))
    _grow_extent(conn, spec, geoms[np.concatenate([upd, ins])])


def _index_rows(conn: sqlite3.Connection, rtree: str, fids: list[int], geoms: np.ndarray) -> None:
    b = shapely.bounds(geoms)
    conn.executemany(
        f"INSERT OR REPLACE INTO {rtree} VALUES (?, ?, ?, ?, ?)",
        zip(fids, b[:, 0].tolist(), b[:, 2].tolist(), b[:, 1].tolist(), b[:, 3].tolist(), strict=True),
    )


def _grow_extent(conn: sqlite3.Connection, spec: LayerSpec, geoms: np.ndarray) -> None:
    """Widen the layer's extent in gpkg_contents to cover ``geoms`` (deletes never shrink it)."""
    if not len(geoms):
        return
    minx, miny, maxx, maxy = shapely.total_bounds(geoms).tolist()
    conn.execute(
        "UPDATE gpkg_contents SET min_x = min(coalesce(min_x, ?), ?), min_y = min(coalesce(min_y, ?), ?), "
        "max_x = max(coalesce(max_x, ?), ?), max_y = max(coalesce(max_y, ?), ?) WHERE table_name IN (?, ?)",
        (minx, minx, miny, miny, maxx, maxx, maxy, maxy, spec.id, spec.id + "_history"),
    )


def _next_fid(conn: sqlite3.Connection, table: str) -> int:
    seq = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (table,)).fetchone()
    top = conn.execute(f"SELECT max(fid) FROM {ddl.q(table)}").fetchone()
    return max(int(seq[0]) if seq else 0, int(top[0] or 0)) + 1


def _next_time(conn: sqlite3.Connection) -> str:
    """Now, but strictly after the latest changeset, so history intervals never overlap."""
    now = datetime.now(UTC)
    row = conn.execute("SELECT max(time) FROM twin_changesets").fetchone()
    if row[0] is not None:
        last = datetime.strptime(row[0], TIME_FORMAT).replace(tzinfo=UTC)
        if now <= last:
            now = last + timedelta(microseconds=1)
    return now.strftime(TIME_FORMAT)
