"""Cutting the city into geohash-5 tiles (about 4.2 km x 4.9 km), the unit of chunked generation.

Tiles are visited in geohash order, which is also the order of the location keys their components
will get, so the store's key index grows at its end instead of being rewritten all over.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely

from twin.demo.city import City
from twin.keys import geohash_bounds, geohash_encode

TILE_PRECISION = 5


@dataclass(frozen=True)
class Focus:
    """A disc (metres in the city frame) that limits what a reduced build generates."""

    x: float
    y: float
    radius: float

    @property
    def disc(self) -> shapely.Geometry:
        return shapely.Point(self.x, self.y).buffer(self.radius, quad_segs=32)

    def contains(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.hypot(np.asarray(x) - self.x, np.asarray(y) - self.y) <= self.radius


@dataclass(frozen=True)
class Tile:
    """One geohash-5 cell: its code and its box in the city frame (metres)."""

    cell: str
    box: tuple[float, float, float, float]

    @property
    def polygon(self) -> shapely.Geometry:
        return shapely.box(*self.box)


def city_tiles(city: City, focus: Focus | None = None) -> list[Tile]:
    """The tiles holding settled land (and meeting the focus disc, if any), in geohash order."""
    cx, cy = city.grid.centres()
    lon, lat = city.frame.to_lonlat(cx[city.settled], cy[city.settled])
    cells = np.unique(geohash_encode(lon, lat, TILE_PRECISION)).tolist()
    tiles = []
    for cell in cells:
        minx, miny, maxx, maxy = geohash_bounds(cell)
        x, y = city.frame.to_xy(np.array([minx, maxx]), np.array([miny, maxy]))
        tile = Tile(cell, (float(x[0]), float(y[0]), float(x[1]), float(y[1])))
        if focus is None or shapely.intersects(tile.polygon, focus.disc):
            tiles.append(tile)
    return tiles
