"""Committing planned writes to a PostGIS layer: history, rows, layer bookkeeping, all in one transaction.

The same planning as the GeoPackage engine (:mod:`twin.store.planning`) decides keys and actions; this module
writes the outcome: inserts by ``COPY``, updates through a temporary table, superseded and deleted versions
moved to history with the interval they were valid in. One writer at a time per store (a transaction-level
advisory lock), so changeset ids and times are ordered exactly as on the GeoPackage engine. A first import into
an empty layer builds its secondary indexes once at the end.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import geopandas as gpd
import numpy as np
import psycopg
import shapely

from twin.catalogue import LayerSpec
from twin.store.base import Changeset, WritePlan
from twin.store.gpkg.writing import TIME_FORMAT, utc_now
from twin.store.planning import plan_write, stored_values
from twin.store.postgis import ddl
from twin.store.postgis.columns import kind_of, read_expr, time_text
from twin.store.postgis.connect import scalar

#: The channel changesets are announced on (``NOTIFY``), per schema.
CHANNEL_PREFIX = "twin_changes_"


def lock_key(schema: str) -> int:
    """The advisory lock that serialises the writers of one store (a stable 31-bit number of its schema)."""
    return zlib.crc32(f"twin-writer:{schema}".encode()) & 0x7FFFFFFF


def channel(schema: str) -> str:
    return CHANNEL_PREFIX + schema


class PgLookup:
    """:class:`~twin.store.planning.PlanLookup` inside the writer's transaction; claims and planned keys are kept
    in temporary tables dropped at commit."""

    def __init__(self, conn: psycopg.Connection, schema: str, spec: LayerSpec, changeset: int, *,
                 base_empty: bool) -> None:
        self.conn, self.spec, self.changeset, self.base_empty = conn, spec, changeset, base_empty
        self.s = ddl.schema_ident(schema)
        self.table = f"{self.s}.{ddl.q(spec.id)}"
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS twin_claimed (fid bigint PRIMARY KEY) ON COMMIT DROP")
        conn.execute('CREATE TEMP TABLE IF NOT EXISTS twin_planned ("key" text COLLATE "C" PRIMARY KEY) '
                     "ON COMMIT DROP")

    def count(self) -> int:
        row = self.conn.execute(f"SELECT feature_count FROM {self.s}.twin_layers WHERE layer = %s",
                                (self.spec.id,)).fetchone()
        return int(row[0]) if row else 0

    def _values(self, columns: list[str]) -> str:
        return ", ".join(read_expr(c, kind_of(self.spec, c)) for c in columns)

    def existing(self, fps: np.ndarray, columns: list[str]) -> list[tuple[Any, ...]]:
        return self.conn.execute(
            f'SELECT t.fid, t."key", t.fp, {self._values(columns)} FROM {self.table} t WHERE t.fp = ANY(%s) '
            "AND t.changeset <> %s AND NOT EXISTS (SELECT 1 FROM twin_claimed c WHERE c.fid = t.fid) "
            'ORDER BY t."key"', (fps.tolist(), self.changeset)).fetchall()

    def stored(self, fids: Sequence[int], columns: list[str]) -> dict[int, tuple[Any, ...]]:
        rows = self.conn.execute(f"SELECT t.fid, t.fp, {self._values(columns)} FROM {self.table} t "
                                 "WHERE t.fid = ANY(%s)", ([int(f) for f in fids],)).fetchall()
        return {int(r[0]): tuple(r[1:]) for r in rows}

    def used_keys(self, prefixes: list[str]) -> list[str]:
        ends = [p[:-1] + "." for p in prefixes]
        found: list[str] = []
        for table in (self.table, f"{self.s}.{ddl.q(self.spec.id + '_history')}", "twin_planned"):
            found += [r[0] for r in self.conn.execute(
                f'SELECT k."key" FROM unnest(%s::text[], %s::text[]) AS p(lo, hi) JOIN {table} k '
                'ON k."key" >= p.lo COLLATE "C" AND k."key" < p.hi COLLATE "C"', (prefixes, ends))]
        return found

    def record(self, plan: WritePlan) -> None:
        if self.changeset < 0:
            claimed = plan.fids[plan.action != "insert"]
            new = plan.frame["key"].to_numpy()[plan.action == "insert"].tolist()
            if new:
                self.conn.execute("INSERT INTO twin_planned SELECT unnest(%s::text[]) ON CONFLICT DO NOTHING", (new,))
        else:
            claimed = plan.fids[plan.action == "unchanged"]
        if len(claimed):
            self.conn.execute("INSERT INTO twin_claimed SELECT unnest(%s::bigint[]) ON CONFLICT DO NOTHING",
                              (claimed.tolist(),))


class PgLayerWriter:
    """One changeset on one layer, fed in chunks; use through ``PostgisStore.writer`` (inside its transaction)."""

    def __init__(self, conn: psycopg.Connection, schema: str, spec: LayerSpec, *, author: str, source: str,
                 kind: str, source_crs: str | None, note: str, dry_run: bool) -> None:
        self.conn, self.schema, self.spec, self.dry_run = conn, schema, spec, dry_run
        self.s = ddl.schema_ident(schema)
        self.table = f"{self.s}.{ddl.q(spec.id)}"
        self.history = f"{self.s}.{ddl.q(spec.id + '_history')}"
        self.counts = {"insert": 0, "update": 0, "unchanged": 0, "delete": 0}
        self.changeset: Changeset | None = None
        cs_id = -1
        if dry_run:
            self.time = utc_now()
        else:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key(schema),))
            self.time = _next_time(conn, self.s)
            cs_id = int(scalar(conn.execute(f"SELECT coalesce(max(id), 0) + 1 FROM {self.s}.twin_changesets")))
            conn.execute(f"INSERT INTO {self.s}.twin_changesets (id, time, author, source, layer, kind, inserted, "
                         "updated, deleted, unchanged, source_crs, note) VALUES (%s, %s, %s, %s, %s, %s, 0, 0, 0, 0, "
                         "%s, %s)", (cs_id, self.time, author, source, spec.id, kind, source_crs, note))
        count = scalar(conn.execute(f"SELECT feature_count FROM {self.s}.twin_layers WHERE layer = %s FOR UPDATE",
                                    (spec.id,)))
        self.session = PgLookup(conn, schema, spec, cs_id, base_empty=int(count) == 0)
        self._deferred = self.session.base_empty and not dry_run
        if self._deferred:
            ddl.run(conn, ddl.script("layer_indexes_drop", schema, spec))
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
        if not self.dry_run and fids:
            self._archive(fids, "delete")
            self.conn.execute(f"DELETE FROM {self.table} WHERE fid = ANY(%s)", (fids,))
            self.conn.execute(f"UPDATE {self.s}.twin_layers SET feature_count = feature_count - %s WHERE layer = %s",
                              (len(fids), self.spec.id))
        self.counts["delete"] += len(fids)

    def _write(self, plan: WritePlan) -> None:
        for action in ("insert", "update", "unchanged"):
            self.counts[action] += plan.count(action)
        if not self.dry_run:
            self._write_rows(plan)
        self.session.record(plan)

    def finish(self) -> Changeset | None:
        """Record the counts, build deferred indexes and announce the changeset (delivered at commit)."""
        if self.dry_run:
            return None
        c = self.counts
        self.conn.execute(f"UPDATE {self.s}.twin_changesets SET inserted = %s, updated = %s, deleted = %s, "
                          "unchanged = %s WHERE id = %s",
                          (c["insert"], c["update"], c["delete"], c["unchanged"], self._pending.id))
        if self._deferred:
            ddl.run(self.conn, ddl.script("layer_indexes", self.schema, self.spec))
        self.conn.execute("SELECT pg_notify(%s, %s)", (channel(self.schema), str(self._pending.id)))
        self.changeset = replace(self._pending, inserted=c["insert"], updated=c["update"], deleted=c["delete"],
                                 unchanged=c["unchanged"])
        return self.changeset

    # -- rows ---------------------------------------------------------------------------------
    def _archive(self, fids: list[int], op: str) -> None:
        cols = ", ".join(f'"{c}"' for c in _COLUMNS + self.spec.field_names)
        self.conn.execute(f"INSERT INTO {self.history} ({cols}, valid_to, changeset_to, op) "
                          f"SELECT {cols}, %s, %s, %s FROM {self.table} WHERE fid = ANY(%s)",
                          (self.time, self._pending.id, op, fids))

    def _write_rows(self, plan: WritePlan) -> None:
        frame, spec = plan.frame, self.spec
        attrs = ["status", "updated_at", *spec.field_names]
        geoms = frame.geometry.to_numpy()
        upd = np.flatnonzero(plan.action == "update")
        ins = np.flatnonzero(plan.action == "insert")
        ins = ins[np.argsort(frame["key"].to_numpy()[ins].astype(str), kind="stable")]  # fids follow the keys
        names = ", ".join(f'"{c}"' for c in ["fid", "geom", "key", "fp", "version", "changeset", "valid_from", *attrs])
        if len(upd):
            fids = plan.fids[upd].tolist()
            self._archive(fids, "update")
            self.conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS twin_update (LIKE {self.table}) ON COMMIT DROP")
            self.conn.execute("TRUNCATE twin_update")
            rows = stored_values(frame.iloc[upd], attrs)
            keys = frame["key"].to_numpy()[upd].tolist()
            self._copy("twin_update", names, fids, geoms[upd], keys, plan.fps[upd].tolist(), 0, rows)
            sets = ", ".join(f'"{c}" = u."{c}"' for c in ["geom", "fp", *attrs])
            self.conn.execute(f"UPDATE {self.table} t SET {sets}, version = t.version + 1, changeset = %s, "
                              "valid_from = %s FROM twin_update u WHERE t.fid = u.fid",
                              (self._pending.id, self.time))
        if len(ins):
            start = int(scalar(self.conn.execute(f"SELECT next_fid FROM {self.s}.twin_layers WHERE layer = %s",
                                                 (spec.id,))))
            fids = list(range(start, start + len(ins)))
            rows = stored_values(frame.iloc[ins], attrs)
            keys = frame["key"].to_numpy()[ins].tolist()
            self._copy(self.table, names, fids, geoms[ins], keys, plan.fps[ins].tolist(), 1, rows)
            self.conn.execute(f"UPDATE {self.s}.twin_layers SET feature_count = feature_count + %s, next_fid = %s "
                              "WHERE layer = %s", (len(ins), start + len(ins), spec.id))
        self._grow_extent(geoms[np.concatenate([upd, ins])])

    def _copy(self, table: str, names: str, fids: list[int], geoms: np.ndarray, keys: list[str], fps: list[int],
              version: int, rows: list[tuple[Any, ...]]) -> None:
        ewkb = shapely.to_wkb(shapely.set_srid(geoms, 4326), hex=True, include_srid=True, flavor="extended",
                              output_dimension=2)
        with self.conn.cursor().copy(f"COPY {table} ({names}) FROM STDIN") as copy:
            for f, g, k, fp, r in zip(fids, ewkb.tolist(), keys, fps, rows, strict=True):
                copy.write_row((f, g, k, fp, version, self._pending.id, self.time, *r))

    def _grow_extent(self, geoms: np.ndarray) -> None:
        if not len(geoms):
            return
        minx, miny, maxx, maxy = shapely.total_bounds(geoms).tolist()
        self.conn.execute(
            f"UPDATE {self.s}.twin_layers SET min_x = least(coalesce(min_x, %s), %s), "
            "min_y = least(coalesce(min_y, %s), %s), max_x = greatest(coalesce(max_x, %s), %s), "
            "max_y = greatest(coalesce(max_y, %s), %s) WHERE layer = %s",
            (minx, minx, miny, miny, maxx, maxx, maxy, maxy, self.spec.id))


_COLUMNS = ["fid", "geom", "key", "fp", "version", "changeset", "valid_from", "status", "updated_at"]


def _next_time(conn: psycopg.Connection, s: str) -> str:
    """Now, but strictly after the latest changeset, so history intervals never overlap."""
    now = datetime.now(UTC)
    latest = scalar(conn.execute(f"SELECT {time_text('max(time)', micros=True)} FROM {s}.twin_changesets"))
    if latest is not None:
        last = datetime.strptime(latest, TIME_FORMAT).replace(tzinfo=UTC)
        if now <= last:
            now = last + timedelta(microseconds=1)
    return now.strftime(TIME_FORMAT)
