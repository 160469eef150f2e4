"""Location keys (地理位置即身份证): a component's identifier derived from its layer and location.

A key reads ``HY-wtw3sjq6-0``:

* ``HY``: the layer's two-letter code from the catalogue (here 消火栓, hydrant);
* ``wtw3sjq6``: the geohash (8 characters, a cell of about 38 m x 19 m at Shanghai's latitude) of a
  representative point of the geometry (the point itself, or a point on the line or surface). Its
  prefix says where the component is without a lookup: ``wtw3`` is central Shanghai;
* ``0``: the ordinal of the component within its cell and layer, in geohash's base-32 digits.

Keys are assigned once and then kept: re-importing a component whose geometry is unchanged (to
about 1 cm, see :func:`fingerprints`) finds its existing key instead of making a new one.
New components in one cell are numbered in the order of (fingerprint, attribute hash), so
the same data always gets the same keys.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Mapping
from typing import NamedTuple

import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray

from twin.errors import InvalidKeyError

BASE32 = "0123456789bcdefghjkmnpqrstuvwxyz"
_DECODE = {c: i for i, c in enumerate(BASE32)}
CELL_PRECISION = 8
#: Coordinates are rounded to this many decimals (about 1 cm) before fingerprinting.
FINGERPRINT_DECIMALS = 7
KEY_RE = re.compile(rf"^([A-Z]{{2}})-([{BASE32}]{{{CELL_PRECISION}}})-([{BASE32}]{{1,6}})$")


class KeyParts(NamedTuple):
    """A parsed location key."""

    code: str
    cell: str
    ordinal: int


def geohash_encode(lon: NDArray[np.float64], lat: NDArray[np.float64], precision: int = CELL_PRECISION
                   ) -> NDArray[np.str_]:
    """Geohash strings of many lon/lat points at once."""
    lon = np.asarray(lon, dtype=np.float64)
    lat = np.asarray(lat, dtype=np.float64)
    # Bisection with exact (dyadic) midpoints, so points on or near a cell edge land in the right cell.
    lo = [np.full(lon.shape, -180.0), np.full(lat.shape, -90.0)]
    hi = [np.full(lon.shape, 180.0), np.full(lat.shape, 90.0)]
    values = [lon, lat]
    code = np.zeros(lon.shape, dtype=np.int64)
    for i in range(precision * 5):  # even bits halve longitude, odd bits latitude
        axis = i % 2
        mid = (lo[axis] + hi[axis]) / 2
        bit = values[axis] >= mid
        lo[axis] = np.where(bit, mid, lo[axis])
        hi[axis] = np.where(bit, hi[axis], mid)
        code = (code << 1) | bit
    chars = np.array(list(BASE32))
    digits = [(code >> (5 * (precision - 1 - k))) & 31 for k in range(precision)]
    out: NDArray[np.str_] = chars[digits[0]]
    for d in digits[1:]:
        out = np.char.add(out, chars[d])
    return out


def geohash_bounds(cell: str) -> tuple[float, float, float, float]:
    """``(minx, miny, maxx, maxy)`` of a geohash cell."""
    lon_lo, lon_hi, lat_lo, lat_hi = -180.0, 180.0, -90.0, 90.0
    even = True
    for c in cell:
        v = _DECODE[c]
        for shift in range(4, -1, -1):
            bit = (v >> shift) & 1
            if even:
                mid = (lon_lo + lon_hi) / 2
                lon_lo, lon_hi = (mid, lon_hi) if bit else (lon_lo, mid)
            else:
                mid = (lat_lo + lat_hi) / 2
                lat_lo, lat_hi = (mid, lat_hi) if bit else (lat_lo, mid)
            even = not even
    return lon_lo, lat_lo, lon_hi, lat_hi


def _base32(n: int) -> str:
    if n == 0:
        return "0"
    s = ""
    while n:
        n, r = divmod(n, 32)
        s = BASE32[r] + s
    return s


def format_key(code: str, cell: str, ordinal: int) -> str:
    """The key of the ``ordinal``-th component of layer ``code`` in ``cell``."""
    return f"{code}-{cell}-{_base32(ordinal)}"


def parse_key(key: str) -> KeyParts:
    """Split a key into its parts; raises :class:`InvalidKeyError` for a malformed one."""
    m = KEY_RE.match(key) if isinstance(key, str) else None
    if m is None:
        raise InvalidKeyError(
            f"{key!r} is not a location key: expected two capital letters, a dash, "
            f"{CELL_PRECISION} geohash characters, a dash and an ordinal, such as 'HY-wtw3sjq6-0'"
        )
    ordinal = 0
    for c in m.group(3):
        ordinal = ordinal * 32 + _DECODE[c]
    return KeyParts(m.group(1), m.group(2), ordinal)


def cell_and_ordinal(key: str) -> tuple[str, int]:
    """The cell and ordinal of a key read back from the store (trusted, so not re-validated)."""
    ordinal = 0
    for c in key[CELL_PRECISION + 4:]:
        ordinal = ordinal * 32 + _DECODE[c]
    return key[3:CELL_PRECISION + 3], ordinal


def key_cell_range(code: str, cell: str) -> tuple[str, str]:
    """Lower and upper bounds (exclusive) of every key in ``cell``, for an index range scan."""
    prefix = f"{code}-{cell}-"
    return prefix, prefix[:-1] + "."  # '.' sorts right after '-'


def representative_points(geoms: NDArray[np.object_]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """A point on each geometry (the point itself for points), as lon and lat arrays."""
    geoms = np.asarray(geoms, dtype=object)
    pts = geoms.copy()
    other = shapely.get_type_id(geoms) != 0  # a point is its own representative point
    if other.any():
        pts[other] = shapely.point_on_surface(geoms[other])
    return shapely.get_x(pts), shapely.get_y(pts)


def cells(geoms: NDArray[np.object_]) -> NDArray[np.str_]:
    """The geohash cell of each geometry's representative point."""
    lon, lat = representative_points(geoms)
    return geohash_encode(lon, lat)


