"""SQLite functions that evaluate spatial predicates exactly, with shapely, inside a query.

Doing the exact test in SQL (not after fetching) keeps ``LIMIT``/``OFFSET`` paging and
``numberMatched`` correct, and lets spatial predicates sit anywhere in a CQL2 expression (under
``OR`` or ``NOT``). The query geometry arrives as a bound WKB parameter and is parsed and
prepared once per distinct value, not once per row.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from typing import TypeVar

import numpy as np
import shapely
from shapely import Geometry

from twin.geodesy import distance_to_point, to_local
from twin.store.gpkg.blob import decode

#: For each CQL2 predicate ``op(feature, query)``, the same test with the prepared query geometry first.
_PREPARED_FIRST = {
    "intersects": shapely.intersects, "within": shapely.contains, "contains": shapely.within,
    "disjoint": shapely.disjoint, "touches": shapely.touches, "crosses": shapely.crosses,
    "overlaps": shapely.overlaps, "equals": shapely.equals,
}
PREDICATES = frozenset(_PREPARED_FIRST)


T = TypeVar("T")
#: GEOS prepared geometries must not be shared between threads (libgeos/geos#825): each thread keeps its own.
_THREAD = threading.local()


def _per_thread(build: Callable[[bytes], T]) -> Callable[[bytes], T]:
    """``build(wkb)`` cached per thread (up to 128 geometries each)."""
    name = build.__name__

    def cached(wkb: bytes) -> T:
        cache: dict[bytes, T] = _THREAD.__dict__.setdefault(name, {})
        value = cache.get(wkb)
        if value is None:
            if len(cache) >= 128:
                cache.clear()
            value = cache[wkb] = build(wkb)
        return value

    return cached


@_per_thread
def _query_geometry(wkb: bytes) -> Geometry:
    geom = shapely.from_wkb(wkb)
    shapely.prepare(geom)
    return geom


@_per_thread
def _local_query(wkb: bytes) -> tuple[Geometry, float, float]:
    """The query geometry in metres around its centroid, with that centroid."""
    geom = shapely.from_wkb(wkb)
    c = geom.centroid
    local = to_local(np.array([geom], dtype=object), c.x, c.y)[0]
    shapely.prepare(local)
    return local, c.x, c.y


def _feature(blob: bytes | None) -> Geometry | None:
    return None if blob is None else decode([blob])[0]


def _pred(op: str, blob: bytes | None, wkb: bytes) -> int | None:
    geom = _feature(blob)
    if geom is None:
        return None
    return int(_PREPARED_FIRST[op](_query_geometry(wkb), geom))


def _dwithin(blob: bytes | None, wkb: bytes, metres: float) -> int | None:
    geom = _feature(blob)
    if geom is None:
        return None
    local, lon0, lat0 = _local_query(wkb)
    feature = to_local(np.array([geom], dtype=object), lon0, lat0)[0]
    return int(shapely.dwithin(local, feature, metres))


def _distance(blob: bytes | None, lon: float, lat: float) -> float | None:
    geom = _feature(blob)
    if geom is None:
        return None
    return float(distance_to_point(np.array([geom], dtype=object), lon, lat)[0])


def register(conn: sqlite3.Connection) -> None:
    """Add ``twin_pred(op, geom, wkb)``, ``twin_dwithin(geom, wkb, metres)`` and ``twin_distance(geom, lon, lat)``."""
    conn.create_function("twin_pred", 3, _pred, deterministic=True)
    conn.create_function("twin_dwithin", 3, _dwithin, deterministic=True)
    conn.create_function("twin_distance", 3, _distance, deterministic=True)


def setup_reader(conn: sqlite3.Connection) -> None:
    """Prepare a read connection for CQL2 filters: twin's SQL functions and case-sensitive LIKE."""
    register(conn)
    conn.execute("PRAGMA case_sensitive_like = ON")  # CQL2 LIKE is case-sensitive
