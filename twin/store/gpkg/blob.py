"""GeoPackage geometry blobs (GPKG header + ISO WKB), encoded and decoded in bulk.

The header layout is the one in the OGC GeoPackage standard, clause 2.1.3: magic ``GP``,
version, flags (byte order, envelope kind, empty bit), ``srs_id`` and an optional envelope.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import cast

import numpy as np
import shapely
from numpy.typing import NDArray

from twin.model.rows import all_present

_ENVELOPE_BYTES = {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}
_XY_ENVELOPE = 1 << 1  # envelope indicator 1: [minx, maxx, miny, maxy]
_LITTLE_ENDIAN = 1
_EMPTY = 1 << 4
_HEADER = struct.Struct("<2sBBi")
_HEADER_ENV = struct.Struct("<2sBBi4d")


def encode(geoms: NDArray[np.object_], srs_id: int = 4326) -> list[bytes]:
    """Encode shapely geometries as GeoPackage blobs; points carry no envelope, as GDAL does."""
    geoms = np.asarray(geoms, dtype=object)
    wkb = shapely.to_wkb(geoms, byte_order=1, flavor="iso", output_dimension=2)
    bounds = shapely.bounds(geoms)
    is_point = shapely.get_type_id(geoms) == 0
    empty = shapely.is_empty(geoms)
    out: list[bytes] = []
    pack, pack_env = _HEADER.pack, _HEADER_ENV.pack
    for w, b, pt, e in zip(wkb, bounds.tolist(), is_point.tolist(), empty.tolist(), strict=True):
        if e:
            out.append(pack(b"GP", 0, _LITTLE_ENDIAN | _EMPTY, srs_id) + w)
        elif pt:
            out.append(pack(b"GP", 0, _LITTLE_ENDIAN, srs_id) + w)
        else:
            out.append(pack_env(b"GP", 0, _LITTLE_ENDIAN | _XY_ENVELOPE, srs_id, b[0], b[2], b[1], b[3]) + w)
    return out


def wkb_offset(blob: bytes) -> int:
    if blob[:2] != b"GP":
        raise ValueError("not a GeoPackage geometry blob (missing 'GP' magic)")
    return 8 + _ENVELOPE_BYTES[(blob[3] >> 1) & 0x7]


def decode(blobs: list[bytes | None]) -> NDArray[np.object_]:
    """Decode GeoPackage blobs (``None`` stays ``None``) into shapely geometries."""
    wkb = [None if b is None else b[wkb_offset(b):] for b in blobs]
    return shapely.from_wkb(np.array(wkb, dtype=object))


def envelope(blob: bytes | None) -> tuple[float, float, float, float] | None:
    """``(minx, maxx, miny, maxy)`` of one blob, read from its header when it has one."""
    if blob is None or blob[3] & _EMPTY:
        return None
    kind = (blob[3] >> 1) & 0x7
    if kind:
        order = "<" if blob[3] & 1 else ">"
        return struct.unpack_from(order + "4d", blob, 8)
    wkb = blob[wkb_offset(blob):]
    if len(wkb) == 21:  # a 2D point: read it directly
        order = "<" if wkb[0] == 1 else ">"
        if struct.unpack_from(order + "I", wkb, 1)[0] == 1:
            x, y = struct.unpack_from(order + "2d", wkb, 5)
            return None if x != x else (x, x, y, y)
    geom = shapely.from_wkb(wkb)
    if geom.is_empty:
        return None
    minx, miny, maxx, maxy = geom.bounds
    return minx, maxx, miny, maxy


def register_sql_functions(conn) -> None:  # type: ignore[no-untyped-def]
    """Provide the ``ST_*`` functions that the GeoPackage R-tree triggers call.

    Python's bundled SQLite cannot load SpatiaLite here, so a writer going through ``sqlite3``
    must supply them for third-party edits of the file (QGIS writes through GDAL, which has them).
    """

    def part(i: int):  # type: ignore[no-untyped-def]
        def f(blob: bytes | None) -> float | None:
            env = envelope(blob)
            return None if env is None else env[i]

        return f

    conn.create_function("ST_MinX", 1, part(0), deterministic=True)
    conn.create_function("ST_MaxX", 1, part(1), deterministic=True)
    conn.create_function("ST_MinY", 1, part(2), deterministic=True)
    conn.create_function("ST_MaxY", 1, part(3), deterministic=True)
    conn.create_function(
        "ST_IsEmpty", 1, lambda b: None if b is None else int(envelope(b) is None), deterministic=True
    )


#: A 2D point as twin's store writes it: GeoPackage header without envelope (flags: little-endian only),
#: then little-endian ISO WKB of type 1.
_POINT_BLOB = np.dtype([("magic", "S2"), ("version", "u1"), ("flags", "u1"), ("srs", "<i4"), ("order", "u1"),
                        ("type", "<u4"), ("x", "<f8"), ("y", "<f8")])


def point_coordinates(blobs: Sequence[bytes | None]) -> NDArray[np.float64] | None:
    """``(n, 2)`` coordinates of GeoPackage blobs read straight from the bytes when every one is a plain 2D
    point as twin's store writes it; ``None`` when any is not (empty, another kind, or written differently)."""
    if not all_present(blobs):
        return None
    if not (np.fromiter(map(len, blobs), dtype=np.int64, count=len(blobs)) == _POINT_BLOB.itemsize).all():
        return None
    arr = np.frombuffer(b"".join(blobs), dtype=_POINT_BLOB)
    if not ((arr["magic"] == b"GP") & (arr["flags"] == 1) & (arr["order"] == 1) & (arr["type"] == 1)).all():
        return None
    return np.column_stack([arr["x"], arr["y"]])


def decode_geometries(blobs: list[bytes | None]) -> NDArray[np.object_]:
    """Shapely geometries of GeoPackage blobs; plain points are read straight from the bytes in one go."""
    if not blobs:
        return np.empty(0, dtype=object)
    xy = point_coordinates(blobs)
    if xy is not None:
        return cast(NDArray[np.object_], shapely.points(xy))  # one point per row of xy
    return decode(blobs)


class GpkgCodec:
    """:class:`~twin.model.rows.GeometryCodec` of GeoPackage blobs."""

    def geometries(self, blobs: Sequence[bytes | None]) -> NDArray[np.object_]:
        return decode_geometries(list(blobs))

    def points(self, blobs: Sequence[bytes | None]) -> NDArray[np.float64] | None:
        return point_coordinates(blobs)


CODEC = GpkgCodec()
