"""Working out what a write does before doing it: geometry checks, schema, keys, insert or update.

``plan_write`` reads the store (through an engine's :class:`PlanLookup`) but never changes it, so the same
code serves dry runs and commits, on every engine.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from twin import keys as keymod
from twin.catalogue import GeometryKind, LayerSpec
from twin.crs import WGS84
from twin.errors import SchemaViolationError, VersionConflictError
from twin.schema import conform
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


def stored_values(frame: pd.DataFrame, columns: list[str]) -> list[tuple[Any, ...]]:
    """Rows of plain Python values (``None`` for missing) ready for SQLite, built column by column."""
    return list(zip(*(_plain(frame[c]) for c in columns), strict=True)) if columns else [()] * len(frame)


def _plain(col: pd.Series) -> list[Any]:
    """One column as Python values, missing ones (NaN, NaT, NA) as ``None``."""
    if isinstance(col.dtype, np.dtype) and col.dtype.kind in "iub":  # numpy integers and booleans: none missing
        return col.tolist()
    values = col.to_numpy(dtype=object)
    missing = pd.isna(values)
    if missing.any():
        values = values.copy()
        values[missing] = None
    return values.tolist()


class PlanLookup(Protocol):
    """What planning needs to read from an engine, inside the write's transaction.

    ``changeset`` is the id of the open changeset (rows it wrote are not "existing"), or -1 in a dry run,
    where the keys a plan would create are remembered (:meth:`record`) instead of being written.
    """

    changeset: int
    base_empty: bool  # the layer had no components when the write began

    def count(self) -> int:
        """How many components the layer holds now."""
        ...

    def existing(self, fps: np.ndarray, columns: list[str]) -> list[tuple[Any, ...]]:
        """``fid, key, fp, *columns`` of components whose fingerprint is in ``fps``, not written by this changeset
        nor claimed by an earlier chunk, ordered by key; values as :func:`stored_values` gives them."""
        ...

    def stored(self, fids: Sequence[int], columns: list[str]) -> dict[int, tuple[Any, ...]]:
        """``fp, *columns`` of each of these components that exists, values as :func:`stored_values` gives them."""
        ...

    def used_keys(self, prefixes: list[str]) -> list[str]:
        """Every key starting with one of ``prefixes``, now, in history, or planned by this dry run."""
        ...

    def record(self, plan: WritePlan) -> None:
        """Remember what a chunk claimed (and, in a dry run, the keys it would create)."""
        ...


def _used_ordinals(lookup: PlanLookup, spec: LayerSpec) -> Callable[[list[str]], Mapping[str, set[int]]]:
    def used(cells: list[str]) -> Mapping[str, set[int]]:
        found: dict[str, set[int]] = defaultdict(set)
        for key in lookup.used_keys([f"{spec.code}-{c}-" for c in cells]):  # never reuse a key
            cell, ordinal = keymod.cell_and_ordinal(key)
            found[cell].add(ordinal)
        return found

    return used


def plan_write(lookup: PlanLookup, spec: LayerSpec, frame: gpd.GeoDataFrame, now: str,
               fixed: tuple[Sequence[int], Sequence[str]] | None = None) -> WritePlan:
    """Plan the upsert of ``frame`` into ``spec``'s layer (or, with ``fixed``, an edit of the components with these
    ids and keys, row by row)."""
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
        given_values = stored_values(attrs, compare)
        stored_rows = lookup.stored(fixed[0], compare)
        for i, (fid, key) in enumerate(zip(*fixed, strict=True)):
            fids[i], keys[i] = fid, key
            row = stored_rows.get(int(fid))
            same = row is not None and row[0] == int(fps[i]) and tuple(row[1:]) == given_values[i]
            action[i] = "unchanged" if same else "update"
    elif n:
        existing = lookup.existing(np.unique(fps), compare) if not lookup.base_empty and lookup.count() else []
        by_fp: dict[int, list[str]] = defaultdict(list)
        stored: dict[str, tuple[int, tuple[Any, ...]]] = {}
        for row in existing:
            by_fp[row[2]].append(row[1])
            stored[row[1]] = (row[0], tuple(row[3:]))
        counts = np.unique(fps, return_counts=True)[1]
        tiebreak = keymod.row_hashes(attrs[compare]) if (counts > 1).any() else np.zeros(n, dtype=np.int64)
        assigned = keymod.assign_keys(spec.code, keymod.cells(geoms), fps, tiebreak, by_fp,
                                      _used_ordinals(lookup, spec))
        keys = assigned.keys
        hit = np.flatnonzero(assigned.matched)
        if len(hit):
            new_rows = stored_values(attrs.iloc[hit], compare)
            for i, values in zip(hit.tolist(), new_rows, strict=True):
                fid, old = stored[keys[i]]
                fids[i] = fid
                action[i] = "unchanged" if old == values else "update"
    out = gpd.GeoDataFrame(attrs, geometry=gpd.GeoSeries(geoms, crs=WGS84), crs=WGS84)
    out.insert(0, "key", keys)
    return WritePlan(spec.id, out, action, fids, fps)


def check_version(key: str, expected: int | None, current: int) -> None:
    """Refuse a conditional write whose component is no longer at the version the writer read."""
    if expected is not None and int(current) != expected:
        raise VersionConflictError(key, expected, int(current))
