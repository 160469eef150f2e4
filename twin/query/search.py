"""Searches beyond one page of one layer: nearest-k, search across every layer, look-up by key.

:class:`QueryService` is what the HTTP layer holds, one per app: the store (for counts and
writes), a :class:`~twin.query.sqlread.Reader` for lean reads and one live index for nearest-k.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import shapely
from pygeofilter import ast, values

from twin.crs import TwinCRS
from twin.errors import FeatureNotFoundError, InvalidQueryError
from twin.index import LiveIndex
from twin.query.crs import CRS84, geoms_to_lonlat
from twin.query.filters import compile_filter
from twin.query.model import MAX_LIMIT, FeatureQuery, Near
from twin.query.sqlread import Reader, Rows
from twin.store.geopackage import GeoPackageStore

MAX_K = 1000
MAX_RADIUS = 50_000.0
MAX_SEARCH_DISTANCE = 5_000.0


@dataclass(frozen=True)
class Page:
    """One page of a layer query and how many features match in all."""

    rows: Rows
    matched: int
    exact: bool


class QueryService:
    """Everything the query API reads, built once per app."""

    def __init__(self, store: GeoPackageStore, *, budget_s: float = 2.0) -> None:
        self.store = store
        self.catalogue = store.catalogue
        self.reader = Reader(store.path, store.catalogue, budget_s=budget_s)
        self.index = LiveIndex(store)

    def close(self) -> None:
        self.reader.close()

    def page(self, query: FeatureQuery) -> Page:
        """Rows of one page, with ``numberMatched`` counted only when the page does not already tell it."""
        rows = self.reader.select(query)
        n = len(rows.rows)
        if n < query.limit and (n > 0 or query.offset == 0):
            return Page(rows, query.offset + n, True)
        matched, exact = self.reader.count(query, self.reader.layer_count(query.layer))
        return Page(rows, matched, exact)

    def item(self, layer: str, key: str) -> Rows:
        rows = self.reader.by_key(self.catalogue[layer], key)
        if not rows.rows:
            raise FeatureNotFoundError(key)
        return rows

    def layer_of(self, key: str) -> str:
        """The layer of an existing component (404 for a malformed, unknown or deleted key)."""
        layer = self.store.layer_of(key)
        self.item(layer, key)
        return layer

    def nearest(self, layer: str, lon: float, lat: float, k: int) -> tuple[Rows, list[dict[str, object]]]:
        """The ``k`` components nearest to (lon, lat), nearest first, with ``distance_m`` and ``rank``."""
        if not 1 <= k <= MAX_K:
            raise InvalidQueryError(f"k must be between 1 and {MAX_K}, not {k}")
        hits = self.index.nearest(self.catalogue[layer].id, lon, lat, k)
        rows = self.reader.by_fids(self.catalogue[layer], hits.fids.tolist())
        extra = [{"distance_m": round(float(d), 3), "rank": i + 1} for i, d in enumerate(hits.distances)]
        return rows, extra[: len(rows.rows)]

    def search(self, *, geometry: shapely.Geometry | None = None, distance: float = 0.0, near: Near | None = None,
               layers: list[str] | None = None, limit: int = 100) -> tuple[list[Rows], bool]:
        """Components of every layer meeting ``geometry`` (or within ``distance`` metres of it), or near a point.

        Returns the rows per layer and whether the ``limit`` cut the answer short.
        """
        if (geometry is None) == (near is None):
            raise InvalidQueryError("search needs either intersects=<geometry> or near=lon,lat with radius")
        if not 0 <= distance <= MAX_SEARCH_DISTANCE:
            raise InvalidQueryError(f"distance must be 0 to {MAX_SEARCH_DISTANCE:g} metres, not {distance}")
        names = [self.catalogue[name].id for name in layers] if layers else list(self.catalogue)
        base = FeatureQuery(layer=names[0], near=near, limit=min(limit, MAX_LIMIT))
        if geometry is not None:
            literal = values.Geometry(shapely.geometry.mapping(geometry))
            attr = ast.Attribute("geometry")
            node = ast.DistanceWithin(attr, literal, distance, "meters") if distance > 0 else \
                ast.GeometryIntersects(attr, literal)
        found: list[Rows] = []
        remaining = base.limit
        for name in names:
            query = replace(base, layer=name, limit=remaining + 1)
            if geometry is not None:
                compiled = compile_filter(node, self.catalogue[name], CRS84)
                query = replace(query, where=compiled.where, params=tuple(compiled.params),
                                envelopes=tuple(compiled.envelopes))
            rows = self.reader.select(query)
            if len(rows.rows) > remaining:
                found.append(replace(rows, rows=rows.rows[:remaining]))
                return found, True
            found.append(rows)
            remaining -= len(rows.rows)
            if remaining == 0:
                return found, name != names[-1]
        return found, False


def parse_geometry(text: str, crs: TwinCRS, *, name: str = "intersects") -> shapely.Geometry:
    """A WKT or GeoJSON geometry written in ``crs``, as lon/lat."""
    raw = str(text).strip()
    if len(raw) > 200_000:
        raise InvalidQueryError(f"{name} is too long ({len(raw)} characters)")
    try:
        geom = shapely.from_geojson(raw) if raw.startswith("{") else shapely.from_wkt(raw)
    except shapely.errors.ShapelyError as exc:
        raise InvalidQueryError(f"{name} is neither WKT nor GeoJSON: {str(exc)[:200]}") from None
    if geom is None or geom.is_empty:
        raise InvalidQueryError(f"{name} is an empty geometry")
    out = geoms_to_lonlat(np.array([geom], dtype=object), crs)[0]
    bounds = shapely.bounds(out)
    if not np.isfinite(bounds).all() or bounds[0] < -180 or bounds[2] > 180 or bounds[1] < -90 or bounds[3] > 90:
        raise InvalidQueryError(f"{name} lies outside lon/lat range once converted from {crs.name}")
    return out if out.is_valid else shapely.make_valid(out)
