"""Sanity checks on where an import lands: the city extent, and the GCJ-02 / BD-09 offset test.

The offset test compares the file with what the store already holds. It takes a sample of the
imported coordinates and measures, in metres, the median distance to the nearest reference geometry
(district and other boundaries, road-like lines, the layer's own components) three ways: as read, and
as if the coordinates had really been GCJ-02 or BD-09. Data digitised on an Amap or Baidu basemap but
labelled WGS84 sits ~500 m (GCJ-02) or ~1.1 km (BD-09) off every reference and falls onto them once
the offset is removed; unrelated data (hydrants inside district polygons) moves no closer either way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

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
    """A bounded, evenly spread sample of imported lon/lat coordinates, filled chunk by chunk."""

    total_rows: int
    size: int = SAMPLE_SIZE

    def __post_init__(self) -> None:
        self.x: list[Array] = []
        self.y: list[Array] = []

    def add(self, geoms: NDArray[np.object_]) -> None:
        """Keep a share of this chunk's representative coordinates proportional to its size."""
        if not len(geoms):
            return
        take = max(1, int(np.ceil(self.size * len(geoms) / max(self.total_rows, 1))))
        step = max(1, len(geoms) // take)
        pts = shapely.point_on_surface(np.asarray(geoms, dtype=object)[::step])
        self.x.append(shapely.get_x(pts))
        self.y.append(shapely.get_y(pts))

    def arrays(self) -> tuple[Array, Array]:
        if not self.x:
            return np.zeros(0), np.zeros(0)
        return np.concatenate(self.x), np.concatenate(self.y)


def _references(store: Store, box: BBox) -> NDArray[np.object_]:
    parts = []
    for layer in store.catalogue:
        if store.count(layer) == 0:
            continue
        geoms = store.features(layer, bbox=box, limit=REFERENCE_LIMIT).geometry.to_numpy()
        if len(geoms):
            polygonal = shapely.get_dimensions(geoms) == 2
            geoms = np.where(polygonal, shapely.boundary(geoms), geoms)
            parts.append(geoms)
    return np.concatenate(parts) if parts else np.zeros(0, dtype=object)


def _median_distance(tree: shapely.STRtree, x: Array, y: Array, lon0: float, lat0: float) -> float:
    pts = to_local(shapely.points(x, y), lon0, lat0)
    _, dist = tree.query_nearest(pts, return_distance=True, all_matches=False)
    return float(np.median(dist))


def offset_warning(store: Store, x: Array, y: Array, source_offset: str | None) -> str | None:
    """A warning when the sample fits the store's reference layers far better once an offset is removed."""
    if len(x) < MIN_SAMPLE:
        return None
    box = (float(x.min()) - _SEARCH_MARGIN, float(y.min()) - _SEARCH_MARGIN,
           float(x.max()) + _SEARCH_MARGIN, float(y.max()) + _SEARCH_MARGIN)
    refs = _references(store, box)
    if not len(refs):
        return None
    lon0, lat0 = float(np.median(x)), float(np.median(y))
    tree = shapely.STRtree(to_local(refs, lon0, lat0))
    as_read = _median_distance(tree, x, y, lon0, lat0)
    hypotheses = _UNDO if source_offset else _HYPOTHESES
    for name, (label, fn) in hypotheses.items():
        if source_offset and name != source_offset:
            continue
        moved = _median_distance(tree, *fn(x, y), lon0, lat0)
        if moved < _CLOSE_METRES and moved < 0.2 * as_read and as_read > _FAR_METRES:
            hint = ("re-run without --crs gcj02/bd09 (or with the file's real CRS)" if source_offset
                    else f"re-run with --crs {name}")
            return (f"looks like {label}: as read, the features lie a median {as_read:,.0f} m from the store's "
                    f"reference layers, {moved:,.1f} m once corrected; {hint}")
    return None
