"""An area a user can be scoped to (a district, sub-district or committee outline), with what every read path
needs to restrict itself quickly: the outline (lon/lat; prepared once per thread for tests of many geometries:
GEOS prepared geometries must not be shared between threads, libgeos/geos#825), its envelope, its WKB, and a
few boxes wholly inside it, so that most candidates are accepted without testing their geometry.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

Box = tuple[float, float, float, float]
#: The outline is cut into this many cells a side to find boxes wholly inside it.
_GRID = 16
#: At most this many inner boxes go into a query.
_MAX_INNER = 24
#: Testing more geometries than this against the outline pays for preparing it (once per thread; with many
#: areas and request threads, preparations are rarely reused, so only large batches pay for one).
_PREPARE_ABOVE = 512


@dataclass(frozen=True, eq=False)
class Area:
    """One area: its key, layer and name, outline and the shortcuts derived from it."""

    key: str
    layer: str
    name: str
    geometry: BaseGeometry
    bounds: Box = field(init=False)
    wkb: bytes = field(init=False)
    inner: tuple[Box, ...] = field(init=False)
    _local: threading.local = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "bounds", tuple(float(v) for v in self.geometry.bounds))
        object.__setattr__(self, "wkb", shapely.to_wkb(self.geometry))
        object.__setattr__(self, "inner", inner_boxes(self.geometry))
        object.__setattr__(self, "_local", threading.local())

    def prepared(self) -> BaseGeometry:
        """The outline, prepared for the calling thread."""
        geom = getattr(self._local, "geom", None)
        if geom is None:
            geom = self._local.geom = shapely.from_wkb(self.wkb)
            shapely.prepare(geom)
        return geom

    def covers_box(self, box: Box) -> bool:
        """Whether the whole of ``box`` lies inside the area (so nothing in it needs testing)."""
        return bool(shapely.covers(self.geometry, shapely.box(*box)))

    def meets_box(self, box: Box) -> bool:
        return bool(shapely.intersects(self.geometry, shapely.box(*box)))

    def meets(self, geoms: np.ndarray) -> np.ndarray:
        """For each geometry, whether it intersects the area (through the prepared outline for many)."""
        outline = self.prepared() if len(geoms) > _PREPARE_ABOVE else self.geometry
        return shapely.intersects(outline, geoms)


def inner_boxes(geom: BaseGeometry) -> tuple[Box, ...]:
    """Up to :data:`_MAX_INNER` large, disjoint boxes wholly inside ``geom``: grid cells inside it, merged along
    rows, then runs spanning the same columns merged down the rows; the largest first."""
    minx, miny, maxx, maxy = geom.bounds
    if maxx <= minx or maxy <= miny:
        return ()
    xs, ys = np.linspace(minx, maxx, _GRID + 1), np.linspace(miny, maxy, _GRID + 1)
    cells = shapely.box(xs[:-1][None, :], ys[:-1][:, None], xs[1:][None, :], ys[1:][:, None])
    inside = shapely.contains_properly(geom, cells)
    runs: list[Box] = []
    for j in range(_GRID):
        i = 0
        while i < _GRID:
            if not inside[j, i]:
                i += 1
                continue
            start = i
            while i < _GRID and inside[j, i]:
                i += 1
            runs.append((float(xs[start]), float(ys[j]), float(xs[i]), float(ys[j + 1])))
    merged: list[Box] = []
    for box in runs:  # rows come in order, so a run continues the one above it when the columns match
        above = next((k for k, m in enumerate(merged) if m[0] == box[0] and m[2] == box[2] and m[3] == box[1]),
                     None)
        if above is None:
            merged.append(box)
        else:
            m = merged[above]
            merged[above] = (m[0], m[1], m[2], box[3])
    runs = merged
    runs.sort(key=lambda b: (b[2] - b[0]) * (b[3] - b[1]), reverse=True)
    return tuple(runs[:_MAX_INNER])
