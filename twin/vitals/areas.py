"""The areas indicators are counted in: the committees (居委) that tile the city, each in its sub-district (街道/镇)
and district (区), with their outlines, names and sizes, and the placing of components in them.

A point counts in the committee holding it (one on a shared edge in the first of them, by key), a polygon in the
committee holding its representative point (``point_on_surface``), and a line's length is split among the
committees it crosses; a component outside every committee counts in none. A sub-district's sums are its
committees', a district's its sub-districts'.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import cast

import numpy as np
import pyproj
import shapely
from numpy.typing import NDArray
from shapely.geometry.base import BaseGeometry

from twin.store import Store
from twin.vitals.spec import LEVELS, PARENT_FIELD

_EQUAL_AREA = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:6933", always_xy=True)
_MERCATOR = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True)
_EARTH_RADIUS = 6378137.0
#: Degrees an outline may move when simplified for drawing, per level.
_DRAW_TOLERANCE = {"district": 0.001, "subdistrict": 0.0003, "committee": 0.0001}


@dataclass(frozen=True)
class AreaInfo:
    key: str
    level: str
    name: str
    parent: str | None
    km2: float


class AreaIndex:
    """The three levels of areas as the store holds them now, with a spatial index of the committees."""

    def __init__(self, store: Store) -> None:
        self.info: dict[str, AreaInfo] = {}
        self.by_level: dict[str, list[str]] = {}
        self.outlines: dict[str, shapely.Geometry] = {}
        held = set(store.catalogue)
        #: The changeset of each level's layer the areas were read at (0 when the catalogue has no such layer).
        self.versions = tuple(store.last_changeset(level) if level in held else 0 for level in LEVELS)
        for level in LEVELS:
            frame = store.features(level) if level in held else None
            keys: list[str] = []
            if frame is not None and len(frame):
                geoms = shapely.make_valid(np.asarray(frame.geometry.values, dtype=object))
                km2 = shapely.area(shapely.transform(geoms, _equal_area)) / 1e6
                parents = frame[PARENT_FIELD[level]] if level in PARENT_FIELD else [None] * len(frame)
                for key, name, parent, g, a in zip(frame["key"], frame["name"], parents, geoms, km2, strict=True):
                    self.info[key] = AreaInfo(key, level, str(name), None if parent is None else str(parent),
                                              float(a))
                    self.outlines[key] = g
                    keys.append(key)
            self.by_level[level] = sorted(keys)
        self.signature = hashlib.blake2b(repr(self.versions).encode(), digest_size=8).hexdigest()
        self.committees = self.by_level["committee"]
        self._geoms = np.array([self.outlines[k] for k in self.committees], dtype=object)
        self._tree = shapely.STRtree(self._geoms)
        self._simple: dict[str, BaseGeometry] = {}

    # -- placing components ------------------------------------------------------------------
    def place(self, geoms: NDArray[np.object_]) -> NDArray[np.int64]:
        """For each geometry, the index (in :attr:`committees`) of the committee holding its point (points) or
        representative point, -1 when none does."""
        out = np.full(len(geoms), -1, dtype=np.int64)
        if not len(geoms) or not len(self.committees):
            return out
        present = ~shapely.is_missing(geoms) & ~shapely.is_empty(geoms)
        points = np.empty(len(geoms), dtype=object)
        types = shapely.get_type_id(geoms[present])
        inner = geoms[present]
        points[present] = np.where(types == 0, inner, shapely.point_on_surface(inner))
        idx = np.flatnonzero(present)
        found, tree_idx = self._tree.query(points[idx], predicate="intersects")
        if len(found):
            order = np.lexsort((tree_idx, found))  # the first committee (lowest index = first key) per point
            found, tree_idx = found[order], tree_idx[order]
            first = np.r_[True, found[1:] != found[:-1]]
            out[idx[found[first]]] = tree_idx[first]
        return out

    def split(self, lines: NDArray[np.object_]) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
        """How the lines' lengths divide among committees: ``(line index, committee index, metres)`` per piece."""
        if not len(lines) or not len(self.committees):
            return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0)
        present = ~shapely.is_missing(lines)
        idx = np.flatnonzero(present)
        li, ci = self._tree.query(lines[idx], predicate="intersects")
        pieces = shapely.intersection(lines[idx][li], self._geoms[ci])
        return idx[li], ci.astype(np.int64), metres(pieces)

    def simplified(self, key: str) -> BaseGeometry:
        """The area's outline simplified for drawing at its level's usual zoom (kept once made)."""
        if key not in self._simple:
            self._simple[key] = cast(BaseGeometry, shapely.simplify(
                self.outlines[key], _DRAW_TOLERANCE[self.info[key].level], preserve_topology=True))
        return self._simple[key]

    # -- the hierarchy -----------------------------------------------------------------------
    def chain(self, key: str) -> list[str]:
        """``key`` and the areas above it, finest first."""
        out: list[str] = []
        k: str | None = key
        while k is not None and k in self.info:
            out.append(k)
            k = self.info[k].parent
        return out

    def level_of(self, committee: str, level: str) -> str | None:
        """The area of ``level`` a committee lies in."""
        return next((k for k in self.chain(committee) if self.info[k].level == level), None)


def _equal_area(coords: NDArray[np.float64]) -> NDArray[np.float64]:
    x, y = _EQUAL_AREA.transform(coords[:, 0], coords[:, 1])
    return np.column_stack([x, y])


def _mercator(coords: NDArray[np.float64]) -> NDArray[np.float64]:
    x, y = _MERCATOR.transform(coords[:, 0], coords[:, 1])
    return np.column_stack([x, y])


def metres(lines: NDArray[np.object_]) -> NDArray[np.float64]:
    """Lengths of lon/lat lines in metres (Web Mercator, corrected by its scale at each line's middle latitude)."""
    if not len(lines):
        return np.empty(0)
    merc = shapely.transform(lines, _mercator)
    y = shapely.get_y(shapely.centroid(merc))
    scale = 1.0 / np.cosh(np.nan_to_num(y) / _EARTH_RADIUS)
    return np.asarray(shapely.length(merc) * scale, dtype=np.float64)
