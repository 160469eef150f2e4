"""What the query API reads: pages of a layer, nearest-k, search across every layer, look-up by key.

:class:`QueryService` is what the HTTP layer holds, one per app. It reads through the store's contract only
(one :meth:`~twin.store.base.Store.read` snapshot per answer), whatever engine is behind it.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass, replace

import numpy as np
import shapely
from pygeofilter import ast, values
from shapely.geometry.base import BaseGeometry

from twin.access.principal import Principal
from twin.crs import TwinCRS
from twin.errors import FeatureNotFoundError, InvalidQueryError, OutOfScopeError
from twin.geodesy import distance_to_point
from twin.model.area import Area
from twin.model.query import MAX_LIMIT, FeatureQuery, Near
from twin.model.rows import Rows
from twin.query.area_points import AreaPoints
from twin.query.cql_checks import nesting
from twin.query.crs import CRS84, geoms_to_lonlat
from twin.query.filters import check_filter
from twin.store import Snapshot, Store

MAX_K = 1000
MAX_RADIUS = 50_000.0
MAX_SEARCH_DISTANCE = 5_000.0
#: Brackets a geometry given to /search may nest (a multipolygon needs 3; collections of them a few more).
MAX_GEOMETRY_NESTING = 32
#: Scoped nearest-k looks at most this many city-wide nearest before searching the area by radius.
_NEAREST_WIDEST = 4096
#: Farther than any two points of the earth are apart (m).
_WHOLE_EARTH_M = 2.1e7


@dataclass(frozen=True)
class Page:
    """One page of a layer query and how many features match in all."""

    rows: Rows
    matched: int
    exact: bool


class QueryService:
    """Everything the query API reads, built once per app."""

    def __init__(self, store: Store, *, budget_s: float = 2.0) -> None:
        self.store = store
        self.catalogue = store.catalogue
        self.budget_s = budget_s
        self.area_points = AreaPoints(store)

    def read(self) -> AbstractContextManager[Snapshot]:
        """One snapshot of the store under the query budget."""
        return self.store.read(self.budget_s)

    def page(self, query: FeatureQuery) -> Page:
        """Rows of one page, with ``numberMatched`` counted only when the page does not already tell it."""
        with self.read() as snap:
            rows = snap.select(query)
            n = len(rows.rows)
            if n < query.limit and (n > 0 or query.offset == 0):
                return Page(rows, query.offset + n, True)
            matched, exact = snap.count(query)
            return Page(rows, matched, exact)

    def item(self, layer: str, key: str, who: Principal | None = None) -> Rows:
        """One component by key; outside ``who``'s area it does not exist (:class:`OutOfScopeError`, a 404)."""
        return self.versioned_item(layer, key, who, version=False)[0]

    def versioned_item(self, layer: str, key: str, who: Principal | None = None, *, version: bool = True
                       ) -> tuple[Rows, int | None]:
        """:meth:`item` and its current version (its ``ETag``), read together."""
        spec = self.catalogue[layer]
        with self.read() as snap:
            rows = snap.by_keys(spec.id, [key], who.unmasked(spec) if who else frozenset())
            current = snap.versions(spec.id, [key]).get(key) if version and rows.rows else None
        if not rows.rows:
            raise FeatureNotFoundError(key)
        if who is not None and who.area is not None and not in_area(rows, who)[0]:
            raise OutOfScopeError(key)
        return rows, current

    def layer_of(self, key: str, who: Principal | None = None) -> str:
        """The layer of an existing component (404 for a malformed, unknown, deleted or out-of-area key)."""
        layer = self.store.layer_of(key)
        if who is not None:
            who.check_read(layer)
        self.item(layer, key, who)
        return layer

    def nearest(self, layer: str, lon: float, lat: float, k: int, who: Principal | None = None,
                as_of: str | None = None) -> tuple[Rows, list[dict[str, object]]]:
        """The ``k`` components nearest to (lon, lat), nearest first, with ``distance_m`` and ``rank``; as they
        were at ``as_of`` (a store time) when given.

        For a user with an area, the nearest ``k`` inside it (exact; see :meth:`_nearest_in_area`).
        """
        if not 1 <= k <= MAX_K:
            raise InvalidQueryError(f"k must be between 1 and {MAX_K}, not {k}")
        spec = self.catalogue[layer]
        unmasked = who.unmasked(spec) if who else frozenset()
        area = who.area if who is not None else None
        with self.read() as snap:
            if as_of is not None:
                base = FeatureQuery(layer=spec.id, limit=k, scope=area, unmasked=unmasked, as_of=as_of)
                return self._nearest_by_radius(snap, base, lon, lat, 0.0, _reach(lon, lat, area))
            if who is not None and area is not None:
                return self._nearest_in_area(snap, spec.id, lon, lat, k, who, unmasked)
            hits = snap.nearest(spec.id, lon, lat, k)
            rows = snap.by_fids(spec.id, hits.fids.tolist(), unmasked)
        extra: list[dict[str, object]] = [{"distance_m": round(float(d), 3), "rank": i + 1}
                                          for i, d in enumerate(hits.distances)]
        return rows, extra[: len(rows.rows)]

    def _nearest_in_area(self, snap: Snapshot, layer: str, lon: float, lat: float, k: int, who: Principal,
                         unmasked: frozenset[str]) -> tuple[Rows, list[dict[str, object]]]:
        """The ``k`` nearest inside ``who``'s area: for a point layer with few components in the area, all of them
        ranked (:class:`AreaPoints`, kept in memory); otherwise the first ``k`` in the area among the city-wide nearest
        ``m`` (exact, since everything beyond those ``m`` is farther), with ``m`` from ``k`` growing fourfold up
        to :data:`_NEAREST_WIDEST`; past that (a point far from the area), radius searches in the area."""
        assert who.area is not None
        ranked = self.area_points.nearest(snap, who.area, layer, lon, lat, k)
        if ranked is not None:
            rows = snap.by_fids(layer, ranked[0].tolist(), unmasked)
            distance = dict(zip(ranked[0].tolist(), ranked[1].tolist(), strict=True))
            extra = [{"distance_m": round(distance[r[0]], 3), "rank": i + 1} for i, r in enumerate(rows.rows)]
            return rows, extra
        total = snap.layer_count(layer)
        m = min(k, _NEAREST_WIDEST)
        while True:
            hits = snap.nearest(layer, lon, lat, m)
            rows = snap.by_fids(layer, hits.fids.tolist(), unmasked)
            distance = dict(zip(hits.fids.tolist(), hits.distances.tolist(), strict=True))
            chosen = [r for r, ok in zip(rows.rows, in_area(rows, who), strict=True) if ok][:k]
            if len(chosen) == k or len(hits.fids) < m or m >= total:
                extra = [{"distance_m": round(distance[r[0]], 3), "rank": i + 1} for i, r in enumerate(chosen)]
                return rows.take(chosen), extra
            if m >= _NEAREST_WIDEST:
                base = FeatureQuery(layer=layer, limit=k, scope=who.area, unmasked=unmasked)
                return self._nearest_by_radius(snap, base, lon, lat, float(hits.distances[-1]),
                                               _reach(lon, lat, who.area))
            m = min(m * 4, _NEAREST_WIDEST)

    @staticmethod
    def _nearest_by_radius(snap: Snapshot, base: FeatureQuery, lon: float, lat: float, start_m: float,
                           reach: float) -> tuple[Rows, list[dict[str, object]]]:
        """The ``base.limit`` nearest matching ``base`` (its area, its moment), by radius searches: the radius grows
        fourfold from ``start_m`` until it holds enough (or reaches ``reach``), then narrows, halving the gap, while
        it holds more than :data:`_NEAREST_WIDEST` (the counts are capped, so each costs at most that many rows).
        What lies within the radius is then exactly the nearest, in order (distance, then id, as the index breaks
        ties)."""
        k = base.limit

        def holds(radius: float) -> tuple[int, bool]:
            return snap.count(replace(base, near=Near(lon, lat, radius)), cap=_NEAREST_WIDEST)

        low, radius = 0.0, min(max(start_m, 50.0), reach)
        while (n := holds(radius))[0] < k and radius < reach:
            low, radius = radius, min(radius * 4, reach)
        while not n[1] and radius - low > 0.01:  # too many within: narrow down, keeping at least k
            middle = (low + radius) / 2
            if (m := holds(middle))[0] >= k:
                radius, n = middle, m
            else:
                low = middle
        rows = snap.select(replace(base, near=Near(lon, lat, radius)))
        d = rows.columns.index("distance_m")
        extra: list[dict[str, object]] = [{"distance_m": round(float(r[d]), 3), "rank": i + 1}
                                          for i, r in enumerate(rows.rows)]
        plain = Rows(rows.spec, rows.columns[:-1], [r[:-1] for r in rows.rows], base.unmasked, rows.codec)
        return plain, extra

    def search(self, *, geometry: BaseGeometry | None = None, distance: float = 0.0, near: Near | None = None,
               layers: list[str] | None = None, limit: int = 100, who: Principal | None = None,
               as_of: str | None = None) -> tuple[list[Rows], bool]:
        """Components of every layer meeting ``geometry`` (or within ``distance`` metres of it), or near a point;
        as they were at ``as_of`` (a store time) when given.

        Only layers ``who`` may read, within their area. Returns the rows per layer and whether the
        ``limit`` cut the answer short.
        """
        if (geometry is None) == (near is None):
            raise InvalidQueryError("search needs either intersects=<geometry> or near=lon,lat with radius")
        if not 0 <= distance <= MAX_SEARCH_DISTANCE:
            raise InvalidQueryError(f"distance must be 0 to {MAX_SEARCH_DISTANCE:g} metres, not {distance}")
        names = [self.catalogue[name].id for name in layers] if layers else list(self.catalogue)
        if who is not None:
            if layers:
                for name in names:
                    who.check_read(name)
            names = who.check_read_any(names)
        base = FeatureQuery(layer=names[0], near=near, limit=min(limit, MAX_LIMIT),
                            scope=who.area if who else None, as_of=as_of)
        if geometry is not None:
            literal = values.Geometry(shapely.geometry.mapping(geometry))
            attr = ast.Attribute("geometry")
            node = ast.DistanceWithin(attr, literal, distance, "meters") if distance > 0 else \
                ast.GeometryIntersects(attr, literal)
        found: list[Rows] = []
        remaining = base.limit
        with self.read() as snap:
            for name in names:
                spec = self.catalogue[name]
                query = replace(base, layer=name, limit=remaining + 1,
                                unmasked=who.unmasked(spec) if who else frozenset())
                if geometry is not None:
                    query = replace(query, filter=check_filter(node, spec, CRS84))
                rows = snap.select(query)
                if len(rows.rows) > remaining:
                    found.append(rows.take(rows.rows[:remaining]))
                    return found, True
                found.append(rows)
                remaining -= len(rows.rows)
                if remaining == 0:
                    return found, name != names[-1]
        return found, False


