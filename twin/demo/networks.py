"""Street lights and fire hydrants along the real main roads and the synthetic branch streets, tile by tile.

Lights stand every 30–40 m, on both sides of a carriageway where the road class has them on both
(staggered by half a spacing) and a few metres off the centre line; hydrants every ~120 m, alternating
sides. A few per cent are faulty, under repair or retired. Everything a tile yields depends only on the
seed and the tile, so a reduced build (``--scale small``) is an exact window on the full one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray

from twin.demo import names, roads
from twin.demo.city import City
from twin.demo.rng import rng_for
from twin.demo.sampling import Stations, stations
from twin.demo.streets import Blocks, grid_lines
from twin.demo.tiles import Focus, Tile
from twin.keys import geohash_encode

HYDRANT_COLUMNS = ("kind", "outlet_diameter", "pressure", "road", "owner", "inspected_on", "status")
LIGHT_COLUMNS = ("lamp_type", "power", "pole_height", "road", "circuit", "status")
STATUSES = np.array(["in_service", "faulty", "under_repair", "retired"])
STATUS_P = np.array([0.955, 0.025, 0.015, 0.005])
#: Fixed "today" of the demo twin, so that dates do not depend on the day it is built.
DEMO_DATE = "2025-06-30"


@dataclass
class Network:
    """The city's real roads and synthetic street grid, ready to be cut into tiles."""

    city: City
    blocks: Blocks
    seed: int
    focus: Focus | None = None

    @cached_property
    def road_tree(self) -> shapely.STRtree:
        return shapely.STRtree(self.city.road_xy)

    @cached_property
    def road_class(self) -> NDArray[np.intp]:
        return roads.class_index(self.city.roads["highway"].to_numpy())

    @cached_property
    def road_label(self) -> NDArray[np.str_]:
        zh = roads.table("zh")[self.road_class]
        return np.char.add(np.char.add(zh, " #"), self.city.roads["link_id"].astype(str).to_numpy(dtype=str))


@dataclass
class TileLines:
    """The lines of one tile in metres, with their road class and name."""

    geoms: NDArray[np.object_]
    cls: NDArray[np.intp]
    name: NDArray[np.str_]


def tile_lines(net: Network, tile: Tile) -> TileLines:
    """Real roads clipped to the tile's land, then the synthetic streets of its settled part."""
    box = tile.polygon
    land = shapely.intersection(net.city.land, box)
    idx = np.sort(net.road_tree.query(box))
    parts, which = shapely.get_parts(shapely.intersection(net.city.road_xy[idx], land), return_index=True)
    keep = (shapely.get_type_id(parts) == 1) & (shapely.length(parts) >= 1.0)
    geoms, cls, label = [parts[keep]], [net.road_class[idx[which[keep]]]], [net.road_label[idx[which[keep]]]]
    region = net.city.settled_region(tile.box)
    for i in np.sort(net.blocks.tree.query(region, predicate="intersects")).tolist():
        lines, numbers = grid_lines(net.blocks, i, shapely.intersection(net.blocks.polygons[i], region))
        geoms.append(lines)
        cls.append(np.full(len(lines), roads.STREET, dtype=np.intp))
        label.append(names.street_names(numbers))
    return TileLines(np.concatenate(geoms), np.concatenate(cls), np.concatenate(label).astype(str))


def _kth(line: NDArray[np.intp]) -> NDArray[np.intp]:
    """Position of each station along its line (stations come grouped by line, in order)."""
    return np.arange(len(line)) - np.searchsorted(line, line)


def light_stations(lines: TileLines, rng: np.random.Generator) -> tuple[Stations, NDArray[np.float64]]:
    """Pole positions (one side, or both staggered) and the sideways offset of each."""
    n = len(lines.geoms)
    spacing = roads.table("light_spacing").astype(float)[lines.cls]
    street = lines.cls == roads.STREET
    spacing[street] = rng.uniform(30.0, 40.0, int(street.sum()))
    start = rng.uniform(0.0, 1.0, n) * spacing
    offset = roads.table("light_offset").astype(float)[lines.cls]
    left = stations(lines.geoms, spacing, start)
    both = roads.table("both_sides")[lines.cls]
    right = stations(lines.geoms[both], spacing[both], np.mod(start[both] + spacing[both] / 2, spacing[both]))
    right = right._replace(line=np.flatnonzero(both)[right.line])
    merged = Stations(*(np.concatenate([a, b]) for a, b in zip(left, right, strict=True)))
    side = np.concatenate([np.ones(len(left.x)), -np.ones(len(right.x))])
    return merged, side * offset[merged.line]


def hydrant_stations(lines: TileLines, rng: np.random.Generator) -> tuple[Stations, NDArray[np.float64]]:
    """Hydrant positions every ~120 m on roads that have them, alternating sides."""
    has = np.flatnonzero(roads.table("hydrants")[lines.cls])
    spacing = roads.HYDRANT_SPACING + rng.uniform(-10.0, 10.0, len(has))
    st = stations(lines.geoms[has], spacing, rng.uniform(0.0, 1.0, len(has)) * spacing)
    st = st._replace(line=has[st.line])
    side = np.where(_kth(st.line) % 2 == 0, 1.0, -1.0)
    return st, side * (roads.table("light_offset").astype(float)[lines.cls[st.line]] - 1.0)


