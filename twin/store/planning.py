"""Working out what a write does before doing it: geometry checks, schema, keys, insert or update.

``plan_write`` reads the store but never changes it, so the same code serves dry runs and commits.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import orjson
import pandas as pd
import shapely
from pyproj import CRS

from twin import keys as keymod
from twin.catalogue import GeometryKind, LayerSpec
from twin.errors import SchemaViolationError
from twin.schema import conform
from twin.store import ddl
from twin.store.base import WritePlan

_LONLAT = CRS.from_epsg(4326)


def check_geometries(spec: LayerSpec, frame: gpd.GeoDataFrame) -> np.ndarray:
    """The batch's geometries, checked against the layer and promoted to its single/multi form."""
    problems: list[tuple[int, str, str]] = []
    if frame.crs is not None and not CRS(frame.crs).equals(_LONLAT, ignore_axis_order=True):
        problems.append((0, "geometry", f"coordinates are in {CRS(frame.crs).name}; the store takes "
                                        "EPSG:4326 lon/lat (twin import reprojects for you)"))
    geoms = np.asarray(frame.geometry.to_numpy(), dtype=object)
    types = shapely.get_type_id(geoms)
    missing = shapely.is_missing(geoms)
    allowed = spec.geometry.shapely_types
    names = np.array(["Point", "LineString", "LinearRing", "Polygon", "MultiPoint", "MultiLineString",
                      "MultiPolygon", "GeometryCollection"])
    for r in np.flatnonzero(missing):
        problems.append((int(r), "geometry", "geometry is missing"))
    present = ~missing
    empty = np.zeros(len(geoms), dtype=bool)
    empty[present] = shapely.is_empty(geoms[present])
    for r in np.flatnonzero(empty):
        problems.append((int(r), "geometry", "geometry is empty"))
    ok = present & ~empty
    for r in np.flatnonzero(ok):
        t = names[types[r]] if types[r] >= 0 else "unknown"
        if t not in allowed:
            problems.append((int(r), "geometry", f"a {t} cannot go into {spec.id} ({spec.geometry.value} layer)"))
    valid = np.ones(len(geoms), dtype=bool)
    valid[ok] = shapely.is_valid(geoms[ok])
    for r in np.flatnonzero(~valid):
        problems.append((int(r), "geometry", f"invalid geometry: {shapely.is_valid_reason(geoms[r])}"))
    if ok.any():
        b = shapely.bounds(geoms[ok])
        bad = (b[:, 0] < -180) | (b[:, 2] > 180) | (b[:, 1] < -90) | (b[:, 3] > 90)
        for r in np.flatnonzero(ok)[bad]:
            problems.append((int(r), "geometry", "coordinates are not lon/lat degrees"))
    if problems:
        raise SchemaViolationError(spec.id, sorted(problems))
    return _promote(spec, geoms, types)


def _promote(spec: LayerSpec, geoms: np.ndarray, types: np.ndarray) -> np.ndarray:
    kind = spec.geometry
    out = geoms.copy()
    if kind is GeometryKind.line:
        single = types == 1
        out[single] = shapely.multilinestrings(geoms[single, None].tolist()) if single.any() else out[single]
    elif kind is GeometryKind.polygon:
        single = types == 3
        out[single] = shapely.multipolygons(geoms[single, None].tolist()) if single.any() else out[single]
    elif kind is GeometryKind.point:
        multi = types == 4
        for r in np.flatnonzero(multi):
            if shapely.get_num_geometries(geoms[r]) != 1:
                raise SchemaViolationError(spec.id, [(int(r), "geometry", "a MultiPoint with several parts "
                                                     "cannot go into a point layer; split it first")])
            out[r] = shapely.get_geometry(geoms[r], 0)
    return out


def stored_values(frame: pd.DataFrame, columns: list[str]) -> list[tuple]:
    """Rows of plain Python values (``None`` for missing) ready for SQLite."""
    part = frame[columns].astype(object)
    return list(part.where(part.notna(), None).itertuples(index=False, name=None))


@dataclass
class WriteSession:
    """State shared by the chunks of one write, so that chunks never claim the same component twice.

    ``changeset`` is the id of the open changeset (rows it wrote are not "existing"), or -1 in a dry run,
    where planned keys are remembered in a temporary table instead of being written.
    """

    conn: sqlite3.Connection
    changeset: int = -1
    base_empty: bool = False  # the layer had no components when the session began

    def __post_init__(self) -> None:
        self.conn.execute("CREATE TEMP TABLE IF NOT EXISTS twin_claimed (fid INTEGER PRIMARY KEY)")
        self.conn.execute("CREATE TEMP TABLE IF NOT EXISTS twin_planned (\"key\" TEXT PRIMARY KEY)")
        self.conn.execute("DELETE FROM temp.twin_claimed")
        self.conn.execute("DELETE FROM temp.twin_planned")

    @property
    def dry_run(self) -> bool:
        return self.changeset < 0

    def record(self, plan: WritePlan) -> None:
        """Remember what a chunk claimed and, in a dry run, the keys it would create."""
        if self.dry_run:
            claimed = plan.fids[plan.action != "insert"]
            new = plan.frame["key"].to_numpy()[plan.action == "insert"]
            self.conn.executemany("INSERT INTO temp.twin_planned VALUES (?)", ((k,) for k in new.tolist()))
        else:
            claimed = plan.fids[plan.action == "unchanged"]
        self.conn.executemany("INSERT OR IGNORE INTO temp.twin_claimed VALUES (?)", ((int(f),) for f in claimed))


