"""The embedded GeoPackage store: one table per layer, every past version kept.

Writes go through one connection in ``BEGIN IMMEDIATE`` transactions, so each changeset is all or
nothing; the file is in WAL mode, so readers (one connection per thread) keep working meanwhile.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from twin import keys as keymod
from twin.catalogue import Catalogue, LayerSpec
from twin.errors import FeatureNotFoundError, StoreError
from twin.store import ddl
from twin.store.base import BBox, Changeset, LayerChanges, WritePlan
from twin.store.gpkg_blob import decode, encode, envelope, register_sql_functions
from twin.store.planning import plan_write, stored_values

TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
    register_sql_functions(conn)
    conn.execute("PRAGMA busy_timeout = 60000")
    conn.execute("PRAGMA cache_size = -65536")
    return conn


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

    def __init__(self, path: Path | str, catalogue: Catalogue, *, create: bool = True) -> None:
        self.path = Path(path)
        self.catalogue = catalogue
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._subscribers: list[Callable[[Changeset], None]] = []
        exists = self.path.exists() and self.path.stat().st_size > 0
        if not exists and not create:
            raise StoreError(f"{self.path}: no store here; build one with `twin demo` or `twin import`")
        if exists and not self.path.is_file():
            raise StoreError(f"{self.path}: not a file")
        self._writer = _connect(self.path)
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

    # -- connections -------------------------------------------------------------------------
    def _reader(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = _connect(self.path)
            conn.execute("PRAGMA query_only = 1")
            self._local.conn = conn
        return conn

    def close(self) -> None:
        """Close this thread's reader and the writer."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
        self._writer.close()

    def subscribe(self, callback: Callable[[Changeset], None]) -> None:
        self._subscribers.append(callback)

    # -- reads -------------------------------------------------------------------------------
    def _columns(self, spec: LayerSpec) -> list[str]:
        return [*ddl.SYSTEM_COLUMNS, *spec.field_names]

    def _frame(self, spec: LayerSpec, rows: list[tuple], extra: Sequence[str] = ()) -> gpd.GeoDataFrame:
        cols = [*self._columns(spec), *extra]
        data = {c: [r[i] for r in rows] for i, c in enumerate(cols) if c not in ("geom", "fp")}
        geoms = decode([r[1] for r in rows]) if rows else np.array([], dtype=object)
        order = ["fid", "key", "status", "updated_at", *spec.field_names, "version", "changeset",
                 "valid_from", *extra]
        frame = pd.DataFrame({c: data[c] for c in order}, columns=order)
        return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geoms, crs="EPSG:4326"), crs="EPSG:4326")

    def _select(self, spec: LayerSpec, table: str | None = None) -> str:
        cols = ", ".join(f'"{c}"' for c in self._columns(spec))
        return f"SELECT {cols} FROM {ddl.q(table or spec.id)}"

    def features(self, layer: str, *, bbox: BBox | None = None, keys: Sequence[str] | None = None,
                 fids: Sequence[int] | None = None, limit: int | None = None, offset: int = 0,
                 as_of: str | None = None) -> gpd.GeoDataFrame:
        spec = self.catalogue[layer]
        if as_of is not None:
            return self._features_as_of(spec, bbox, keys, as_of, limit, offset)
        where, params = [], []
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
        cols = ", ".join(f'"{c}"' for c in self._columns(spec))
        sql = (f"SELECT * FROM (SELECT {cols} FROM {ddl.q(spec.id)} WHERE valid_from <= :t "
               f"UNION ALL SELECT {cols} FROM {ddl.q(spec.id + '_history')} "
               "WHERE valid_from <= :t AND valid_to > :t)")
        params: dict[str, object] = {"t": as_of}
        if keys is not None:
            sql += ' WHERE "key" IN (SELECT value FROM json_each(:keys))'
            params["keys"] = _json_list(keys)
        frame = self._frame(spec, self._reader().execute(sql + " ORDER BY fid", params).fetchall())
        if bbox is not None:
            frame = frame[frame.intersects(shapely.box(*bbox))]
        stop = None if limit is None else offset + limit
        return frame.iloc[offset:stop].reset_index(drop=True)

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

    def index_entries(self, layer: str) -> tuple[int, Iterator[tuple[int, BBox]]]:
        """The layer's R-tree entries as ``(fid, (minx, miny, maxx, maxy))``, with the changeset they reflect."""
        spec = self.catalogue[layer]
        conn = _connect(self.path)
        conn.execute("BEGIN")
        last = _last_changeset(conn, spec.id)
        cur = conn.execute(f"SELECT id, minx, miny, maxx, maxy FROM {ddl.q('rtree_' + spec.id + '_geom')}")

        def rows() -> Iterator[tuple[int, BBox]]:
            try:
                for fid, a, b, c, d in cur:
                    yield fid, (a, b, c, d)
            finally:
                conn.close()

        return last, rows()

    # -- writes ------------------------------------------------------------------------------
    def plan_upsert(self, layer: str, frame: gpd.GeoDataFrame) -> WritePlan:
        return plan_write(self._reader(), self.catalogue[layer], frame, _utc_now())

    def upsert(self, layer: str, frame: gpd.GeoDataFrame, *, author: str, source: str,
               source_crs: str | None = None, note: str = "") -> Changeset:
        return self.apply(self.plan_upsert(layer, frame), author=author, source=source,
                          source_crs=source_crs, note=note)

    def apply(self, plan: WritePlan, *, author: str, source: str, kind: str = "import",
              source_crs: str | None = None, note: str = "") -> Changeset:
        spec = self.catalogue[plan.layer]
        with self._writing() as conn:
            if _last_changeset(conn, spec.id) != plan.base_changeset:  # the layer moved on: plan again
                plan = plan_write(conn, spec, plan.frame.drop(columns=["key"]), plan.time)
            cs = self._commit(conn, spec, plan, author=author, source=source, kind=kind,
                              source_crs=source_crs, note=note)
        self._notify(cs)
        return cs

    def edit(self, key: str, *, author: str, properties: dict[str, object] | None = None,
             geometry: object | None = None, source: str = "edit") -> Changeset:
        spec = self.catalogue.by_code(keymod.parse_key(key).code)
        with self._writing() as conn:
            row = conn.execute(self._select(spec) + ' WHERE "key" = ?', (key,)).fetchone()
            if row is None:
                raise FeatureNotFoundError(key)
            current = self._frame(spec, [row])
            values = {c: current.at[0, c] for c in ("status", "updated_at", *spec.field_names)}
            values.update(properties or {})
            if properties and "updated_at" not in properties:
                values["updated_at"] = None
            geom = current.geometry.iloc[0] if geometry is None else geometry
            batch = gpd.GeoDataFrame(pd.DataFrame([values]), geometry=[geom], crs="EPSG:4326")
            plan = plan_write(conn, spec, batch, _utc_now(), fixed=(int(row[0]), key))
            cs = self._commit(conn, spec, plan, author=author, source=source, kind="edit")
        self._notify(cs)
        return cs

    def delete(self, layer: str, keys: Sequence[str], *, author: str, source: str = "delete") -> Changeset:
        spec = self.catalogue[layer]
        with self._writing() as conn:
            found = dict(conn.execute(
                f'SELECT "key", fid FROM {ddl.q(spec.id)} WHERE "key" IN (SELECT value FROM json_each(?))',
                (_json_list(keys),),
            ).fetchall())
            missing = [k for k in keys if k not in found]
            if missing:
                raise FeatureNotFoundError(missing[0])
            plan = plan_write(conn, spec, gpd.GeoDataFrame(geometry=[], crs="EPSG:4326"), _utc_now())
            plan.delete_fids = sorted(set(found.values()))
            cs = self._commit(conn, spec, plan, author=author, source=source, kind="delete")
        self._notify(cs)
        return cs

    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        with self._write_lock, transaction(self._writer, immediate=True) as conn:
            yield conn

    def _notify(self, cs: Changeset) -> None:
        for callback in self._subscribers:
            callback(cs)

    def _commit(self, conn: sqlite3.Connection, spec: LayerSpec, plan: WritePlan, *, author: str, source: str,
                kind: str, source_crs: str | None = None, note: str = "") -> Changeset:
        time = _next_time(conn)
        counts = (plan.count("insert"), plan.count("update"), len(plan.delete_fids), plan.count("unchanged"))
        cur = conn.execute(
            "INSERT INTO twin_changesets (time, author, source, layer, kind, inserted, updated, deleted, "
            "unchanged, source_crs, note) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (time, author, source, spec.id, kind, *counts, source_crs, note),
        )
        cs = Changeset(int(cur.lastrowid or 0), time, author, source, spec.id, kind, *counts, source_crs, note)
        for statement in ddl.statements(ddl.layer_script("rtree_triggers_drop", spec)):
            conn.execute(statement)
        self._write_rows(conn, spec, plan, cs)
        for statement in ddl.statements(ddl.layer_script("rtree_triggers", spec)):
            conn.execute(statement)
        return cs

    def _archive(self, conn: sqlite3.Connection, spec: LayerSpec, fids: list[int], cs: Changeset,
                 op: str) -> None:
        cols = ", ".join(f'"{c}"' for c in self._columns(spec))
        conn.executemany(
            f"INSERT INTO {ddl.q(spec.id + '_history')} ({cols}, valid_to, changeset_to, op) "
            f"SELECT {cols}, ?, ?, ? FROM {ddl.q(spec.id)} WHERE fid = ?",
            [(cs.time, cs.id, op, f) for f in fids],
        )

    def _write_rows(self, conn: sqlite3.Connection, spec: LayerSpec, plan: WritePlan, cs: Changeset) -> None:
        table, rtree = ddl.q(spec.id), ddl.q(f"rtree_{spec.id}_geom")
        frame = plan.frame
        attrs = ["status", "updated_at", *spec.field_names]
        upd = np.flatnonzero(plan.action == "update")
        ins = np.flatnonzero(plan.action == "insert")
        if plan.delete_fids:
            self._archive(conn, spec, plan.delete_fids, cs, "delete")
            conn.executemany(f"DELETE FROM {table} WHERE fid = ?", [(f,) for f in plan.delete_fids])
            conn.executemany(f"DELETE FROM {rtree} WHERE id = ?", [(f,) for f in plan.delete_fids])
        if len(upd):
            fids = plan.fids[upd].tolist()
            self._archive(conn, spec, fids, cs, "update")
            sets = ", ".join(f'"{c}" = ?' for c in ["geom", "fp", *attrs])
            rows = stored_values(frame.iloc[upd], attrs)
            blobs = encode(frame.geometry.to_numpy()[upd])
            conn.executemany(
                f"UPDATE {table} SET {sets}, version = version + 1, changeset = ?, valid_from = ? WHERE fid = ?",
                [(b, int(fp), *r, cs.id, cs.time, f)
                 for b, fp, r, f in zip(blobs, plan.fps[upd].tolist(), rows, fids, strict=True)],
            )
            self._index_rows(conn, rtree, fids, frame.geometry.to_numpy()[upd])
        if len(ins):
            start = _next_fid(conn, spec.id)
            fids = list(range(start, start + len(ins)))
            names = ", ".join(f'"{c}"' for c in ["fid", "geom", "key", "fp", "version", "changeset",
                                                   "valid_from", *attrs])
            marks = ", ".join("?" * (7 + len(attrs)))
            rows = stored_values(frame.iloc[ins], attrs)
            blobs = encode(frame.geometry.to_numpy()[ins])
            keys = frame["key"].to_numpy()[ins].tolist()
            conn.executemany(
                f"INSERT INTO {table} ({names}) VALUES ({marks})",
                [(f, b, k, int(fp), 1, cs.id, cs.time, *r)
                 for f, b, k, fp, r in zip(fids, blobs, keys, plan.fps[ins].tolist(), rows, strict=True)],
            )
            self._index_rows(conn, rtree, fids, frame.geometry.to_numpy()[ins])
        self._update_layer_meta(conn, spec, cs, frame.geometry.to_numpy()[np.concatenate([upd, ins])])

    def _index_rows(self, conn: sqlite3.Connection, rtree: str, fids: list[int], geoms: np.ndarray) -> None:
        b = shapely.bounds(geoms)
        conn.executemany(
            f"INSERT OR REPLACE INTO {rtree} VALUES (?, ?, ?, ?, ?)",
            zip(fids, b[:, 0].tolist(), b[:, 2].tolist(), b[:, 1].tolist(), b[:, 3].tolist(), strict=True),
        )

    def _update_layer_meta(self, conn: sqlite3.Connection, spec: LayerSpec, cs: Changeset,
                           geoms: np.ndarray) -> None:
        conn.execute("UPDATE twin_layers SET feature_count = feature_count + ? WHERE layer = ?",
                     (cs.inserted - cs.deleted, spec.id))
        params: list[object] = [cs.time]
        sets = "last_change = ?"
        if len(geoms):
            minx, miny, maxx, maxy = shapely.total_bounds(geoms).tolist()
            sets += (", min_x = min(coalesce(min_x, ?), ?), min_y = min(coalesce(min_y, ?), ?), "
                     "max_x = max(coalesce(max_x, ?), ?), max_y = max(coalesce(max_y, ?), ?)")
            params += [minx, minx, miny, miny, maxx, maxx, maxy, maxy]
        conn.execute(f"UPDATE gpkg_contents SET {sets} WHERE table_name IN (?, ?)",
                     [*params, spec.id, spec.id + "_history"])


def open_store(path: Path | str, catalogue: Catalogue, *, create: bool = True) -> GeoPackageStore:
    """Open (or create) the GeoPackage store at ``path``."""
    return GeoPackageStore(path, catalogue, create=create)


def _json_list(values: Sequence[object]) -> str:
    import orjson

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


def _next_fid(conn: sqlite3.Connection, table: str) -> int:
    seq = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (table,)).fetchone()
    top = conn.execute(f"SELECT max(fid) FROM {ddl.q(table)}").fetchone()
    return max(int(seq[0]) if seq else 0, int(top[0] or 0)) + 1


def _utc_now() -> str:
    return datetime.now(UTC).strftime(TIME_FORMAT)


def _next_time(conn: sqlite3.Connection) -> str:
    """Now, but strictly after the latest changeset, so history intervals never overlap."""
    now = datetime.now(UTC)
    row = conn.execute("SELECT max(time) FROM twin_changesets").fetchone()
    if row[0] is not None:
        last = datetime.strptime(row[0], TIME_FORMAT).replace(tzinfo=UTC)
        if now <= last:
            now = last + timedelta(microseconds=1)
    return now.strftime(TIME_FORMAT)
