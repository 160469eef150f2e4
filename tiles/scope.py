"""An area in tile terms: which components a scoped user sees in a tile, and where each counts in aggregates.

A scoped user sees the components that intersect their area, decided exactly as the features API decides
it (shapely ``intersects`` with the area's lon/lat outline). In aggregate cells each of them counts once:

- at its representative point, where the unscoped aggregates count it, when that point lies in the area;
- otherwise at a point of its part inside the area (a pipe entering the area from outside, say).

So the scoped counts of all tiles of a zoom add up to the features API's ``numberMatched``, and a cell
wholly inside the area holds exactly its precomputed counts plus what is counted there from outside.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import lru_cache
from typing import cast

import numpy as np
import shapely
from numpy.typing import NDArray
from shapely import Geometry

from tiles.aggregate import representative
from tiles.grid import cell_bounds, cell_index, lonlat_boxes, to_mercator, xy_to_lonlat, xy_to_mercator
from twin.access import Area

Box = tuple[float, float, float, float]
#: Outline vertices per rim box: small boxes hug the boundary, so few components straddle one needlessly.
_RIM_VERTICES = 8


def meeting_both(a: Box, b: Box) -> Box:
    """R-tree bounds for envelopes meeting both ``a`` and ``b`` (``minx <= [2], maxx >= [0]``, ...).

    The result may be inverted (min above max): an envelope must then span from one box to the other.
    """
    return max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])


@dataclass(frozen=True)
class Placement:
    """For each component: whether the user sees it, whether its representative point is in the area,
    the Web Mercator point it is counted at, and its measure (m or m²)."""

    seen: NDArray[np.bool_]
    at_rep: NDArray[np.bool_]
    x: NDArray[np.float64]
    y: NDArray[np.float64]
    measure: NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class Scope:
    """An area with what tiles need of it: its outline (lon/lat, and Web Mercator for clipping shapes) and
    boxes covering its boundary.

    GEOS prepared geometries are not safe to share between threads (libgeos/geos#825), so each thread
    prepares its own copy of the outlines.
    """

    area: Area
    merc_wkb: bytes
    rims: tuple[Box, ...]
    _local: threading.local = field(default_factory=threading.local, repr=False)

    def _prepared(self, name: str, wkb: bytes) -> Geometry:
        geom = getattr(self._local, name, None)
        if geom is None:
            geom = shapely.from_wkb(wkb)
            shapely.prepare(geom)
            setattr(self._local, name, geom)
        return geom

    @property
    def outline(self) -> Geometry:
        """The area's lon/lat outline, prepared for this thread."""
        return self._prepared("outline", self.area.wkb)

    @property
    def merc(self) -> Geometry:
        """The area's outline in Web Mercator, prepared for this thread."""
        return self._prepared("merc", self.merc_wkb)

    def meets(self, box: Box) -> bool:
        return bool(shapely.intersects(self.outline, shapely.box(*box)))

    def covers(self, box: Box) -> bool:
        return bool(shapely.covers(self.outline, shapely.box(*box)))

    def sees(self, geoms: NDArray[np.object_]) -> NDArray[np.bool_]:
        """Which lon/lat geometries the user sees (those intersecting the area)."""
        return shapely.intersects(self.outline, geoms)

    def classify(self, cx: NDArray[np.int64], cy: NDArray[np.int64],
                 level: int) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
        """For cells of ``level``: whether the area covers each, and whether it meets each."""
        boxes = lonlat_boxes(cell_bounds(cx, cy, level))
        cells = shapely.box(boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3])
        outline = self.outline
        return shapely.covers(outline, cells), shapely.intersects(outline, cells)

    def place(self, geoms: NDArray[np.object_], kind: str, fine: int, merc: NDArray[np.object_] | None = None
              ) -> Placement:
        """Where each component (lon/lat ``geoms``; ``merc``, the same in Web Mercator, is computed when not
        given) counts for this area.

        A representative point in a cell of level ``fine`` that the area covers counts as inside, as the
        precomputed counts of that cell hold the component.
        """
        if len(geoms) and (shapely.get_type_id(geoms) == 0).all():  # a point is its own representative point
            lon, lat = shapely.get_x(geoms), shapely.get_y(geoms)
            seen = shapely.intersects_xy(self.outline, lon, lat)
            return Placement(seen, seen.copy(), *xy_to_mercator(lon, lat), np.zeros(len(geoms)))
        seen = self.sees(geoms)
        x, y, measure = representative(to_mercator(geoms) if merc is None else merc, kind)
        lon, lat = xy_to_lonlat(x, y)
        at_rep = seen & shapely.intersects_xy(self.outline, lon, lat)
        out = np.flatnonzero(seen & ~at_rep)
        if len(out):
            covered, _ = self.classify(*cell_index(x[out], y[out], fine), fine)
            at_rep[out[covered]] = True
            movers = out[~covered]
            if len(movers):
                x[movers], y[movers] = self._inside_points(geoms[movers])
        return Placement(seen, at_rep, x, y, measure)

    def _inside_points(self, geoms: NDArray[np.object_]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """A point of each geometry's part inside the area (Web Mercator)."""
        outline = self.outline
        points = shapely.point_on_surface(shapely.intersection(geoms, outline))
        lost = shapely.is_empty(points) | shapely.is_missing(points)
        if lost.any():  # intersects, yet the overlay found nothing (a touch): the area's nearest point
            points[lost] = shapely.get_point(shapely.shortest_line(outline, geoms[lost]), 0)
        return xy_to_mercator(shapely.get_x(points), shapely.get_y(points))

    def clip(self, shapes: list[tuple[int, int, bytes]], level: int, lines: bool) -> list[tuple[int, int, bytes]]:
        """Cell shapes ``(cx, cy, wkb)`` of ``level`` cut to the area: kept in covered cells, cut on the edge."""
        if not shapes:
            return []
        cx = np.array([s[0] for s in shapes], dtype=np.int64)
        cy = np.array([s[1] for s in shapes], dtype=np.int64)
        covered, meets = self.classify(cx, cy, level)
        out = [s for s, c in zip(shapes, covered.tolist(), strict=True) if c]
        edge = np.flatnonzero(meets & ~covered)
        if len(edge):
            cut = shapely.intersection(shapely.from_wkb([shapes[i][2] for i in edge]), self.merc)
            for i, g in zip(edge.tolist(), cut.tolist(), strict=True):
                kept = _of_kind(g, lines)
                if kept is not None:
                    out.append((shapes[i][0], shapes[i][1], shapely.to_wkb(kept)))
        return out


def _of_kind(geom: Geometry, lines: bool) -> Geometry | None:
    """The lines (or polygons) of ``geom``; ``None`` when it has none."""
    parts = shapely.get_parts(geom)
    parts = parts[shapely.get_dimensions(parts) == (1 if lines else 2)]
    if not len(parts):
        return None
    # one multi-part geometry of all ``parts``: the stubs cannot tell it from an array of them
    return cast(Geometry, shapely.multilinestrings(parts) if lines else shapely.multipolygons(parts))


def rim_boxes(geom: Geometry) -> tuple[Box, ...]:
    """Small lon/lat boxes that together cover the boundary of ``geom`` (runs of its rings' vertices)."""
    boxes: list[Box] = []
    parts = shapely.get_parts(geom)
    polygons = shapely.get_dimensions(parts) == 2
    for line in [*shapely.get_rings(parts[polygons]).tolist(), *parts[~polygons].tolist()]:
        xy = shapely.get_coordinates(line)
        for start in range(0, max(len(xy) - 1, 1), _RIM_VERTICES):
            run = xy[start:start + _RIM_VERTICES + 1]
            lo, hi = run.min(axis=0), run.max(axis=0)
            boxes.append((float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])))
    return tuple(boxes)


@lru_cache(maxsize=1024)
def scope_of(area: Area) -> Scope:
    """The :class:`Scope` of an area (one per area object the resolver hands out)."""
    outline = shapely.from_wkb(area.wkb)
    merc = shapely.make_valid(to_mercator(np.array([outline], dtype=object))[0])
    return Scope(area, shapely.to_wkb(merc), rim_boxes(outline))