def _placed(net: Network, st: Stations, offset: NDArray[np.float64], dry: bool
            ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.intp]]:
    """Offset points, keeping those on land (and off the river when ``dry``) and inside the focus."""
    x, y = st.offset(offset)
    ok = np.ones(len(x), dtype=bool)
    if dry and len(x):
        ok &= ~shapely.contains_xy(net.city.water, x, y)
    if net.focus is not None:
        ok &= net.focus.contains(x, y)
    return x[ok], y[ok], np.flatnonzero(ok)


def _frame(net: Network, x: NDArray[np.float64], y: NDArray[np.float64], columns: dict[str, object]
           ) -> gpd.GeoDataFrame:
    """A lon/lat frame of points, sorted by geohash so keys are created in index order."""
    lon, lat = net.city.frame.to_lonlat(x, y)
    lon, lat = np.round(lon, 7), np.round(lat, 7)
    order = np.argsort(geohash_encode(lon, lat), kind="stable")
    frame = pd.DataFrame({k: np.asarray(v)[order] for k, v in columns.items()})
    return gpd.GeoDataFrame(frame, geometry=shapely.points(lon[order], lat[order]), crs="EPSG:4326")


def street_lights(net: Network, tile: Tile, lines: TileLines) -> gpd.GeoDataFrame:
    """The tile's street lights with lamp type, power, pole height, road, circuit and status."""
    rng = rng_for(net.seed, "street_light", tile.cell)
    st, offset = light_stations(lines, rng)
    n = len(st.x)
    u = net.city.urbanity_at(st.x, st.y)
    draw = rng.random(n)
    lamp = np.where(draw < 0.55 + 0.35 * u, "led", np.where(draw < 0.97, "sodium", "metal_halide"))
    lo, hi = (np.array(v)[lines.cls[st.line]] for v in zip(*roads.table("pole_height"), strict=True))
    height = np.round((lo + (hi - lo) * rng.random(n)) * 2) / 2  # to half a metre
    led = np.array([np.array(c.led_power)[rng.integers(0, len(c.led_power), n)] for c in roads.CLASSES.values()])
    power = np.where(lamp == "led", led[lines.cls[st.line], np.arange(n)],
                     np.where(height >= 10, 250, np.where(height >= 8, 150, 100)))
    circuit = np.char.add(f"{tile.cell.upper()}-", names.padded(st.line // 3 + 1, 4))
    status = STATUSES[rng.choice(4, n, p=STATUS_P)]
    x, y, ok = _placed(net, st, offset, dry=False)
    return _frame(net, x, y, {"lamp_type": lamp[ok], "power": power[ok], "pole_height": height[ok],
                              "road": lines.name[st.line][ok], "circuit": circuit[ok], "status": status[ok]})


def hydrants(net: Network, tile: Tile, lines: TileLines) -> gpd.GeoDataFrame:
    """The tile's fire hydrants with kind, outlet, pressure, road, owner, last inspection and status."""
    rng = rng_for(net.seed, "hydrant", tile.cell)
    st, offset = hydrant_stations(lines, rng)
    n = len(st.x)
    u = net.city.urbanity_at(st.x, st.y)
    kind = np.where(rng.random(n) < 0.45 + 0.3 * u, "underground", "above_ground")
    outlet = np.array([100, 65, 150])[rng.choice(3, n, p=[0.7, 0.2, 0.1])]
    status = STATUSES[rng.choice(4, n, p=STATUS_P)]
    pressure = np.round(np.where(status == "in_service", rng.uniform(0.18, 0.45, n), rng.uniform(0.0, 0.15, n)), 2)
    district = net.city.district_near(st.x, st.y)
    owners = np.array([f"{d}供水管理所" for d in net.city.districts["name"]] + ["上海市供水管理所"])
    inspected = names.dates(rng, n, "2023-07-01", DEMO_DATE)
    x, y, ok = _placed(net, st, offset, dry=True)
    return _frame(net, x, y, {"kind": kind[ok], "outlet_diameter": outlet[ok], "pressure": pressure[ok],
                              "road": lines.name[st.line][ok], "owner": owners[district][ok],
                              "inspected_on": inspected[ok], "status": status[ok]})


PointMaker = Callable[[Network, Tile, TileLines], gpd.GeoDataFrame]
#: The point layers, each with its generator and the columns it fills.
POINT_LAYERS: dict[str, tuple[PointMaker, tuple[str, ...]]] = {
    "hydrant": (hydrants, HYDRANT_COLUMNS),
    "street_light": (street_lights, LIGHT_COLUMNS),
}


def street_length_for(city: City, points: int) -> float:
    """Synthetic street length (m) that brings lights plus hydrants to ``points`` with the real roads."""
    cls = roads.class_index(city.roads["highway"].to_numpy())
    mid = shapely.line_interpolate_point(city.road_xy, 0.5, normalized=True)
    inside = city.district_near(shapely.get_x(mid), shapely.get_y(mid)) >= 0
    per_metre = (np.where(roads.table("both_sides"), 2.0, 1.0) / roads.table("light_spacing")
                 + roads.table("hydrants") / roads.HYDRANT_SPACING)
    real = float((shapely.length(city.road_xy) * per_metre[cls])[inside].sum())
    street = 2.0 / 35.0 + 1.0 / roads.HYDRANT_SPACING
    return max(points - real, 0.0) / street
