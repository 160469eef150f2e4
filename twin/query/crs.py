"""The CRSs the query API offers (OGC API - Features Part 2) and their axis order.

Internally every coordinate is lon/lat (x/y). On the wire, OGC API - Features Part 2 says
coordinates follow the CRS's own axis order: latitude first for ``EPSG:4326`` and ``EPSG:4490``,
northing first for the Gauss-Krüger zones, and lon/lat only for CRS84 (the default). GCJ-02 and
BD-09 are twin extensions, written lon/lat like the web maps that use them.
"""

from __future__ import annotations

import re

import numpy as np
import shapely
from numpy.typing import NDArray

from twin.crs import CRS84_URI, LONLAT, OFFSET_URIS, TwinCRS, parse_crs, transform_geoms, transform_xy
from twin.errors import InvalidQueryError

#: Every CRS the API serves, by URI: CRS84 first (the default), then EPSG, then twin's offsets.
SUPPORTED_CRS = (
    CRS84_URI,
    "http://www.opengis.net/def/crs/EPSG/0/4326",
    "http://www.opengis.net/def/crs/EPSG/0/4490",
    "http://www.opengis.net/def/crs/EPSG/0/4549",
    "http://www.opengis.net/def/crs/EPSG/0/4550",
    "http://www.opengis.net/def/crs/EPSG/0/4528",
    "http://www.opengis.net/def/crs/EPSG/0/4529",
    OFFSET_URIS["gcj02"],
    OFFSET_URIS["bd09"],
)
EXTENSION_CRS = (OFFSET_URIS["gcj02"], OFFSET_URIS["bd09"])
_SAFE = re.compile(r"^[A-Za-z0-9:/._\-]{1,200}\Z")
#: Text naming none of these (the codes of :data:`SUPPORTED_CRS`, and the names of two) is refused without
#: asking PROJ, whose search for an arbitrary string can take a second of CPU.
_MENTIONS = re.compile("|".join([*(re.split(r"[/:]", uri)[-1] for uri in SUPPORTED_CRS), "wgs84", "cgcs2000"]),
                       re.IGNORECASE)
CRS84 = parse_crs(CRS84_URI)


def resolve_crs(text: str | None, *, name: str = "crs") -> TwinCRS:
    """The supported CRS ``text`` names (a URI, ``EPSG:4549``, ``4549``, ``CRS84``, ``gcj02``...), else 400."""
    if text is None or text == "":
        return CRS84
    raw = text.strip().strip("[]<>")
    crs = None
    if _SAFE.match(raw) and _MENTIONS.search(raw.replace("-", "").replace("_", "")):
        try:
            crs = parse_crs(raw)
        except InvalidQueryError:
            crs = None
    if crs is None or crs.uri not in SUPPORTED_CRS:
        raise InvalidQueryError(f"{name} {text[:100]!r} is not offered; use one of: {', '.join(SUPPORTED_CRS)}")
    return crs


def lat_first(crs: TwinCRS) -> bool:
    """Whether the CRS's first axis points north or south (EPSG:4326, EPSG:4490, Gauss-Krüger)."""
    if crs.uri == CRS84_URI or crs.proj is None:
        return False
    return crs.proj.axis_info[0].direction.lower() in ("north", "south")


def _swap(coords: NDArray[np.float64]) -> NDArray[np.float64]:
    return coords[:, ::-1].copy()


def to_lonlat_box(nums: list[float], crs: TwinCRS, name: str) -> tuple[float, float, float, float]:
    """Four numbers in ``crs``'s axis order as a lon/lat box; edges are densified for projected CRSs."""
    x0, y0, x1, y1 = (nums[1], nums[0], nums[3], nums[2]) if lat_first(crs) else tuple(nums)
    if crs.is_lonlat and crs.offset is None:
        return x0, y0, x1, y1
    if x0 > x1:
        raise InvalidQueryError(f"{name}: the first x {x0} is greater than the second {x1}; only CRS84 and "
                                "EPSG:4326 boxes may cross the antimeridian")
    t = np.linspace(0.0, 1.0, 21)
    xs = np.concatenate([x0 + (x1 - x0) * t, np.full(21, x1), x1 - (x1 - x0) * t, np.full(21, x0)])
    ys = np.concatenate([np.full(21, y0), y0 + (y1 - y0) * t, np.full(21, y1), y1 - (y1 - y0) * t])
    lon, lat = transform_xy(xs, ys, crs, LONLAT)
    if not (np.isfinite(lon).all() and np.isfinite(lat).all()):
        raise InvalidQueryError(f"{name} lies outside the area where {crs.name} is defined")
    return float(lon.min()), float(lat.min()), float(lon.max()), float(lat.max())


def to_lonlat_point(x: float, y: float, crs: TwinCRS, name: str) -> tuple[float, float]:
    """A point written in ``crs``'s axis order, as lon/lat."""
    if lat_first(crs):
        x, y = y, x
    lon, lat = transform_xy(np.array([x]), np.array([y]), crs, LONLAT)
    if not (np.isfinite(lon[0]) and np.isfinite(lat[0]) and -180 <= lon[0] <= 180 and -90 <= lat[0] <= 90):
        raise InvalidQueryError(f"{name} ({x}, {y}) is not a valid position in {crs.name}")
    return float(lon[0]), float(lat[0])


def geoms_to_lonlat(geoms: NDArray[np.object_], crs: TwinCRS) -> NDArray[np.object_]:
    """Geometries written in ``crs``'s axis order (a filter literal, an uploaded shape), as lon/lat."""
    geoms = np.asarray(geoms, dtype=object)
    if lat_first(crs):
        geoms = shapely.transform(geoms, _swap)
    return transform_geoms(geoms, crs, LONLAT)


def geoms_from_lonlat(geoms: NDArray[np.object_], crs: TwinCRS, *, axis_order: bool = True) -> NDArray[np.object_]:
    """Stored lon/lat geometries in ``crs``; with ``axis_order`` in the CRS's own axis order (for JSON)."""
    out = transform_geoms(np.asarray(geoms, dtype=object), LONLAT, crs)
    if axis_order and lat_first(crs):
        out = shapely.transform(out, _swap)
    return out


def is_default(crs: TwinCRS) -> bool:
    """Whether output needs no transformation at all."""
    return crs.uri == CRS84_URI