def _reach(lon: float, lat: float, area: Area | None) -> float:
    """A radius (m) around (lon, lat) that holds all of ``area`` (the whole earth without one)."""
    if area is None:
        return _WHOLE_EARTH_M
    minx, miny, maxx, maxy = area.bounds
    corners = shapely.points([minx, minx, maxx, maxx], [miny, maxy, miny, maxy])
    return float(max(distance_to_point(corners, lon, lat))) + 1.0


def in_area(rows: Rows, who: Principal) -> np.ndarray:
    """For each row, whether its geometry meets ``who``'s area (all true without an area)."""
    if who.area is None:
        return np.ones(len(rows.rows), dtype=bool)
    return who.area.meets(rows.geometries())


def parse_geometry(text: str, crs: TwinCRS, *, name: str = "intersects") -> BaseGeometry:
    """A WKT or GeoJSON geometry written in ``crs``, as lon/lat."""
    raw = str(text).strip()
    if len(raw) > 200_000:
        raise InvalidQueryError(f"{name} is too long ({len(raw)} characters)")
    if nesting(raw) > MAX_GEOMETRY_NESTING:  # GEOS reads nested collections recursively, and can crash on them
        raise InvalidQueryError(f"{name} nests brackets more than {MAX_GEOMETRY_NESTING} levels deep")
    try:
        geom = shapely.from_geojson(raw) if raw.startswith("{") else shapely.from_wkt(raw)
    except (shapely.errors.ShapelyError, ValueError) as exc:  # ValueError: a GEOS message cut mid-character
        raise InvalidQueryError(f"{name} is neither WKT nor GeoJSON: {str(exc)[:200]}") from None
    if geom is None or geom.is_empty:
        raise InvalidQueryError(f"{name} is an empty geometry")
    out: BaseGeometry = geoms_to_lonlat(np.array([geom], dtype=object), crs)[0]
    bounds = shapely.bounds(out)
    if not np.isfinite(bounds).all() or bounds[0] < -180 or bounds[2] > 180 or bounds[1] < -90 or bounds[3] > 90:
        raise InvalidQueryError(f"{name} lies outside lon/lat range once converted from {crs.name}")
    return out if out.is_valid else shapely.make_valid(out)
