"""Deciding which CRS a file's coordinates are really in, and saying what to pass when it is unclear.

The evidence, in order: ``--crs``; the file's own CRS (``.prj``, GeoPackage metadata, GeoJSON's
WGS84 default); and the coordinates themselves. A CRS is only believed when the coordinates fit it:
``.prj`` files that lie (degrees declared for Gauss-Krüger metres, a zone without its prefix ...) are
refused with the CRS the coordinates do fit. Metre coordinates are tried against CGCS2000 Gauss-Krüger
zones (3- and 6-degree, with and without the zone prefix), UTM and Web Mercator, keeping those that land
in the city.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray
from pyproj import CRS, Transformer

from twin.crs import LONLAT, TwinCRS, parse_crs
from twin.errors import ImportRejectedError, InvalidQueryError

Array = NDArray[np.float64]
#: Share of sampled coordinates that must land in the (slightly enlarged) city extent for a CRS to fit.
FIT_SHARE = 0.9
_MARGIN = 0.25  # degrees added around the city extent when testing a fit


@dataclass(frozen=True)
class CrsChoice:
    """The CRS to read coordinates in, with the evidence (shown in the report)."""

    crs: TwinCRS
    how: str
    warning: str | None = None


def looks_lonlat(x: Array, y: Array) -> bool:
    """Whether every coordinate could be a longitude/latitude in degrees."""
    return bool(len(x)) and bool(np.all(np.abs(x) <= 180) and np.all(np.abs(y) <= 90))


@lru_cache(maxsize=128)
def _epsg(code: int) -> CRS:
    return CRS.from_epsg(code)


@lru_cache(maxsize=64)
def _to_lonlat(crs: CRS) -> Transformer:
    return Transformer.from_crs(crs, 4326, always_xy=True)


def _fit(x: Array, y: Array, crs: CRS, city: tuple[float, float, float, float]) -> bool:
    lon, lat = _to_lonlat(crs).transform(x, y)
    inside = ((lon >= city[0] - _MARGIN) & (lon <= city[2] + _MARGIN)
              & (lat >= city[1] - _MARGIN) & (lat <= city[3] + _MARGIN))
    return bool(np.mean(inside) >= FIT_SHARE)


def candidate_codes(x: Array, city: tuple[float, float, float, float]) -> list[int]:
    """EPSG codes of projected CRSs that metre coordinates of this size could be in, most likely first.

    Zones whose central meridian is far from the city are left out: their coordinates cannot land there.
    """
    east = float(np.median(x))
    if 1e7 <= east < 1e8:  # Gauss-Krüger with the zone number prefixed to the easting
        zone = int(east // 1e6)
        codes = []
        if 25 <= zone <= 45:
            codes.append(4513 + zone - 25)  # CGCS2000 3-degree zones 25..45
        if 13 <= zone <= 23:
            codes.append(4491 + zone - 13)  # CGCS2000 6-degree zones 13..23
        return [*codes, 3857]
    lon = (city[0] + city[2]) / 2
    three = [4534 + (cm - 75) // 3 for cm in range(75, 136, 3) if abs(cm - lon) <= 4.5]
    six = [4502 + (cm - 75) // 6 for cm in range(75, 136, 6) if abs(cm - lon) <= 6]
    utm = [32600 + z for z in range(1, 61) if abs(z * 6 - 183 - lon) <= 6]
    return [*three, *six, *utm, 3857]


def fitting_codes(x: Array, y: Array, city: tuple[float, float, float, float]) -> list[int]:
    """The candidate EPSG codes under which the coordinates land in the city."""
    if looks_lonlat(x, y):
        return []
    return [c for c in candidate_codes(x, city) if _fit(x, y, _epsg(c), city)]


def suggestion(x: Array, y: Array, city: tuple[float, float, float, float]) -> str:
    """What to pass as ``--crs`` for coordinates that are not in the CRS believed so far."""
    if looks_lonlat(x, y):
        lonlat = "EPSG:4326 (WGS84 / CGCS2000 lon/lat)"
        return f"they look like lon/lat degrees: re-run with --crs {lonlat}, or gcj02 / bd09 for Amap / Baidu data"
    codes = fitting_codes(x, y, city)
    span = f"x {np.min(x):,.0f}…{np.max(x):,.0f}, y {np.min(y):,.0f}…{np.max(y):,.0f}"
    if codes:
        names = "; ".join(f"EPSG:{c} ({_epsg(c).name})" for c in codes[:3])
        prefix = ""
        east = float(np.median(x))
        if 1e7 <= east < 1e8:
            prefix = f"the eastings start with the zone prefix {int(east // 1e6)}, so "
        return f"the coordinates ({span}) are metres: {prefix}they fit {names}; re-run with --crs EPSG:{codes[0]}"
    return (f"the coordinates ({span}) fit no common CRS for this city: pass --crs with the survey's EPSG code "
            "(CGCS2000 Gauss-Krüger: EPSG:4549 for CM 120°E, EPSG:4528 for zone 40 with the zone prefix; "
            "EPSG:4550 / 4529 east of 121.5°E) or a PROJ string for a local city grid")


def _parse(text: str, where: str) -> TwinCRS:
    try:
        return parse_crs(text)
    except InvalidQueryError as exc:
        raise ImportRejectedError(f"{where}: {exc}") from None


def resolve_crs(declared: str | None, override: str | None, x: Array, y: Array,
                city: tuple[float, float, float, float], name: str) -> CrsChoice:
    """The CRS of a file's coordinates ``x``, ``y`` (a sample), or a refusal that says what to pass."""
    if override:
        crs = _parse(override, "--crs")
        if crs.is_geographic and len(x) and not looks_lonlat(x, y):
            raise ImportRejectedError(f"{name}: --crs {override} is in degrees, but {suggestion(x, y, city)}")
        return CrsChoice(crs, "--crs")
    if declared is None:
        if not len(x) or looks_lonlat(x, y):
            return CrsChoice(LONLAT, "assumed: the file has no CRS and its coordinates look like lon/lat",
                             "the file has no CRS; WGS84 lon/lat was assumed (pass --crs gcj02 for Amap/Tencent "
                             "data, --crs bd09 for Baidu data)")
        raise ImportRejectedError(f"{name}: the file has no CRS and {suggestion(x, y, city)}")
    crs = _parse(declared, name)
    if not len(x):
        return CrsChoice(crs, "the file's CRS")
    if crs.is_geographic:
        if not looks_lonlat(x, y):
            raise ImportRejectedError(f"{name}: the file says its CRS is {crs.name} (degrees), but "
                                      f"{suggestion(x, y, city)}")
        return CrsChoice(crs, "the file's CRS")
    assert crs.proj is not None
    if _fit(x, y, crs.proj, city) or not (looks_lonlat(x, y) or fitting_codes(x, y, city)):
        return CrsChoice(crs, "the file's CRS")
    raise ImportRejectedError(f"{name}: the file says its CRS is {crs.name}, but {suggestion(x, y, city)}")