def _existing(session: WriteSession, spec: LayerSpec, fps: np.ndarray) -> list[tuple]:
    cols = ", ".join(f'"{c}"' for c in ["fid", "key", "fp", "status", "updated_at", *spec.field_names])
    return session.conn.execute(
        f"SELECT {cols} FROM {ddl.q(spec.id)} WHERE fp IN (SELECT value FROM json_each(?)) "
        "AND changeset != ? AND fid NOT IN (SELECT fid FROM temp.twin_claimed) ORDER BY \"key\"",
        (orjson.dumps(np.unique(fps).tolist()).decode(), session.changeset),
    ).fetchall()


def _used_ordinals(session: WriteSession, spec: LayerSpec):  # type: ignore[no-untyped-def]
    def lookup(cells: list[str]) -> Mapping[str, set[int]]:
        used: dict[str, set[int]] = defaultdict(set)
        prefixes = orjson.dumps([f"{spec.code}-{c}-" for c in cells]).decode()
        sql = ('SELECT k."key" FROM json_each(?) AS j CROSS JOIN {table} AS k '
               "WHERE k.\"key\" >= j.value AND k.\"key\" < substr(j.value, 1, length(j.value) - 1) || '.'")
        for table in (ddl.q(spec.id), ddl.q(spec.id + "_history"), "temp.twin_planned"):  # never reuse a key
            for (key,) in session.conn.execute(sql.format(table=table), (prefixes,)):
                cell, ordinal = keymod.cell_and_ordinal(key)
                used[cell].add(ordinal)
        return used

    return lookup


def plan_write(session: WriteSession, spec: LayerSpec, frame: gpd.GeoDataFrame, now: str,
               fixed: tuple[int, str] | None = None) -> WritePlan:
    """Plan the upsert of ``frame`` into ``spec``'s layer (or, with ``fixed``, an edit of one component)."""
    conn = session.conn
    frame = frame.reset_index(drop=True)
    geoms = check_geometries(spec, frame)
    given = frame.drop(columns=[c for c in (frame.geometry.name, "key") if c in frame.columns])
    attrs = conform(spec, pd.DataFrame(given), now)
    compare = ["status", *spec.field_names]
    if "updated_at" in given.columns:
        compare.insert(1, "updated_at")
    n = len(frame)
    fps = keymod.fingerprints(geoms) if n else np.array([], dtype=np.int64)
    action = np.full(n, "insert", dtype=object)
    fids = np.full(n, -1, dtype=np.int64)
    keys = np.empty(n, dtype=object)
    if fixed is not None:
        fids[0], keys[0] = fixed
        cols = ", ".join(f'"{c}"' for c in compare)
        row = conn.execute(f"SELECT fp, {cols} FROM {ddl.q(spec.id)} WHERE fid = ?", (fixed[0],)).fetchone()
        same = row is not None and row[0] == int(fps[0]) and tuple(row[1:]) == stored_values(attrs, compare)[0]
        action[0] = "unchanged" if same else "update"
    elif n:
        count = int(conn.execute("SELECT feature_count FROM twin_layers WHERE layer = ?", (spec.id,)).fetchone()[0])
        existing = _existing(session, spec, fps) if count and not session.base_empty else []
        by_fp: dict[int, list[str]] = defaultdict(list)
        stored: dict[str, tuple[int, tuple]] = {}
        names = ["fid", "key", "fp", "status", "updated_at", *spec.field_names]
        pos = [names.index(c) for c in compare]
        for row in existing:
            by_fp[row[2]].append(row[1])
            stored[row[1]] = (row[0], tuple(row[i] for i in pos))
        counts = np.unique(fps, return_counts=True)[1]
        tiebreak = keymod.row_hashes(attrs[compare]) if (counts > 1).any() else np.zeros(n, dtype=np.int64)
        assigned = keymod.assign_keys(spec.code, keymod.cells(geoms), fps, tiebreak, by_fp,
                                      _used_ordinals(session, spec))
        keys = assigned.keys
        hit = np.flatnonzero(assigned.matched)
        if len(hit):
            new_rows = stored_values(attrs.iloc[hit], compare)
            for i, values in zip(hit.tolist(), new_rows, strict=True):
                fid, old = stored[keys[i]]
                fids[i] = fid
                action[i] = "unchanged" if old == values else "update"
    out = gpd.GeoDataFrame(attrs, geometry=gpd.GeoSeries(geoms, crs="EPSG:4326"), crs="EPSG:4326")
    out.insert(0, "key", keys)
    return WritePlan(spec.id, out, action, fids, fps)
