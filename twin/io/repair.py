"""Validating and repairing imported geometries, per feature and in bulk.

Every geometry is checked. Invalid ones are repaired with ``shapely.make_valid`` (the "structure"
method, dropping parts that collapse to a lower dimension) and only the parts of the layer's kind are
kept, so a bow-tie polygon stays a polygon. Geometries that are missing, empty, not finite, or that
repair to nothing are rejected per feature with the reason. Features of another kind than the layer
takes (a line in a point layer) are reported as ``wrong_kind``: the importer refuses such a file whole.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.geometry.base import BaseGeometry

from twin.catalogue import GeometryKind

Geoms = NDArray[np.object_]
TYPE_NAMES = ("Point", "LineString", "LinearRing", "Polygon", "MultiPoint", "MultiLineString", "MultiPolygon",
              "GeometryCollection")
#: shapely type ids each layer kind takes (single and multi), and the dimension of its parts.
_ACCEPTS = {GeometryKind.point: {0, 4}, GeometryKind.line: {1, 5}, GeometryKind.polygon: {3, 6},
            GeometryKind.point_or_polygon: {0, 4, 3, 6}}
_DIMS = {GeometryKind.point: {0}, GeometryKind.line: {1}, GeometryKind.polygon: {2},
         GeometryKind.point_or_polygon: {0, 2}}


@dataclass
class Checked:
    """The outcome of checking one batch: geometries to write and why others were set aside."""

    geoms: Geoms
    rejected: dict[int, str] = field(default_factory=dict)  # position in batch -> reason
    repaired: dict[int, str] = field(default_factory=dict)  # position in batch -> what was wrong
    wrong_kind: dict[int, str] = field(default_factory=dict)  # position in batch -> geometry type


def _keep_kind(geom: shapely.Geometry, kind: GeometryKind) -> BaseGeometry | None:
    """The parts of ``geom`` of the layer's dimension, as one geometry (``None`` if there are none)."""
    parts = shapely.get_parts(geom)
    dims = shapely.get_dimensions(parts)
    wanted = _DIMS[kind]
    keep = parts[np.isin(dims, list(wanted)) & ~shapely.is_empty(parts)]
    if not len(keep):
        return None
    if kind is GeometryKind.point_or_polygon and len(set(shapely.get_dimensions(keep).tolist())) > 1:
        keep = keep[shapely.get_dimensions(keep) == 2]
    if len(keep) == 1:
        return cast(BaseGeometry, keep[0])
    dim = int(shapely.get_dimensions(keep[0]))
    build: dict[int, Callable[[Geoms], object]] = {0: shapely.multipoints, 1: shapely.multilinestrings,
                                                   2: shapely.multipolygons}
    return cast(BaseGeometry, build[dim](shapely.get_parts(keep)))  # one multi-part geometry of all of keep


def _collections(geoms: Geoms, types: NDArray[np.int64], kind: GeometryKind, out: Checked) -> None:
    """Reduce GeometryCollections (and rings) to the layer's kind, where they hold such parts."""
    for r in np.flatnonzero(types == 2):
        geoms[r] = shapely.linestrings(shapely.get_coordinates(geoms[r]))
        types[r] = 1
    for r in np.flatnonzero(types == 7):
        kept = _keep_kind(geoms[r], kind)
        if kept is None:
            out.wrong_kind[int(r)] = "GeometryCollection"
        else:
            geoms[r] = kept
            types[r] = shapely.get_type_id(kept)


def _repair(geoms: Geoms, rows: NDArray[np.int64], kind: GeometryKind, out: Checked) -> None:
    reasons = shapely.is_valid_reason(geoms[rows])
    fixed = shapely.make_valid(geoms[rows], method="structure", keep_collapsed=False)
    for r, why, geom in zip(rows.tolist(), reasons.tolist(), fixed.tolist(), strict=True):
        kept = None if geom is None or geom.is_empty else _keep_kind(geom, kind)
        if kept is None or not kept.is_valid:
            out.rejected[r] = f"invalid geometry that cannot be repaired ({why}; nothing of it is left)"
        else:
            geoms[r] = kept
            out.repaired[r] = why


def check_geometries(geoms: Geoms, kind: GeometryKind) -> Checked:
    """Check (and repair) a batch of lon/lat geometries for a layer of ``kind``."""
    geoms = np.asarray(geoms, dtype=object).copy()
    out = Checked(geoms)
    missing = shapely.is_missing(geoms)
    for r in np.flatnonzero(missing):
        out.rejected[int(r)] = "geometry is missing"
    types = np.full(len(geoms), -1, dtype=np.int64)
    types[~missing] = shapely.get_type_id(geoms[~missing])
    _collections(geoms, types, kind, out)
    present = ~missing
    empty = np.zeros(len(geoms), dtype=bool)
    empty[present] = shapely.is_empty(geoms[present])
    for r in np.flatnonzero(empty):
        out.rejected[int(r)] = "geometry is empty"
    candidates = present & ~empty
    wrong = candidates & ~np.isin(types, list(_ACCEPTS[kind]))
    for r in np.flatnonzero(wrong):
        out.wrong_kind.setdefault(int(r), TYPE_NAMES[types[r]] if types[r] >= 0 else "unknown")
    check = np.flatnonzero(candidates & ~wrong & ~np.isin(np.arange(len(geoms)), list(out.wrong_kind)))
    finite = np.ones(len(check), dtype=bool)
    if len(check):
        coords, index = shapely.get_coordinates(geoms[check], return_index=True)
        bad = ~np.isfinite(coords).all(axis=1)
        finite[np.unique(index[bad])] = False
    for r in check[~finite]:
        out.rejected[int(r)] = "coordinates are not finite numbers (NaN or infinity)"
    check = check[finite]
    invalid = check[~shapely.is_valid(geoms[check])] if len(check) else check
    if len(invalid):
        _repair(geoms, invalid, kind, out)
    if kind is GeometryKind.point:
        multi = check[types[check] == 4]
        parts = shapely.get_num_geometries(geoms[multi]) if len(multi) else np.array([], dtype=int)
        for r, n in zip(multi.tolist(), parts.tolist(), strict=True):
            if n != 1:
                out.rejected[r] = f"a MultiPoint with {n} parts cannot go into a point layer; split it first"
    return out
