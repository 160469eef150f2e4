"""The tile grid: OGC WebMercatorQuad from morecantile, tile addresses checked, and cells nested in tiles.

Every tile bound and cell size comes from morecantile's tile matrix definitions; this module only
applies them to numpy arrays (a cell index is ``floor((x - origin) / size)`` of the matrix at that level)
so that millions of points are placed at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import morecantile
import numpy as np
import pyproj
import shapely
from numpy.typing import NDArray

from twin.errors import InvalidQueryError

TMS_ID = "WebMercatorQuad"
TMS = morecantile.tms.get(TMS_ID)
MIN_ZOOM = int(TMS.minzoom)
MAX_ZOOM = int(TMS.maxzoom)
EXTENT = 4096  # MVT tile coordinates per tile side
MAX_LAT = 85.0511287798066
#: Half the width (and height) of the Web Mercator world, in metres.
WORLD_HALF = 20037508.342789244

_TO_MERC = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True)
_TO_LONLAT = pyproj.Transformer.from_crs("EPSG:3857", "EPSG:4326", always_xy=True)


class InvalidTileError(InvalidQueryError):
    """A tile address that is not a tile of the matrix set (non-numeric, negative or out of range)."""


@dataclass(frozen=True, order=True)
class TileID:
    """One tile: zoom (tile matrix), column and row, as in ``/{z}/{x}/{y}``."""

    z: int
    x: int
    y: int

    def __str__(self) -> str:
        return f"{self.z}/{self.x}/{self.y}"


def _whole(name: str, text: str | int) -> int:
    try:
        value = int(str(text).strip())
    except ValueError:
        raise InvalidTileError(f"{name} must be a whole number, not {str(text)[:40]!r}") from None
    if value < 0:
        raise InvalidTileError(f"{name} must be 0 or more, not {value}")
    return value


def parse_tile(z: str | int, x: str | int, y: str | int) -> TileID:
    """A tile address from path text, checked against the matrix set's zooms and each zoom's size."""
    zoom = _whole("zoom (tileMatrix) z", z)
    if zoom > MAX_ZOOM:
        raise InvalidTileError(f"zoom (tileMatrix) {zoom} is out of range: {TMS_ID} has zooms {MIN_ZOOM} to {MAX_ZOOM}")
    col, row = _whole("column (tileCol) x", x), _whole("row (tileRow) y", y)
    size = TMS.matrix(zoom).matrixWidth
    for name, value in (("column (tileCol) x", col), ("row (tileRow) y", row)):
        if value >= size:
            raise InvalidTileError(f"{name} {value} is out of range at zoom {zoom}: 0 to {size - 1}")
    return TileID(zoom, col, row)


def parse_zoom(text: str | int, name: str = "zoom") -> int:
    """A zoom level between the matrix set's first and last."""
    zoom = _whole(name, text)
    if zoom > MAX_ZOOM:
        raise InvalidTileError(f"{name} {zoom} is out of range: {TMS_ID} has zooms {MIN_ZOOM} to {MAX_ZOOM}")
    return zoom


@cache
def mercator_bounds(tile: TileID) -> tuple[float, float, float, float]:
    """``(left, bottom, right, top)`` of a tile in Web Mercator metres."""
    b = TMS.xy_bounds(morecantile.Tile(tile.x, tile.y, tile.z))
    return b.left, b.bottom, b.right, b.top


def buffered_mercator(tile: TileID, buffer: int) -> tuple[float, float, float, float]:
    """A tile's bounds grown by ``buffer`` tile units (of :data:`EXTENT`) on every side."""
    left, bottom, right, top = mercator_bounds(tile)
    pad = (right - left) * buffer / EXTENT
    return left - pad, bottom - pad, right + pad, top + pad


