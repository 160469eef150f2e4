"""The embedded GeoPackage store: one table per layer, every past version kept.

Writes go through one connection in ``BEGIN IMMEDIATE`` transactions, so each changeset is all or
nothing; the file is in WAL mode, so readers (one connection per thread) keep working meanwhile.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, cast

import geopandas as gpd
import numpy as np
import orjson
import pandas as pd
import shapely

from twin import keys as keymod
from twin.catalogue import Catalogue, LayerSpec
from twin.crs import WGS84
from twin.errors import FeatureNotFoundError, StoreError
from twin.model.reports import Report, Reported
from twin.store.base import BBox, Changeset, LayerChanges, lineage
from twin.store.feed import ChangeFeed, Watcher
from twin.store.gpkg import ddl, sqlfuncs
from twin.store.gpkg.access import SqliteAccessDB, access_db_path
from twin.store.gpkg.aggregates import GpkgAggregateWriter
from twin.store.gpkg.blob import decode, envelope, register_sql_functions
from twin.store.gpkg.bulk import GpkgBulk
from twin.store.gpkg.connections import ReaderPool
from twin.store.gpkg.reads import GpkgSnapshot
from twin.store.gpkg.writing import LayerWriter, layer_writer
from twin.store.planning import check_version
from twin.store.reporting import insert_sql, keep

log = logging.getLogger(__name__)


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
    register_sql_functions(conn)
    conn.execute("PRAGMA busy_timeout = 60000")
    conn.execute("PRAGMA cache_size = -65536")
    return conn


#: This process's locks of :meth:`GeoPackageStore.exclusive`, by store file and name.
_EXCLUSIVE: dict[tuple[str, str], threading.Lock] = {}
_EXCLUSIVE_LOCK = threading.Lock()


@contextmanager
def transaction(conn: sqlite3.Connection, immediate: bool = False) -> Iterator[sqlite3.Connection]:
    """All or nothing: commit when the block ends, roll back on any exception."""
    conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


class GeoPackageStore:
    """A :class:`~twin.store.base.Store` in one GeoPackage file that QGIS opens as it is."""

    engine = "geopackage"

    def __init__(self, path: Path | str, catalogue: Catalogue, *, create: bool = True) -> None:
        self.path = Path(path)
        self.location = str(self.path)
        self.catalogue = catalogue
        self._readers = ReaderPool(self.path, setup=sqlfuncs.setup_reader)
        self._write_lock = threading.Lock()
        self._turn = threading.RLock()
        exists = self.path.exists() and self.path.stat().st_size > 0
        if not exists and not create:
            raise StoreError(f"{self.path}: no store here; build one with `twin demo` or `twin import`")
        if exists and not self.path.is_file():
            raise StoreError(f"{self.path}: not a file")
        try:
            self._writer = _connect(self.path)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: not a GeoPackage store ({exc})") from None
        if not exists:
            with transaction(self._writer, immediate=True):
                ddl.create_store(self._writer, catalogue)
        else:
            version = ddl.check_version(self._writer, str(self.path))
            with transaction(self._writer):
                if version < ddl.SCHEMA_VERSION:
                    ddl.migrate(self._writer, version)
                ddl.sync_layers(self._writer, catalogue)
        self._writer.execute("PRAGMA journal_mode = WAL")
        self._writer.execute("PRAGMA synchronous = NORMAL")
        self._feed_conn = _connect(self.path)
        self._feed_lock = threading.Lock()
        start = self._feed_conn.execute("SELECT coalesce(max(id), 0) FROM twin_changesets").fetchone()[0]
        #: Every changeset committed from now on, by any writer, published once (:mod:`twin.store.feed`).
        self.feed = ChangeFeed(self._newer, int(start))
        self._watcher: Watcher | None = None

    # -- connections -------------------------------------------------------------------------
    def _reader(self) -> sqlite3.Connection:
        return self._readers.get()

    @property
    def writable(self) -> bool:
        """Whether this process may write the file (else tile aggregates are computed per tile)."""
        return os.access(self.path, os.W_OK)

    def position(self) -> str:
        """The latest changeset (one file has no replicas: every read sees every commit)."""
        return str(self.feed.seen)

    @contextmanager
    def read(self, budget_s: float = 5.0, after: str | None = None) -> Iterator[GpkgSnapshot]:
        """One read transaction on this thread's connection (nested reads share the outer one); every read sees
        every committed write, so ``after`` needs nothing."""
        conn = self._reader()
        outer = not conn.in_transaction
        if outer:
            conn.execute("BEGIN")
        try:
            yield GpkgSnapshot(conn, self.catalogue, budget_s)
        finally:
            if outer:
                conn.execute("COMMIT")

    def turn(self) -> AbstractContextManager[bool]:
        """This process's requests read and encode one at a time: with 8 threads drawing tiles at once, SQLite
        stepping rows for some while others encode, the process did 40 % of one thread's work (2026-12-07)."""
        return self._turn

    def access(self, override: Path | None = None) -> SqliteAccessDB:
        """The access database: its own SQLite file, ``city.access.db`` beside ``city.gpkg`` unless overridden."""
        return SqliteAccessDB(override or access_db_path(self.path))

    @contextmanager
    def writing(self) -> Iterator[sqlite3.Connection]:
        """The writer connection inside one ``BEGIN IMMEDIATE`` transaction, under the store's write lock (for the
        engine's own bulk work)."""
        with self._write_lock, transaction(self._writer, immediate=True):
            yield self._writer

    def bulk(self, access: Path | None = None) -> GpkgBulk:
        return GpkgBulk(self, access)

    @contextmanager
    def exclusive(self, name: str, wait: bool = True) -> Iterator[bool]:
        """A lock on one byte of a file beside the store (``<store>.lock``; the byte is the name's hash), which other
        processes see, behind a lock of this process on the file and name (POSIX record locks do not exclude a
        process's own threads, nor two stores it opened on one file)."""
        with _EXCLUSIVE_LOCK:
            local = _EXCLUSIVE.setdefault((str(self.path.resolve()), name), threading.Lock())
        if not local.acquire(blocking=wait):
            yield False
            return
        try:
            if not self.writable:  # nobody writes a read-only store: there is nothing to exclude
                yield True
                return
            with open(self.path.with_name(self.path.name + ".lock"), "a+b") as file:
                offset = zlib.crc32(name.encode())
                try:
                    fcntl.lockf(file, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB), 1, offset)
                except BlockingIOError:
                    yield False
                    return
                try:
                    yield True
                finally:
                    fcntl.lockf(file, fcntl.LOCK_UN, 1, offset)
        finally:
            local.release()

    @contextmanager
    def aggregate_writer(self, layer: str) -> Iterator[GpkgAggregateWriter | None]:
        """A write transaction on ``layer``'s tile aggregates; ``None`` inside when the file is read-only."""
        if not self.writable:
            yield None
            return
        with self._write_lock, transaction(self._writer, immediate=True):
            yield GpkgAggregateWriter(self._writer, self.catalogue[layer].id)

    def __enter__(self) -> GeoPackageStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every reader connection and the writer."""
        if self._watcher is not None:
            self._watcher.stop()
        self._feed_conn.close()
        self._readers.close()
        self._writer.close()

    def subscribe(self, callback: Callable[[Changeset], None]) -> None:
        """Call ``callback`` with every changeset committed from now on, by any writer (see :attr:`feed`)."""
        self.feed.subscribe(callback)

    def unsubscribe(self, callback: Callable[[Changeset], None]) -> None:
        self.feed.unsubscribe(callback)

    def _newer(self, after: int) -> list[Changeset]:
        with self._feed_lock:
            rows = self._feed_conn.execute("SELECT * FROM twin_changesets WHERE id > ? ORDER BY id",
                                           (after,)).fetchall()
        return [Changeset(*r) for r in rows]

    def follow(self, interval_s: float = 0.25) -> None:
        """Watch the file for changesets of other processes (``twin import`` beside a running service), every
        ``interval_s``; a service calls this once."""
        if self._watcher is None:
            self._watcher = Watcher(self.feed, lambda stop: stop.wait(interval_s), "twin-feed")
            self._watcher.start()

    @property
    def store_id(self) -> str:
        """A random id given to the store when it was created, e.g. to key caches derived from it."""
        row = self._reader().execute("SELECT value FROM twin_meta WHERE key = 'store_id'").fetchone()
        return str(row[0])

    @property
    def identity(self) -> str:
        row = self._reader().execute("SELECT id, time, author, source FROM twin_changesets ORDER BY id LIMIT 1"
                                     ).fetchone()
        return lineage(row)

    # -- reads -------------------------------------------------------------------------------
    def _columns(self, spec: LayerSpec) -> list[str]:
        return [*ddl.SYSTEM_COLUMNS, *spec.field_names]

    def _frame(self, spec: LayerSpec, rows: list[tuple[Any, ...]], extra: Sequence[str] = ()) -> gpd.GeoDataFrame:
        cols = [*self._columns(spec), *extra]
        data = {c: [r[i] for r in rows] for i, c in enumerate(cols) if c not in ("geom", "fp")}
        geoms = decode([r[1] for r in rows]) if rows else np.array([], dtype=object)
        order = ["fid", "key", "status", "updated_at", *spec.field_names, "version", "changeset",
                 "valid_from", *extra]
        frame = pd.DataFrame({c: data[c] for c in order}, columns=order)
        return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geoms, crs=WGS84), crs=WGS84)

    def _select(self, spec: LayerSpec, table: str | None = None) -> str:
        cols = ", ".join(f'"{c}"' for c in self._columns(spec))
        return f"SELECT {cols} FROM {ddl.q(table or spec.id)}"

    def features(self, layer: str, *, bbox: BBox | None = None, keys: Sequence[str] | None = None,
                 fids: Sequence[int] | None = None, limit: int | None = None, offset: int = 0,
                 as_of: str | None = None) -> gpd.GeoDataFrame:
        spec = self.catalogue[layer]
        if as_of is not None:
            return self._features_as_of(spec, bbox, keys, as_of, limit, offset)
        where: list[str] = []
        params: list[object] = []
        if bbox is not None:
            where.append(f"fid IN (SELECT id FROM {ddl.q('rtree_' + spec.id + '_geom')} "
                         "WHERE minx <= ? AND maxx >= ? AND miny <= ? AND maxy >= ?)")
            params += [bbox[2], bbox[0], bbox[3], bbox[1]]
        if keys is not None:
            where.append('"key" IN (SELECT value FROM json_each(?))')
            params.append(_json_list(keys))
        if fids is not None:
            where.append("fid IN (SELECT value FROM json_each(?))")
            params.append(_json_list([int(f) for f in fids]))
        sql = self._select(spec) + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY fid"
        sql += " LIMIT ? OFFSET ?"
        params += [-1 if limit is None else int(limit), int(offset)]
        return self._frame(spec, self._reader().execute(sql, params).fetchall())

    def _features_as_of(self, spec: LayerSpec, bbox: BBox | None, keys: Sequence[str] | None, as_of: str,
                        limit: int | None, offset: int) -> gpd.GeoDataFrame:
        """The versions current at ``as_of``: of the layer's table and its history, paged in SQL (a bbox, as for
        :meth:`features`, selects by envelope, from each table's R-tree)."""
        cols = ", ".join(f'"{c}"' for c in self._columns(spec))
        params: dict[str, object] = {"t": as_of, "n": -1 if limit is None else int(limit), "o": int(offset)}
        now, past = ["valid_from <= :t"], ["valid_from <= :t", "valid_to > :t"]
        if bbox is not None:
            params.update(zip("abcd", bbox, strict=True))
            inside = "minx <= :c AND maxx >= :a AND miny <= :d AND maxy >= :b"
            now.append(f"fid IN (SELECT id FROM {ddl.q('rtree_' + spec.id + '_geom')} WHERE {inside})")
            past.append(f"hid IN (SELECT id FROM {ddl.q('rtree_' + spec.id + '_history_geom')} WHERE {inside})")
        if keys is not None:
            params["keys"] = _json_list(keys)
            now.append('"key" IN (SELECT value FROM json_each(:keys))')
            past.append('"key" IN (SELECT value FROM json_each(:keys))')
        sql = (f"SELECT {cols} FROM {ddl.q(spec.id)} WHERE {' AND '.join(now)} UNION ALL SELECT {cols} FROM "
               f"{ddl.q(spec.id + '_history')} WHERE {' AND '.join(past)} ORDER BY fid LIMIT :n OFFSET :o")
        return self._frame(spec, self._reader().execute(sql, params).fetchall())

    def get(self, key: str, *, as_of: str | None = None) -> gpd.GeoDataFrame:
        spec = self.catalogue.by_code(keymod.parse_key(key).code)
        found = self.features(spec.id, keys=[key], as_of=as_of)
        if found.empty:
            raise FeatureNotFoundError(key)
        return found

    def layer_of(self, key: str) -> str:
        """The layer a key belongs to (from its code; the key need not exist)."""
        return self.catalogue.by_code(keymod.parse_key(key).code).id

    def history(self, key: str) -> gpd.GeoDataFrame:
        spec = self.catalogue.by_code(keymod.parse_key(key).code)
        conn = self._reader()
        old = conn.execute(self._select(spec, spec.id + "_history").replace(
            "SELECT ", "SELECT valid_to, changeset_to, op, ", 1) + ' WHERE "key" = ? ORDER BY version', (key,)
        ).fetchall()
        now = conn.execute(self._select(spec) + ' WHERE "key" = ?', (key,)).fetchall()
        if not old and not now:
            raise FeatureNotFoundError(key)
        rows = [(*r[3:], r[0], r[1], r[2]) for r in old] + [(*r, None, None, "current") for r in now]
        return self._frame(spec, rows, extra=("valid_to", "changeset_to", "op"))

    def count(self, layer: str) -> int:
        row = self._reader().execute(
            "SELECT feature_count FROM twin_layers WHERE layer = ?", (self.catalogue[layer].id,)
        ).fetchone()
        return int(row[0]) if row else 0

    def extent(self, layer: str) -> BBox | None:
        row = self._reader().execute(
            "SELECT min_x, min_y, max_x, max_y FROM gpkg_contents WHERE table_name = ?",
            (self.catalogue[layer].id,),
        ).fetchone()
        return None if row is None or row[0] is None else (row[0], row[1], row[2], row[3])

    def changesets(self, *, layer: str | None = None, limit: int = 100) -> list[Changeset]:
        sql = "SELECT * FROM twin_changesets"
        params: list[object] = []
        if layer is not None:
            sql += " WHERE layer = ?"
            params.append(self.catalogue[layer].id)
        rows = self._reader().execute(sql + " ORDER BY id DESC LIMIT ?", [*params, limit]).fetchall()
        return [Changeset(*r) for r in rows]

    def last_changeset(self, layer: str) -> int:
        """Id of the layer's latest changeset (0 when it has none)."""
        return _last_changeset(self._reader(), self.catalogue[layer].id)

    def changes_since(self, layer: str, changeset: int) -> LayerChanges:
        spec = self.catalogue[layer]
        conn = self._reader()
        with transaction(conn):  # one snapshot for all three reads
            last = _last_changeset(conn, spec.id)
            removed = conn.execute(
                f"SELECT fid, geom FROM {ddl.q(spec.id + '_history')} WHERE changeset_to > ? AND changeset <= ?",
                (changeset, changeset),
            ).fetchall()
            added = conn.execute(
                f"SELECT fid, geom FROM {ddl.q(spec.id)} WHERE changeset > ?", (changeset,)
            ).fetchall()
        return LayerChanges(_boxes(removed), _boxes(added), last)

    # -- writes ------------------------------------------------------------------------------
    @contextmanager
    def writer(self, layer: str, *, author: str, source: str, kind: str = "import", source_crs: str | None = None,
               note: str = "", dry_run: bool = False) -> Iterator[LayerWriter]:
        """One changeset on ``layer``, fed chunk by chunk with ``add``; all or nothing.

        With ``dry_run`` the chunks are planned exactly as they would be written (keys, actions), in
        a read transaction on a private connection, and nothing is written.
        """
        spec = self.catalogue[layer]
        options = {"author": author, "source": source, "kind": kind, "source_crs": source_crs, "note": note,
                   "dry_run": dry_run}
        if dry_run:
            conn = _connect(self.path)
            try:
                with layer_writer(conn, spec, lambda: conn.execute("BEGIN"),
                                  lambda ok: conn.execute("ROLLBACK"), **options) as w:
                    yield w
            finally:
                conn.close()
            return
        try:
            with self._write_lock, layer_writer(self._writer, spec, lambda: self._writer.execute("BEGIN IMMEDIATE"),
                              lambda ok: self._writer.execute("COMMIT" if ok else "ROLLBACK"), **options) as w:
                yield w
        except sqlite3.Error as exc:  # a full disk, a lock held too long, a trigger: rolled back, said in one line
            raise StoreError(f"{self.path}: the database refused the write: {exc}") from None
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
            row = w.conn.execute(self._select(spec) + ' WHERE "key" = ?', (key,)).fetchone()
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

    def delete(self, layer: str, keys: Sequence[str], *, author: str, source: str = "delete",
               expect_version: int | None = None) -> Changeset:
        spec = self.catalogue[layer]
        with self.writer(spec.id, author=author, source=source, kind="delete") as w:
            rows = w.conn.execute(
                f'SELECT "key", fid, version FROM {ddl.q(spec.id)} WHERE "key" IN (SELECT value FROM json_each(?))',
                (_json_list(keys),),
            ).fetchall()
            found = {k: fid for k, fid, _ in rows}
            missing = [k for k in keys if k not in found]
            if missing:
                raise FeatureNotFoundError(missing[0])
            for k, _, version in rows:
                check_version(k, expect_version, version)
            w.delete(sorted(set(found.values())))
        assert w.changeset is not None
        return w.changeset


    def report(self, layer: str, reports: Sequence[Report], *, author: str, source: str = "status") -> Reported:
        spec = self.catalogue[layer]
        keys = _json_list(sorted({r.key for r in reports}))
        table, hist = ddl.q(spec.id), ddl.q(spec.id + "_history")

        def read(w: LayerWriter) -> tuple[gpd.GeoDataFrame, dict[str, str], list[tuple[str, str, str, object]]]:
            current = self._frame(spec, w.conn.execute(
                self._select(spec) + ' WHERE "key" IN (SELECT value FROM json_each(?))', (keys,)).fetchall())
            first = dict(w.conn.execute(
                f'SELECT "key", min(valid_from) FROM (SELECT "key", valid_from FROM {hist} WHERE "key" IN '
                f'(SELECT value FROM json_each(?1)) UNION ALL SELECT "key", valid_from FROM {table} WHERE "key" IN '
                '(SELECT value FROM json_each(?1))) GROUP BY "key"', (keys,)).fetchall())
            known = w.conn.execute('SELECT "key", observed_at, source, applied FROM twin_reports WHERE "key" IN '
                                   "(SELECT value FROM json_each(?))", (keys,)).fetchall()
            return current, first, known

        def insert(w: LayerWriter, rows: list[tuple[object, ...]]) -> None:
            w.conn.executemany(insert_sql("twin_reports", "?"), rows)

        return keep(spec, reports, author, lambda: self.writer(spec.id, author=author, source=source, kind="status"),
                    read, insert)


def _json_list(values: Sequence[object]) -> str:
    return orjson.dumps(list(values)).decode()


def _boxes(rows: list[tuple[int, bytes]]) -> list[tuple[int, BBox]]:
    out = []
    for fid, blob in rows:
        env = envelope(blob)
        if env is not None:
            out.append((fid, (env[0], env[2], env[1], env[3])))
    return out


def _last_changeset(conn: sqlite3.Connection, layer: str) -> int:
    row = conn.execute("SELECT max(id) FROM twin_changesets WHERE layer = ?", (layer,)).fetchone()
    return int(row[0] or 0)


