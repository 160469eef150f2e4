"""The PostGIS store: the same layers, keys, history and changesets as the GeoPackage engine, in PostgreSQL.

This is the engine a city deploys on: several ``twin serve`` processes on several machines share one database,
reads can go to hot standbys, connections can go through pgbouncer. Everything above the store sees the same
contract (:mod:`twin.store.base`) and gets the same answers, to the row.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from pathlib import Path
from typing import Any, cast

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg
import shapely

from twin import keys as keymod
from twin.catalogue import Catalogue, LayerSpec
from twin.crs import WGS84
from twin.errors import FeatureNotFoundError, StoreError, StoreUnavailableError
from twin.model.reports import Report, Reported
from twin.store.base import READ_AFTER, BBox, Changeset, LayerChanges, lineage
from twin.store.feed import ChangeFeed, Watcher
from twin.store.planning import check_version
from twin.store.postgis import ddl
from twin.store.postgis.access import PgAccessDB
from twin.store.postgis.aggregates import PgAggregateWriter
from twin.store.postgis.bulk import PgBulk
from twin.store.postgis.columns import select_list, time_text
from twin.store.postgis.connect import Pool, Target, connect, explain, parse_url, refused, scalar
from twin.store.postgis.listen import Listener
from twin.store.postgis.reads import PgSnapshot
from twin.store.postgis.writing import PgLayerWriter, channel, lock_key
from twin.store.reporting import insert_sql, keep

log = logging.getLogger(__name__)
_ROW = ["fid", "geom", "key", "fp", "version", "changeset", "valid_from", "status", "updated_at"]
_CHANGESET = ("id, {time}, author, source, layer, kind, inserted, updated, deleted, unchanged, source_crs, note")


class PostgisStore:
    """A :class:`~twin.store.base.Store` in one schema of a PostGIS database."""

    engine = "postgis"

    def __init__(self, url: str, catalogue: Catalogue, *, create: bool = True, pool_size: int = 16,
                 read_url: str | None = None) -> None:
        self.target: Target = parse_url(url)
        self.location = self.target.shown
        self.schema = self.target.schema
        self.s = ddl.schema_ident(self.schema)
        self.catalogue = catalogue
        self._write_lock = threading.Lock()
        with connect(self.target) as conn:
            self._prepare(conn, create)
        self.pool = Pool(self.target, max_size=pool_size)
        self.pool.open()
        #: A hot standby that serves reads (a snapshot goes to the primary when the standby has not yet replayed
        #: what its reader must see: :meth:`read`'s ``after``).
        self.replica: Pool | None = None
        if read_url:
            replica = parse_url(read_url)
            self.replica = Pool(Target(replica.conninfo, self.schema, replica.shown), max_size=pool_size)
            self.replica.open()
        start = self._one(f"SELECT coalesce(max(id), 0) FROM {self.s}.twin_changesets")
        #: Every changeset committed from now on, by any server, published once (:mod:`twin.store.feed`).
        self.feed = ChangeFeed(self._newer, int(start[0]) if start else 0)
        self._watcher: Watcher | None = None

    def _prepare(self, conn: psycopg.Connection, create: bool) -> None:
        shown = self.target.shown
        if not ddl.has_postgis(conn):
            if not create:
                raise StoreError(f"{shown}: the database has no PostGIS extension (and so no twin store)")
            try:
                conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
            except psycopg.Error as exc:
                raise StoreError(f"{shown}: the database has no PostGIS and twin may not add it ({exc}); run "
                                 "CREATE EXTENSION postgis as a superuser") from None
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key("ddl:" + self.schema),))
            version = ddl.check_version(conn, self.schema, shown)
            if version is None:
                if not create:
                    raise StoreError(f"{shown}: no store here (schema {self.schema!r} is empty); build one with "
                                     "`twin demo` or `twin import`")
                ddl.create_store(conn, self.schema, self.catalogue)
                return
            if version < ddl.SCHEMA_VERSION:
                ddl.migrate(conn, self.schema, version)
            ddl.sync_layers(conn, self.schema, self.catalogue)

    def __enter__(self) -> PostgisStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._watcher is not None:
            self._watcher.stop()
        if self.replica is not None:
            self.replica.close()
        self.pool.close()

    def bulk(self, access: Path | None = None) -> PgBulk:
        if access is not None:
            raise StoreError(f"{self.location}: a PostGIS store keeps its users and audit trail in its own schema")
        return PgBulk(self)

    def access(self, override: Path | None = None) -> PgAccessDB:
        """The access tables of the store's schema (shared by every server of the deployment)."""
        if override is not None:
            raise StoreError(f"{self.location}: a PostGIS store keeps its users and audit trail in its own schema; "
                             "TWIN_ACCESS_DB (--access-db) applies to GeoPackage stores only")
        return PgAccessDB(self.pool, self.schema)

    def subscribe(self, callback: Callable[[Changeset], None]) -> None:
        """Call ``callback`` with every changeset committed from now on, by any server (see :attr:`feed`)."""
        self.feed.subscribe(callback)

    def unsubscribe(self, callback: Callable[[Changeset], None]) -> None:
        self.feed.unsubscribe(callback)

    def _newer(self, after: int) -> list[Changeset]:
        columns = _CHANGESET.format(time=time_text("time", micros=True))
        rows = self._all(f"SELECT {columns} FROM {self.s}.twin_changesets WHERE id > %s ORDER BY id", (after,))
        return [Changeset(*r) for r in rows]

    def follow(self) -> None:
        """Listen for the changesets other servers commit (``NOTIFY`` on the store's channel); a service calls this
        once. The listener reconnects by itself after the database restarts, and then catches up."""
        if self._watcher is None:
            self._watcher = Watcher(self.feed, Listener(self.target, channel(self.schema)).wait, "twin-feed")
            self._watcher.start()

    def _one(self, sql: str, params: Sequence[object] = ()) -> tuple[Any, ...] | None:
        with self.pool.connection() as conn:
            return conn.execute(sql, params).fetchone()

    def _all(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        with self.pool.connection() as conn:
            return conn.execute(sql, params).fetchall()

    @contextmanager
    def read(self, budget_s: float = 5.0, after: str | None = None) -> Iterator[PgSnapshot]:
        """One ``REPEATABLE READ, READ ONLY`` transaction under a statement timeout of ``budget_s``: on the standby
        when there is one and it has replayed ``after`` (a :meth:`position`, by default the reader's own last write,
        :data:`~twin.store.base.READ_AFTER`), else on the primary."""
        after = after if after is not None else READ_AFTER.get()
        opening: list[tuple[str, tuple[object, ...]]] = [
            ("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY", ()),
            # no parallel workers: starting one costs 10-20 ms, more than any request's query takes, and
            # PostGIS's costly predicates make the planner launch them for a few hundred rows
            ("SELECT set_config('statement_timeout', %s, true), "
             "set_config('max_parallel_workers_per_gather', '0', true)", (str(int(budget_s * 1000)),))]
        with ExitStack() as stack:
            conn = self._replica(stack, opening, after) if self.replica is not None else None
            snap = (PgSnapshot(conn, self.catalogue, self.schema, budget_s) if conn is not None else
                    PgSnapshot(stack.enter_context(self.pool.connection()), self.catalogue, self.schema, budget_s,
                               opening))  # begun with its first query, in the same round trip
            try:
                yield snap
            except BaseException:
                if snap.begun and not snap.conn.closed:
                    snap.conn.execute("ROLLBACK")
                raise
            if snap.begun:
                snap.conn.execute("COMMIT")

    def _replica(self, stack: ExitStack, opening: list[tuple[str, tuple[object, ...]]],
                 after: str | None) -> psycopg.Connection | None:
        """A standby connection in a fresh read transaction; ``None`` (and the connection given back) when the
        standby has not replayed ``after``."""
        assert self.replica is not None
        with ExitStack() as held:
            conn = held.enter_context(self.replica.connection())
            with conn.pipeline():
                for statement, values in opening:
                    conn.execute(statement, values)
                caught_up = conn.execute("SELECT coalesce(pg_last_wal_replay_lsn() >= %s::pg_lsn, true)",
                                         (after,)) if after else None
            if caught_up is not None and not scalar(caught_up):
                conn.execute("ROLLBACK")
                return None
            stack.push(held.pop_all())
            return conn

    def turn(self) -> AbstractContextManager[None]:
        """Requests overlap: their time is mostly spent waiting for the server, without the GIL."""
        return nullcontext()

    def position(self) -> str:
        """Where the primary's log stands now (after a write: a state every later read given it will see)."""
        row = self._one("SELECT pg_current_wal_lsn()::text")
        return str(row[0]) if row else ""

    @contextmanager
    def exclusive(self, name: str, wait: bool = True) -> Iterator[bool]:
        """A transaction-level advisory lock held in a transaction of its own for the work's duration (session locks
        would not survive pgbouncer's transaction pooling)."""
        key = lock_key(f"exclusive:{self.schema}:{name}")
        with self.pool.connection() as conn, conn.transaction():
            if wait:
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (key,))
                got = True
            else:
                got = bool(scalar(conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (key,))))
            yield got

    @contextmanager
    def aggregate_writer(self, layer: str) -> Iterator[PgAggregateWriter]:
        """One transaction on ``layer``'s tile aggregates, serialised per layer across every server."""
        spec = self.catalogue[layer]
        with self.pool.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key(f"tiles:{self.schema}:{spec.id}"),))
            yield PgAggregateWriter(conn, self.schema, spec.id)

    @property
    def identity(self) -> str:
        return lineage(self._one(f"SELECT id, {time_text('time', micros=True)}, author, source "
                                 f"FROM {self.s}.twin_changesets ORDER BY id LIMIT 1"))

    @property
    def store_id(self) -> str:
        row = self._one(f"SELECT value FROM {self.s}.twin_meta WHERE key = 'store_id'")
        return str(row[0]) if row else ""

    def _table(self, name: str) -> str:
        return f"{self.s}.{ddl.q(name)}"

    # -- reads -------------------------------------------------------------------------------
    def _frame(self, spec: LayerSpec, rows: list[tuple[Any, ...]], extra: Sequence[str] = ()) -> gpd.GeoDataFrame:
        cols = [*_ROW, *spec.field_names, *extra]
        data = {c: [r[i] for r in rows] for i, c in enumerate(cols) if c not in ("geom", "fp")}
        geoms = shapely.from_wkb(np.array([bytes(r[1]) for r in rows], dtype=object)) if rows else \
            np.array([], dtype=object)
        order = ["fid", "key", "status", "updated_at", *spec.field_names, "version", "changeset", "valid_from", *extra]
        frame = pd.DataFrame({c: data[c] for c in order}, columns=order)
        return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geoms, crs=WGS84), crs=WGS84)

    def _select(self, spec: LayerSpec, alias: str = "t") -> str:
        return select_list(spec, [*_ROW, *spec.field_names], alias)

    def features(self, layer: str, *, bbox: BBox | None = None, keys: Sequence[str] | None = None,
                 fids: Sequence[int] | None = None, limit: int | None = None, offset: int = 0,
                 as_of: str | None = None) -> gpd.GeoDataFrame:
        spec = self.catalogue[layer]
        if as_of is not None:
            return self._features_as_of(spec, bbox, keys, as_of, limit, offset)
        where: list[str] = []
        params: list[object] = []
        if bbox is not None:
            where.append("t.geom && ST_MakeEnvelope(%s, %s, %s, %s, 4326)")
            params += list(bbox)
        if keys is not None:
            where.append('t."key" = ANY(%s)')
            params.append(list(keys))
        if fids is not None:
            where.append("t.fid = ANY(%s)")
            params.append([int(f) for f in fids])
        sql = f"SELECT {self._select(spec)} FROM {self._table(spec.id)} t"
        sql += (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY t.fid LIMIT %s OFFSET %s"
        return self._frame(spec, self._all(sql, [*params, limit, int(offset)]))

    def _features_as_of(self, spec: LayerSpec, bbox: BBox | None, keys: Sequence[str] | None, as_of: str,
                        limit: int | None, offset: int) -> gpd.GeoDataFrame:
        """The versions current at ``as_of``: of the layer's table and its history, paged in SQL (a bbox, as for
        :meth:`features`, selects by envelope)."""
        cols = self._select(spec, "t")
        params: dict[str, object] = {"t": as_of, "n": limit, "o": int(offset)}
        conds = []
        if bbox is not None:
            params.update(zip("abcd", bbox, strict=True))
            conds.append("t.geom && ST_MakeEnvelope(%(a)s, %(b)s, %(c)s, %(d)s, 4326)")
        if keys is not None:
            params["keys"] = list(keys)
            conds.append('t."key" = ANY(%(keys)s)')
        more = "".join(f" AND {c}" for c in conds)
        sql = (f"SELECT {cols} FROM {self._table(spec.id)} t WHERE t.valid_from <= %(t)s{more} UNION ALL "
               f"SELECT {cols} FROM {self._table(spec.id + '_history')} t "
               f"WHERE t.valid_from <= %(t)s AND t.valid_to > %(t)s{more} ORDER BY 1 LIMIT %(n)s OFFSET %(o)s")
        return self._frame(spec, self._all(sql, params))  # type: ignore[arg-type]

    def get(self, key: str, *, as_of: str | None = None) -> gpd.GeoDataFrame:
        spec = self.catalogue.by_code(keymod.parse_key(key).code)
        found = self.features(spec.id, keys=[key], as_of=as_of)
        if found.empty:
            raise FeatureNotFoundError(key)
        return found

    def layer_of(self, key: str) -> str:
        return self.catalogue.by_code(keymod.parse_key(key).code).id

    def history(self, key: str) -> gpd.GeoDataFrame:
        spec = self.catalogue.by_code(keymod.parse_key(key).code)
        old = self._all(f"SELECT {time_text('t.valid_to', micros=True)}, t.changeset_to, t.op, {self._select(spec)} "
                        f'FROM {self._table(spec.id + "_history")} t WHERE t."key" = %s ORDER BY t.version', (key,))
        now = self._all(f'SELECT {self._select(spec)} FROM {self._table(spec.id)} t WHERE t."key" = %s', (key,))
        if not old and not now:
            raise FeatureNotFoundError(key)
        rows = [(*r[3:], r[0], r[1], r[2]) for r in old] + [(*r, None, None, "current") for r in now]
        return self._frame(spec, rows, extra=("valid_to", "changeset_to", "op"))

    def count(self, layer: str) -> int:
        row = self._one(f"SELECT feature_count FROM {self.s}.twin_layers WHERE layer = %s", (self.catalogue[layer].id,))
        return int(row[0]) if row else 0

    def extent(self, layer: str) -> BBox | None:
        row = self._one(f"SELECT min_x, min_y, max_x, max_y FROM {self.s}.twin_layers WHERE layer = %s",
                        (self.catalogue[layer].id,))
        return None if row is None or row[0] is None else (row[0], row[1], row[2], row[3])

    def changesets(self, *, layer: str | None = None, limit: int = 100) -> list[Changeset]:
        sql = f"SELECT {_CHANGESET.format(time=time_text('time', micros=True))} FROM {self.s}.twin_changesets"
        params: list[object] = []
        if layer is not None:
            sql += " WHERE layer = %s"
            params.append(self.catalogue[layer].id)
        return [Changeset(*r) for r in self._all(sql + " ORDER BY id DESC LIMIT %s", [*params, limit])]

    def last_changeset(self, layer: str) -> int:
        row = self._one(f"SELECT max(id) FROM {self.s}.twin_changesets WHERE layer = %s", (self.catalogue[layer].id,))
        return int(row[0] or 0) if row else 0

    def changes_since(self, layer: str, changeset: int) -> LayerChanges:
        spec = self.catalogue[layer]
        box = "t.fid, ST_XMin(t.geom), ST_YMin(t.geom), ST_XMax(t.geom), ST_YMax(t.geom)"
        with self.pool.connection() as conn, conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            last = int(scalar(conn.execute(f"SELECT coalesce(max(id), 0) FROM {self.s}.twin_changesets "
                                           "WHERE layer = %s", (spec.id,))))
            removed = conn.execute(f"SELECT {box} FROM {self._table(spec.id + '_history')} t "
                                   "WHERE t.changeset_to > %s AND t.changeset <= %s", (changeset, changeset)).fetchall()
            added = conn.execute(f"SELECT {box} FROM {self._table(spec.id)} t WHERE t.changeset > %s",
                                 (changeset,)).fetchall()

        def boxes(rows: list[tuple[Any, ...]]) -> list[tuple[int, BBox]]:
            return [(r[0], (r[1], r[2], r[3], r[4])) for r in rows if r[1] is not None]

        return LayerChanges(boxes(removed), boxes(added), last)

    # -- writes ------------------------------------------------------------------------------
    @contextmanager
    def writer(self, layer: str, *, author: str, source: str, kind: str = "import", source_crs: str | None = None,
               note: str = "", dry_run: bool = False) -> Iterator[PgLayerWriter]:
        """One changeset on ``layer``, fed chunk by chunk with ``add``; all or nothing (a dry run writes nothing)."""
        spec = self.catalogue[layer]
        with self._write_lock if not dry_run else _nothing(), connect(self.target) as conn:
            try:
                with conn.transaction(force_rollback=dry_run):
                    w = PgLayerWriter(conn, self.schema, spec, author=author, source=source, kind=kind,
                                      source_crs=source_crs, note=note, dry_run=dry_run)
                    yield w
                    w.finish()
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                raise StoreUnavailableError(explain(exc, self.target.shown)) from None
            except psycopg.Error as exc:
                raise StoreError(refused(exc, self.target.shown)) from None
        if w.changeset is not None:
            self.feed.sync()

    def upsert(self, layer: str, frame: gpd.GeoDataFrame, *, author: str, source: str,
               source_crs: str | None = None, note: str = "") -> Changeset:
        with self.writer(layer, author=author, source=source, source_crs=source_crs, note=note) as w:
            w.add(frame)
        assert w.changeset is not None
        return w.changeset

    def edit(self, key: str, *, author: str, properties: dict[str, object] | None = None,
             geometry: object | None = None, source: str = "edit", expect_version: int | None = None) -> Changeset:
        spec = self.catalogue.by_code(keymod.parse_key(key).code)
        with self.writer(spec.id, author=author, source=source, kind="edit") as w:
            row = w.conn.execute(f'SELECT {self._select(spec)} FROM {self._table(spec.id)} t WHERE t."key" = %s '
                                 "FOR UPDATE", (key,)).fetchone()
            if row is None:
                raise FeatureNotFoundError(key)
            current = self._frame(spec, [row])
            check_version(key, expect_version, int(cast(int, current.at[0, "version"])))
            values: dict[str, object] = {c: current.at[0, c] for c in ("status", "updated_at", *spec.field_names)}
            values.update(properties or {})
            if properties and "updated_at" not in properties:
                values["updated_at"] = None
            # Store.edit takes any object as the geometry: GeoDataFrame refuses what is not one
            geom = cast(shapely.Geometry, current.geometry.iloc[0] if geometry is None else geometry)
            w.edit(gpd.GeoDataFrame(pd.DataFrame([values]), geometry=[geom], crs=WGS84), [int(row[0])], [key])
        assert w.changeset is not None
        return w.changeset

    def report(self, layer: str, reports: Sequence[Report], *, author: str, source: str = "status") -> Reported:
        spec = self.catalogue[layer]
        keys = sorted({r.key for r in reports})
        table, hist = self._table(spec.id), self._table(spec.id + "_history")

        def read(w: PgLayerWriter) -> tuple[gpd.GeoDataFrame, dict[str, str], list[tuple[str, str, str, object]]]:
            current = self._frame(spec, w.conn.execute(
                f'SELECT {self._select(spec)} FROM {table} t WHERE t."key" = ANY(%s) FOR UPDATE', (keys,)).fetchall())
            first: dict[str, str] = dict(w.conn.execute(
                f'SELECT "key", {time_text("min(valid_from)", micros=True)} FROM (SELECT "key", valid_from FROM {hist} '
                f'WHERE "key" = ANY(%(k)s) UNION ALL SELECT "key", valid_from FROM {table} WHERE "key" = ANY(%(k)s)) v '
                'GROUP BY "key"', {"k": keys}).fetchall())
            known = w.conn.execute(f'SELECT "key", observed_at, source, applied FROM {self.s}.twin_reports '
                                   'WHERE "key" = ANY(%s)', (keys,)).fetchall()
            return current, first, known

        def insert(w: PgLayerWriter, rows: list[tuple[object, ...]]) -> None:
            with w.conn.cursor() as cur:
                cur.executemany(insert_sql(f"{self.s}.twin_reports", "%s"), [(*r[:-1], bool(r[-1])) for r in rows])

        return keep(spec, reports, author, lambda: self.writer(spec.id, author=author, source=source, kind="status"),
                    read, insert)

    def delete(self, layer: str, keys: Sequence[str], *, author: str, source: str = "delete",
               expect_version: int | None = None) -> Changeset:
        spec = self.catalogue[layer]
        with self.writer(spec.id, author=author, source=source, kind="delete") as w:
            rows = w.conn.execute(f'SELECT "key", fid, version FROM {self._table(spec.id)} WHERE "key" = ANY(%s) '
                                  "FOR UPDATE", (list(keys),)).fetchall()
            found: dict[str, int] = {k: fid for k, fid, _ in rows}
            missing = [k for k in keys if k not in found]
            if missing:
                raise FeatureNotFoundError(missing[0])
            for k, _, version in rows:
                check_version(k, expect_version, version)
            w.delete(sorted(set(found.values())))
        assert w.changeset is not None
        return w.changeset


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def store_exists(url: str) -> bool:
    """Whether the URL's schema holds a twin store."""
    target = parse_url(url)
    with connect(target) as conn:
        return conn.execute("SELECT 1 FROM information_schema.tables WHERE table_schema = %s "
                            "AND table_name = 'twin_meta'", (target.schema,)).fetchone() is not None


def drop_store(url: str) -> None:
    """Drop the URL's schema with every table of the store in it (only when it is a twin store)."""
    target = parse_url(url)
    if not store_exists(url):
        return
    with connect(target) as conn:
        conn.execute(f"DROP SCHEMA {ddl.schema_ident(target.schema)} CASCADE")