#: SipHash-2-4 key of the fingerprints (pandas' default, fixed here so that it never drifts).
_HASH_KEY = "0123456789123456"


def fingerprints(geoms: NDArray[np.object_]) -> NDArray[np.int64]:
    """A 64-bit fingerprint of each geometry, insensitive to sub-centimetre noise and ring order.

    SipHash-2-4 of the ISO WKB of the normalised geometry with coordinates rounded to 1e-7 degree.
    Fingerprints are derived data: a store migration can recompute them if this definition changes.
    """
    geoms = np.asarray(geoms, dtype=object)
    points = shapely.get_type_id(geoms) == 0
    rounded = np.empty(len(geoms), dtype=object)
    if points.any():  # the common case, millions of rows: round directly, normalising a point is a no-op
        xy = np.round(shapely.get_coordinates(geoms[points]), FINGERPRINT_DECIMALS)
        rounded[points] = shapely.points(xy)
    if (~points).any():
        rounded[~points] = shapely.normalize(
            shapely.transform(geoms[~points], lambda c: np.round(c, FINGERPRINT_DECIMALS)))
    wkb = shapely.to_wkb(rounded, byte_order=1, flavor="iso", output_dimension=2)
    return pd.util.hash_array(wkb, hash_key=_HASH_KEY, categorize=False).view(np.int64)


def row_hashes(frame: pd.DataFrame) -> NDArray[np.int64]:
    """A 64-bit hash of each row of attribute values, used to order ties deterministically."""
    if frame.empty:
        return np.zeros(len(frame), dtype=np.int64)
    text = frame.astype(object).where(frame.notna(), None).astype(str)  # one stable text form per value
    return pd.util.hash_pandas_object(text, index=False, hash_key=_HASH_KEY, categorize=False).to_numpy().view(
        np.int64)


class KeyAssignment(NamedTuple):
    """The keys of a batch; ``matched[i]`` says whether ``keys[i]`` already existed."""

    keys: NDArray[np.object_]
    matched: NDArray[np.bool_]


def assign_keys(
    code: str,
    cell_of: NDArray[np.str_],
    fps: NDArray[np.int64],
    tiebreak: NDArray[np.int64],
    existing_by_fp: Mapping[int, list[str]],
    used_ordinals: Callable[[list[str]], Mapping[str, set[int]]],
) -> KeyAssignment:
    """Give each component of a batch its key.

    Parameters
    ----------
    code, cell_of, fps, tiebreak
        The layer code, and per component its cell, geometry fingerprint and attribute hash.
    existing_by_fp
        Unclaimed stored keys for each fingerprint of the batch, in key order; the i-th component
        (in (cell, fingerprint, tiebreak) order) with a fingerprint takes the i-th key.
    used_ordinals
        Called once with the cells that need new keys; returns the ordinals already taken there.
    """
    n = len(fps)
    keys = np.empty(n, dtype=object)
    matched = np.zeros(n, dtype=bool)
    order = np.lexsort((np.arange(n), tiebreak, fps, cell_of))
    if existing_by_fp:  # only components whose fingerprint is stored can take a stored key: look at those alone
        known = np.fromiter(existing_by_fp, dtype=np.int64, count=len(existing_by_fp))
        taken_by_fp: dict[int, int] = defaultdict(int)
        for i in order[np.isin(fps[order], known)].tolist():
            fp = int(fps[i])
            olds = existing_by_fp[fp]
            k = taken_by_fp[fp]
            if k < len(olds):
                keys[i] = olds[k]
                matched[i] = True
                taken_by_fp[fp] = k + 1
    fresh_idx = order[~matched[order]]  # the rest, still in (cell, fingerprint, tiebreak) order
    if len(fresh_idx):
        fresh_cells = cell_of[fresh_idx]
        taken = used_ordinals(np.unique(fresh_cells).tolist())
        if not any(taken.values()):  # nothing stored in these cells: number each cell's run 0, 1, 2 ...
            starts = np.r_[0, np.flatnonzero(fresh_cells[1:] != fresh_cells[:-1]) + 1]
            run = np.arange(len(fresh_idx)) - np.repeat(starts, np.diff(np.r_[starts, len(fresh_idx)]))
            ordinals = np.array([_base32(o) for o in range(int(run.max()) + 1)], dtype=object)
            keys[fresh_idx] = f"{code}-" + fresh_cells.astype(object) + "-" + ordinals[run]  # C loops, no calls
            return KeyAssignment(keys, matched)
        cursor: dict[str, int] = defaultdict(int)
        for i in fresh_idx.tolist():
            cell = str(cell_of[i])
            used = taken.get(cell, ())
            ordinal = cursor[cell]
            while ordinal in used:
                ordinal += 1
            cursor[cell] = ordinal + 1
            keys[i] = format_key(code, cell, ordinal)
    return KeyAssignment(keys, matched)
