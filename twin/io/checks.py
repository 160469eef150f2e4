"""Sanity checks on where an import lands: the city extent, and the GCJ-02 / BD-09 offset test.

The offset test compares the file with what the store already holds. It takes a sample of the
imported coordinates (points, and the vertices of lines and polygons, so that a file of a dozen
district outlines is judged as surely as ten thousand hydrants) and measures, in metres, the median
distance to the nearest geometry of each reference layer (boundaries of polygons, lines, points)
three ways: as read, and as if the coordinates had really been GCJ-02 or BD-09. Data digitised on an
Amap or Baidu basemap but labelled WGS84 sits ~500 m (GCJ-02) or ~1.1 km (BD-09) off some layer's
geometries and falls onto them once the offset is removed; unrelated data (hydrants inside district
polygons) moves no closer either way. Each layer is judged on its own, so that a dense layer of
street lights near everything cannot hide a perfect fit to the district boundaries.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import numpy as np
import shapely
from numpy.typing import NDArray

from twin import crs as crsmod
from twin.geodesy import to_local
from twin.store.base import BBox, Store

Array = NDArray[np.float64]
#: The offset test needs at least this many sampled coordinates to conclude anything.
MIN_SAMPLE = 20
#: Sampled coordinates kept per import (spread over the whole file).
SAMPLE_SIZE = 2000
#: Most vertices read from one chunk's geometries to draw its share of the sample from.
VERTEX_BUDGET = 200_000
#: Reference features read per layer around the import.
REFERENCE_LIMIT = 20000
_SEARCH_MARGIN = 0.03  # degrees (~3 km) around the sample, enough for a 1.1 km BD-09 offset
#: A hypothesis wins when its median distance is below this and a fifth of the as-read distance.
_CLOSE_METRES = 50.0
_FAR_METRES = 100.0

_HYPOTHESES: dict[str, tuple[str, Callable[[Array, Array], tuple[Array, Array]]]] = {
    "gcj02": ("GCJ-02 (Amap/Tencent) labelled as WGS84", crsmod.gcj02_to_wgs84),
    "bd09": ("BD-09 (Baidu) labelled as WGS84", crsmod.bd09_to_wgs84),
}
_UNDO: dict[str, tuple[str, Callable[[Array, Array], tuple[Array, Array]]]] = {
    "gcj02": ("already WGS84 although read as GCJ-02", crsmod.wgs84_to_gcj02),
    "bd09": ("already WGS84 although read as BD-09", crsmod.wgs84_to_bd09),
}


def outside(geoms: NDArray[np.object_], extent: BBox) -> NDArray[np.bool_]:
    """Which geometries lie wholly outside ``extent`` (lon/lat)."""
    if not len(geoms):
        return np.zeros(0, dtype=bool)
    b = shapely.bounds(np.asarray(geoms, dtype=object))
    return (b[:, 2] < extent[0]) | (b[:, 0] > extent[2]) | (b[:, 3] < extent[1]) | (b[:, 1] > extent[3])


@dataclass
class CoordinateSample:
    """A bounded, evenly spread sample of imported lon/lat coordinates, filled chunk by chunk.

    Points give their position, lines and polygons their vertices: a shifted outline is told by its
    boundary, which lies on the reference boundaries once corrected, not by an interior point.
    """

    total_rows: int
    size: int = SAMPLE_SIZE

    def __post_init__(self) -> None:
        self.x: list[Array] = []
        self.y: list[Array] = []

    def add(self, geoms: NDArray[np.object_]) -> None:
        """Keep a share of this chunk's coordinates proportional to its number of rows."""
        geoms = np.asarray(geoms, dtype=object)
        if not len(geoms):
            return
        take = max(1, int(np.ceil(self.size * len(geoms) / max(self.total_rows, 1))))
        chosen = geoms[::max(1, len(geoms) // take)]
        vertices = int(shapely.get_num_coordinates(chosen).sum())
        chosen = chosen[::max(1, -(-vertices // VERTEX_BUDGET))]
        coords = shapely.get_coordinates(chosen)
        if not len(coords):
            return
        pick = np.unique(np.linspace(0, len(coords) - 1, min(take, len(coords))).astype(np.int64))
        self.x.append(coords[pick, 0])
        self.y.append(coords[pick, 1])

    def arrays(self) -> tuple[Array, Array]:
        if not self.x:
            return np.zeros(0), np.zeros(0)
        return np.concatenate(self.x), np.concatenate(self.y)


def _references(store: Store, box: BBox) -> dict[str, NDArray[np.object_]]:
    """Each non-empty layer's geometries around the sample, polygons as their boundaries."""
    out = {}
    for layer in store.catalogue:
        if store.count(layer) == 0:
            continue
        geoms = store.features(layer, bbox=box, limit=REFERENCE_LIMIT).geometry.to_numpy()
        if len(geoms):
            polygonal = shapely.get_dimensions(geoms) == 2
            out[layer] = np.where(polygonal, shapely.boundary(geoms), geoms)
    return out


def _median_distance(tree: shapely.STRtree, x: Array, y: Array, lon0: float, lat0: float) -> float:
    pts = to_local(cast(NDArray[np.object_], shapely.points(x, y)), lon0, lat0)
    _, dist = tree.query_nearest(pts, return_distance=True, all_matches=False)
    return float(np.median(dist))


def offset_warning(store: Store, x: Array, y: Array, source_offset: str | None) -> str | None:
    """A warning when the sample fits a reference layer of the store far better once an offset is removed."""
    if len(x) < MIN_SAMPLE:
        return None
    box = (float(x.min()) - _SEARCH_MARGIN, float(y.min()) - _SEARCH_MARGIN,
           float(x.max()) + _SEARCH_MARGIN, float(y.max()) + _SEARCH_MARGIN)
    lon0, lat0 = float(np.median(x)), float(np.median(y))
    hypotheses = {k: v for k, v in (_UNDO if source_offset else _HYPOTHESES).items()
                  if not source_offset or k == source_offset}
    moved_xy = {name: fn(x, y) for name, (_, fn) in hypotheses.items()}
    for layer, refs in _references(store, box).items():
        tree = shapely.STRtree(to_local(refs, lon0, lat0))
        as_read = _median_distance(tree, x, y, lon0, lat0)
        if as_read <= _FAR_METRES:
            continue
        for name, (label, _) in hypotheses.items():
            moved = _median_distance(tree, *moved_xy[name], lon0, lat0)
            if moved < _CLOSE_METRES and moved < 0.2 * as_read:
                hint = ("re-run without --crs gcj02/bd09 (or with the file's real CRS)" if source_offset
                        else f"re-run with --crs {name}")
                return (f"looks like {label}: as read, the features lie a median {as_read:,.0f} m from the "
                        f"store's {layer} layer, {moved:,.1f} m once corrected; {hint}")
    return None