def lonlat_box(box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    """A Web Mercator box as a lon/lat box (exact: the projection maps boxes to boxes), cut to the world."""
    lon0, lat0, lon1, lat1 = lonlat_boxes(np.array(box)).tolist()[0]
    return lon0, lat0, lon1, lat1


def lonlat_boxes(boxes: NDArray[np.float64]) -> NDArray[np.float64]:
    """``(n, 4)`` Web Mercator boxes as lon/lat boxes, cut to the world: a buffered tile at the antimeridian
    or the poles stops there rather than wrapping round to the other side."""
    boxes = np.clip(np.asarray(boxes, dtype=np.float64).reshape(-1, 4), -WORLD_HALF, WORLD_HALF)
    lon0, lat0 = xy_to_lonlat(boxes[:, 0], boxes[:, 1])
    lon1, lat1 = xy_to_lonlat(boxes[:, 2], boxes[:, 3])
    return np.column_stack([lon0, lat0, lon1, lat1])


def xy_to_lonlat(x: NDArray[np.float64],
                 y: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Web Mercator points in lon/lat; longitudes stay within -180..180 without wrapping at the antimeridian."""
    _, lat = _TO_LONLAT.transform(np.zeros(np.shape(y)), y)
    return np.asarray(x, dtype=np.float64) * (180.0 / WORLD_HALF), np.asarray(lat, dtype=np.float64)


def to_mercator(geoms: NDArray[np.object_]) -> NDArray[np.object_]:
    """Lon/lat geometries in Web Mercator metres (latitudes clamped to the projection's limit)."""

    def project(xy: NDArray[np.float64]) -> NDArray[np.float64]:
        x, y = _TO_MERC.transform(xy[:, 0], np.clip(xy[:, 1], -MAX_LAT, MAX_LAT))
        return np.column_stack([x, y])

    return shapely.transform(np.asarray(geoms, dtype=object), project)


def xy_to_mercator(lon: NDArray[np.float64],
                   lat: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    x, y = _TO_MERC.transform(lon, np.clip(lat, -MAX_LAT, MAX_LAT))
    return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)


def to_tile_coords(geoms: NDArray[np.object_], tile: TileID) -> NDArray[np.object_]:
    """Web Mercator geometries in the tile's own coordinates: 0..EXTENT, y down."""
    left, bottom, right, top = mercator_bounds(tile)
    sx, sy = EXTENT / (right - left), EXTENT / (top - bottom)
    return shapely.transform(geoms, lambda xy: np.column_stack([(xy[:, 0] - left) * sx, (top - xy[:, 1]) * sy]))


def cell_size(level: int) -> float:
    """Side of a tile of matrix ``level``, in metres: the cell size when cells are that level's tiles."""
    m = TMS.matrix(level)
    return float(m.cellSize * m.tileWidth)


def cell_index(x: NDArray[np.float64], y: NDArray[np.float64],
               level: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Column and row, at matrix ``level``, of the tile holding each Web Mercator point."""
    m = TMS.matrix(level)
    x0, y0 = m.pointOfOrigin
    size = cell_size(level)
    cx = np.clip(np.floor((np.asarray(x) - x0) / size), 0, m.matrixWidth - 1).astype(np.int64)
    cy = np.clip(np.floor((y0 - np.asarray(y)) / size), 0, m.matrixHeight - 1).astype(np.int64)
    return cx, cy


def cell_bounds(cx: NDArray[np.int64], cy: NDArray[np.int64], level: int) -> NDArray[np.float64]:
    """``(n, 4)`` Web Mercator bounds of cells at matrix ``level``."""
    m = TMS.matrix(level)
    x0, y0 = m.pointOfOrigin
    size = cell_size(level)
    cx, cy = np.asarray(cx, dtype=np.float64), np.asarray(cy, dtype=np.float64)
    return np.column_stack([x0 + cx * size, y0 - (cy + 1) * size, x0 + (cx + 1) * size, y0 - cy * size])


def cell_range(box: tuple[float, float, float, float], level: int) -> tuple[int, int, int, int]:
    """``(cx0, cy0, cx1, cy1)``, inclusive, of the cells at ``level`` that a Web Mercator box meets."""
    cx, cy = cell_index(np.array([box[0], box[2]]), np.array([box[3], box[1]]), level)
    return int(cx[0]), int(cy[0]), int(cx[1]), int(cy[1])


def tiles_in(bbox: tuple[float, float, float, float], zoom: int) -> list[TileID]:
    """Every tile at ``zoom`` that a lon/lat box touches, in row-major order."""
    return [TileID(t.z, t.x, t.y) for t in TMS.tiles(*bbox, [zoom], truncate=True)]
