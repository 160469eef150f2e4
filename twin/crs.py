"""Coordinate reference systems, including China's GCJ-02 and BD-09 offsets, vectorised.

GCJ-02 ("火星坐标", used by Amap/Gaode, Tencent and DataV) and BD-09 (Baidu) have no EPSG code: they are
non-linear obfuscations of WGS84. The forward transforms follow the published algorithm; the inverses are
solved by fixed-point iteration to well under a millimetre inside China. Points outside China's rough
bounding box are left unshifted, as the algorithm defines. Every function here takes whole numpy arrays.

All coordinates handled here are in x/y order (lon/lat for geographic CRSs).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np
import shapely
from numpy.typing import NDArray
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

from twin.errors import InvalidQueryError

Offset = Literal["gcj02", "bd09"]
Array = NDArray[np.float64]

_A = 6378245.0  # Krasovsky 1940 semi-major axis used by GCJ-02
_EE = 0.00669342162296594323
_X_PI = np.pi * 3000.0 / 180.0
CRS84_URI = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
OFFSET_URIS = {"gcj02": "urn:twin:crs:gcj02", "bd09": "urn:twin:crs:bd09"}
WGS84 = CRS.from_epsg(4326)


def in_china(lon: Array, lat: Array) -> NDArray[np.bool_]:
    """Whether each point lies in the rough box where GCJ-02 shifts coordinates."""
    return (lon >= 72.004) & (lon <= 137.8347) & (lat >= 0.8293) & (lat <= 55.8271)


def _delta(lon: Array, lat: Array) -> tuple[Array, Array]:
    x, y = lon - 105.0, lat - 35.0
    dlat = (-100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
            + (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
            + (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
            + (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0)
    dlon = (300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
            + (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
            + (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
            + (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0)
    rad = lat / 180.0 * np.pi
    magic = 1 - _EE * np.sin(rad) ** 2
    sq = np.sqrt(magic)
    dlat = dlat * 180.0 / ((_A * (1 - _EE)) / (magic * sq) * np.pi)
    dlon = dlon * 180.0 / (_A / sq * np.cos(rad) * np.pi)
    return dlon, dlat


def wgs84_to_gcj02(lon: Array, lat: Array) -> tuple[Array, Array]:
    """WGS84 to GCJ-02 (points outside China unchanged)."""
    lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    dlon, dlat = _delta(lon, lat)
    inside = in_china(lon, lat)
    return np.where(inside, lon + dlon, lon), np.where(inside, lat + dlat, lat)


def _invert(forward: Callable[[Array, Array], tuple[Array, Array]], lon: Array, lat: Array,
            start: tuple[Array, Array]) -> tuple[Array, Array]:
    """Solve ``forward(x, y) == (lon, lat)`` by fixed-point iteration from ``start``, to ~1e-10 degree."""
    x, y = start
    for _ in range(30):
        flon, flat = forward(x, y)
        elon, elat = flon - lon, flat - lat
        x, y = x - elon, y - elat
        if np.all(np.abs(elon) < 1e-10) and np.all(np.abs(elat) < 1e-10):
            break
    return x, y


def gcj02_to_wgs84(lon: Array, lat: Array) -> tuple[Array, Array]:
    """GCJ-02 to WGS84, inverting the forward transform."""
    lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    return _invert(wgs84_to_gcj02, lon, lat, (lon.copy(), lat.copy()))


def gcj02_to_bd09(lon: Array, lat: Array) -> tuple[Array, Array]:
    """GCJ-02 to BD-09."""
    lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    z = np.sqrt(lon * lon + lat * lat) + 0.00002 * np.sin(lat * _X_PI)
    theta = np.arctan2(lat, lon) + 0.000003 * np.cos(lon * _X_PI)
    blon, blat = z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006
    inside = in_china(lon, lat)
    return np.where(inside, blon, lon), np.where(inside, blat, lat)


def bd09_to_gcj02(lon: Array, lat: Array) -> tuple[Array, Array]:
    """BD-09 to GCJ-02, inverting the forward transform."""
    lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    return _invert(gcj02_to_bd09, lon, lat, (lon - 0.0065, lat - 0.006))


def wgs84_to_bd09(lon: Array, lat: Array) -> tuple[Array, Array]:
    """WGS84 to BD-09."""
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def bd09_to_wgs84(lon: Array, lat: Array) -> tuple[Array, Array]:
    """BD-09 to WGS84."""
    return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))


_TO_WGS84 = {"gcj02": gcj02_to_wgs84, "bd09": bd09_to_wgs84}
_FROM_WGS84 = {"gcj02": wgs84_to_gcj02, "bd09": wgs84_to_bd09}


@dataclass(frozen=True)
class TwinCRS:
    """A CRS twin understands: a pyproj CRS, or one of the GCJ-02 / BD-09 offsets of WGS84."""

    name: str
    uri: str
    proj: CRS | None = None
    offset: Offset | None = None

    @property
    def is_lonlat(self) -> bool:
        return self.offset is not None or (self.proj is not None and self.proj.equals(WGS84, ignore_axis_order=True))

    @property
    def is_geographic(self) -> bool:
        return self.offset is not None or bool(self.proj is not None and self.proj.is_geographic)


@lru_cache(maxsize=256)
def parse_crs(text: str | int) -> TwinCRS:
    """Read a CRS from an EPSG code, an OGC URI, a PROJ string, WKT, or ``gcj02`` / ``bd09``.

    Raises :class:`InvalidQueryError` with a hint for anything else.
    """
    raw = str(text).strip()
    low = raw.lower().replace("-", "").replace("_", "")
    for offset in ("gcj02", "bd09"):
        if low in (offset, OFFSET_URIS[offset].replace("-", "").replace("_", "")):
            return TwinCRS(offset.upper().replace("GCJ02", "GCJ-02").replace("BD09", "BD-09"),
                           OFFSET_URIS[offset], None, offset)
    if raw.isdigit():
        raw = f"EPSG:{raw}"
    if low.endswith(("crs84", "ogc:1.3:crs84")):
        return TwinCRS("CRS84", CRS84_URI, WGS84)
    try:
        crs = CRS.from_user_input(raw)
    except CRSError:
        raise InvalidQueryError(
            f"unknown CRS {text!r}: give an EPSG code (EPSG:4549), an OGC URI, a PROJ string, WKT, "
            "or gcj02 / bd09 for Chinese basemap offsets"
        ) from None
    auth = crs.to_authority()
    if auth:
        uri = f"http://www.opengis.net/def/crs/{auth[0]}/0/{auth[1]}"
        return TwinCRS(f"{auth[0]}:{auth[1]}", uri, crs)
    return TwinCRS(crs.name, crs.to_proj4() or crs.name, crs)


@lru_cache(maxsize=64)
def _transformer(src: CRS, dst: CRS) -> Transformer:
    return Transformer.from_crs(src, dst, always_xy=True)


def transform_xy(x: Array, y: Array, src: TwinCRS, dst: TwinCRS) -> tuple[Array, Array]:
    """Transform coordinate arrays from ``src`` to ``dst`` (both in x/y, lon/lat order)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if src == dst:
        return x, y
    if src.offset is not None:
        x, y = _TO_WGS84[src.offset](x, y)
    elif src.proj is not None and not src.is_lonlat:
        x, y = _transformer(src.proj, WGS84).transform(x, y)
    if dst.offset is not None:
        return _FROM_WGS84[dst.offset](x, y)
    if dst.proj is not None and not dst.is_lonlat:
        return _transformer(WGS84, dst.proj).transform(x, y)
    return x, y


def transform_geoms(geoms: NDArray[np.object_], src: TwinCRS, dst: TwinCRS) -> NDArray[np.object_]:
    """Transform shapely geometries from ``src`` to ``dst``, all at once."""
    if src == dst:
        return np.asarray(geoms, dtype=object)

    def fn(coords: NDArray[np.float64]) -> NDArray[np.float64]:
        x, y = transform_xy(coords[:, 0], coords[:, 1], src, dst)
        return np.column_stack([x, y])

    return shapely.transform(np.asarray(geoms, dtype=object), fn)


LONLAT = parse_crs("EPSG:4326")
