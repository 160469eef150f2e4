"""Rows of one layer as a store engine returns them, and the codec that reads their geometry bytes.

Engines keep geometries in their own byte form (a GeoPackage blob, PostGIS's WKB); a :class:`Rows` carries the
bytes as read, with the engine's :class:`GeometryCodec`, so callers decode only what they use, in bulk, and
never parse an engine's bytes themselves. Plain 2D points are read straight from the bytes, without GEOS.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol, TypeGuard, cast

import numpy as np
import shapely
from numpy.typing import NDArray

from twin.catalogue import LayerSpec


class GeometryCodec(Protocol):
    """Reads an engine's geometry bytes."""

    def geometries(self, blobs: Sequence[bytes | None]) -> NDArray[np.object_]:
        """Shapely geometries (``None`` stays ``None``)."""
        ...

    def points(self, blobs: Sequence[bytes | None]) -> NDArray[np.float64] | None:
        """``(n, 2)`` lon/lat when every blob is a plain 2D point, else ``None``."""
        ...


def all_present(blobs: Sequence[bytes | None]) -> TypeGuard[Sequence[bytes]]:
    """Whether no geometry is missing (``None``)."""
    return None not in blobs


#: A 2D point in little-endian ISO WKB.
_WKB_POINT = np.dtype([("order", "u1"), ("type", "<u4"), ("x", "<f8"), ("y", "<f8")])


class WkbCodec:
    """ISO WKB, as PostGIS's ``ST_AsBinary`` writes it."""

    def geometries(self, blobs: Sequence[bytes | None]) -> NDArray[np.object_]:
        if not len(blobs):
            return np.empty(0, dtype=object)
        xy = self.points(blobs)
        if xy is not None:
            return cast(NDArray[np.object_], shapely.points(xy))  # one point per row of xy
        return shapely.from_wkb(np.array([None if b is None else bytes(b) for b in blobs], dtype=object))

    def points(self, blobs: Sequence[bytes | None]) -> NDArray[np.float64] | None:
        if not all_present(blobs):
            return None
        if not (np.fromiter(map(len, blobs), dtype=np.int64, count=len(blobs)) == _WKB_POINT.itemsize).all():
            return None
        arr = np.frombuffer(b"".join(blobs), dtype=_WKB_POINT)
        if not ((arr["order"] == 1) & (arr["type"] == 1)).all():
            return None
        return np.column_stack([arr["x"], arr["y"]])


WKB = WkbCodec()


@dataclass(frozen=True)
class Rows:
    """Rows of one layer: ``fid, key, status, updated_at, <fields...>, geom[, distance_m]``.

    ``unmasked`` names the personal fields the reader may see as stored (the others are masked when encoded).
    """

    spec: LayerSpec
    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]
    unmasked: frozenset[str] = frozenset()
    codec: GeometryCodec = WKB

    def __len__(self) -> int:
        return len(self.rows)

    def column(self, name: str) -> list[object]:
        i = self.columns.index(name)
        return [r[i] for r in self.rows]

    def blobs(self) -> list[bytes | None]:
        g = self.columns.index("geom")
        return [r[g] for r in self.rows]

    def geometries(self) -> NDArray[np.object_]:
        """Every row's geometry (lon/lat), decoded in bulk."""
        return self.codec.geometries(self.blobs())

    def point_xy(self) -> NDArray[np.float64] | None:
        """``(n, 2)`` lon/lat when every row is a plain point (the fast road for points), else ``None``."""
        return self.codec.points(self.blobs())

    def take(self, rows: list[tuple[Any, ...]]) -> Rows:
        """The same layer, columns and view with other rows (a subset, reordered)."""
        return Rows(self.spec, self.columns, rows, self.unmasked, self.codec)


def row_columns(spec: LayerSpec, near: bool = False) -> tuple[str, ...]:
    """The columns of a layer's rows as every engine returns them."""
    return ("fid", "key", "status", "updated_at", *spec.field_names, "geom", *(("distance_m",) if near else ()))


#: Distances equal to the micrometre are ties, broken by id: two engines (or two adjacent polygons sharing an edge)
#: can compute one distance a last bit apart, and must still rank alike.
TIE_DECIMALS = 6


class Hits(NamedTuple):
    """Look-up results: feature ids and their distances in metres, nearest first (ties by id, see TIE_DECIMALS)."""

    fids: NDArray[np.int64]
    distances: NDArray[np.float64]
