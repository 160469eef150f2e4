"""The city model the generators share: land, roads, water and an urban-density surface, in metres.

Urbanity (0 = countryside, 1 = the densest core) is estimated from real data only: the length of
OSM main roads and the number of metro stations near each 250 m cell, smoothed over about a
kilometre. Land that is "settled" lies inside a district and within 1.5 km of a main road, which
keeps synthesised streets off the sea and estuary that the district outlines include.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import cast

import geopandas as gpd
import numpy as np
import shapely
from numpy.typing import NDArray

from twin.demo import sources
from twin.demo.local import FRAME, LocalFrame
from twin.demo.raster import Grid, box_blur, dilate
from twin.demo.sampling import stations

CELL = 250.0
SETTLED_REACH = 1500.0
#: Districts whose common border with Pudong is the Huangpu River, and the river's half width there.
HUANGPU_WEST_BANK = ("黄浦区", "虹口区", "杨浦区", "徐汇区")
HUANGPU_HALF_WIDTH = 170.0
ROAD_CLEARANCE = 45.0


@dataclass
class City:
    """Everything the generators read, in the local metric :class:`LocalFrame`."""

    frame: LocalFrame
    districts: gpd.GeoDataFrame  # lon/lat, with name, name_en, code
    district_xy: NDArray[np.object_]
    roads: gpd.GeoDataFrame  # lon/lat, with link_id, highway
    road_xy: NDArray[np.object_]
    grid: Grid
    urbanity: NDArray[np.float64]
    settled: NDArray[np.bool_]
    district_grid: NDArray[np.intp]  # index of the district at each cell centre, -1 outside
    water: shapely.Geometry

    @cached_property
    def land(self) -> shapely.Geometry:
        land = shapely.union_all(self.district_xy)
        shapely.prepare(land)
        return land

    def district_near(self, x: NDArray[np.float64], y: NDArray[np.float64]) -> NDArray[np.intp]:
        """The district at each point to the raster's 250 m: fast, for attributes such as owners."""
        row, col = self.grid.index(x, y)
        return self.district_grid[row, col]

    def urbanity_at(self, x: NDArray[np.float64], y: NDArray[np.float64]) -> NDArray[np.float64]:
        row, col = self.grid.index(x, y)
        return self.urbanity[row, col]

    def settled_at(self, x: NDArray[np.float64], y: NDArray[np.float64]) -> NDArray[np.bool_]:
        row, col = self.grid.index(x, y)
        return self.settled[row, col] & ~shapely.contains_xy(self.water, x, y)

    @cached_property
    def district_tree(self) -> shapely.STRtree:
        return shapely.STRtree(self.district_xy)

    def district_of(self, x: NDArray[np.float64], y: NDArray[np.float64]) -> NDArray[np.intp]:
        """Index of the district containing each point, or -1."""
        pts = cast(NDArray[np.object_], shapely.points(x, y))
        hit_pt, hit_poly = self.district_tree.query(pts, predicate="within")
        out = np.full(len(pts), -1, dtype=np.intp)
        out[hit_pt[::-1]] = hit_poly[::-1]  # the first district wins where outlines overlap
        return out

    def settled_region(self, bounds: tuple[float, float, float, float]) -> shapely.Geometry:
        """Settled land within ``bounds`` (a box in metres) as a polygon, water removed."""
        region = self.grid.mask_polygons(self.settled, bounds)
        region = shapely.intersection(region, shapely.box(*bounds))
        return shapely.difference(region, self.water) if shapely.intersects(region, self.water) else region


def load_city(frame: LocalFrame = FRAME) -> City:
    """Build the city model from the committed real data (about a second)."""
    districts = sources.load_districts()
    roads = sources.load_roads()
    metro = sources.load_metro()
    district_xy = frame.geoms_to_xy(districts.geometry.to_numpy())
    road_xy = frame.geoms_to_xy(roads.geometry.to_numpy())
    grid = Grid.covering(tuple(shapely.total_bounds(district_xy)), CELL)
    along = stations(road_xy, 25.0, 12.5)
    road_len = grid.histogram(along.x, along.y, np.full(len(along.x), 25.0))
    mx, my = frame.to_xy(shapely.get_x(metro.geometry.to_numpy()), shapely.get_y(metro.geometry.to_numpy()))
    urbanity = _urbanity(box_blur(road_len, 4), box_blur(grid.histogram(mx, my), 6))
    cx, cy = grid.centres()
    district_grid = np.full(cx.shape, -1, dtype=np.intp)
    for i, poly in enumerate(district_xy):
        district_grid[(district_grid < 0) & shapely.contains_xy(poly, cx, cy)] = i
    settled = (district_grid >= 0) & dilate(road_len > 0, int(SETTLED_REACH // CELL))
    water = _huangpu(districts, district_xy, road_xy)
    return City(frame, districts, district_xy, roads, road_xy, grid, urbanity, settled, district_grid, water)


def _urbanity(roads: NDArray[np.float64], metro: NDArray[np.float64]) -> NDArray[np.float64]:
    raw = roads / np.quantile(roads[roads > 0], 0.99) + 0.6 * metro / np.quantile(metro[metro > 0], 0.99)
    return np.clip(raw / np.quantile(raw[raw > 0], 0.995), 0.0, 1.0)


def _huangpu(districts: gpd.GeoDataFrame, district_xy: NDArray[np.object_], road_xy: NDArray[np.object_]
             ) -> shapely.Geometry:
    """The Huangpu River through the centre, traced along Pudong's border with the west-bank districts.

    The simplified border strays up to ~200 m from mid-river, so the land within 45 m of a real road
    (the riverside roads; bridges and tunnels too, a small price) is given back.
    """
    names = districts["name"].tolist()
    if "浦东新区" not in names:
        return shapely.Polygon()
    pudong = shapely.buffer(district_xy[names.index("浦东新区")], 40.0)
    west = [district_xy[names.index(n)] for n in HUANGPU_WEST_BANK if n in names]
    border = shapely.intersection(pudong, shapely.buffer(shapely.union_all(west), 40.0))
    river = shapely.buffer(border, HUANGPU_HALF_WIDTH - 40.0)
    near = road_xy[shapely.intersects(road_xy, river)]
    return cast(shapely.Geometry, shapely.difference(river, shapely.buffer(shapely.union_all(near), ROAD_CLEARANCE)))
