"""Residential compounds (住宅小区) and construction sites (建筑工地) as parcels between streets.

Each parcel is a rectangle spanning whole cells of its block's street grid (so it lines up with the
streets around it, and compound lanes run inside it), kept clear of the main roads by the block's
setback, clipped to settled land and never overlapping another parcel of the same tile. Tiles get
their share of the city's count by urban weight: compounds favour the dense city, sites are spread
more evenly. Contact people and phones are visibly synthetic (王某某07, 15412340427: see
:mod:`twin.demo.names`) and served masked like real ones (王****, 154****0427).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray

from twin.demo import names
from twin.demo.admin import allocate
from twin.demo.networks import DEMO_DATE, Network
from twin.demo.rng import rng_for
from twin.demo.sources import polygonal
from twin.demo.tiles import TILE_PRECISION, Tile
from twin.keys import geohash_encode

MARGIN = 5.0  # metres between a parcel and the centre line of the street around it


@dataclass(frozen=True)
class Kind:
    """How one kind of parcel is sized and where it goes."""

    label: str
    sides: tuple[float, float]  # metres, range of each side
    urban_power: float  # weight of a cell is 0.05 + urbanity ** urban_power


COMPOUND_FIELDS = ("name", "address", "households", "built_year", "property_manager", "contact_phone", "status")
SITE_FIELDS = ("permit_no", "project_name", "contractor", "start_date", "end_date", "site_manager", "manager_phone",
               "status")
COMPOUND = Kind("compound", (110.0, 320.0), 1.0)
SITE = Kind("site", (60.0, 260.0), 0.3)


def tile_shares(net: Network, tiles: list[Tile], kind: Kind, total: int) -> dict[str, int]:
    """How many parcels of ``kind`` each tile gets, over the whole city (independent of any focus)."""
    city = net.city
    cx, cy = city.grid.centres()
    x, y = cx[city.settled], cy[city.settled]
    lon, lat = city.frame.to_lonlat(x, y)
    cell = geohash_encode(lon, lat, TILE_PRECISION)
    w = 0.05 + city.urbanity[city.settled] ** kind.urban_power
    codes, inverse = np.unique(cell, return_inverse=True)
    # numpy's stubs type bincount as intp, also when weighted (it is float64 then)
    counts = allocate(total, cast(NDArray[np.float64], np.bincount(inverse, weights=w)), 0)
    wanted = {t.cell for t in tiles}
    return {c: int(n) for c, n in zip(codes.tolist(), counts.tolist(), strict=True) if c in wanted}


def _candidate(net: Network, tile: Tile, kind: Kind, rng: np.random.Generator) -> tuple[float, float]:
    """A random settled point of the tile, weighted by the kind's urban preference."""
    city = net.city
    r0, c0 = city.grid.index(np.array([tile.box[0]]), np.array([tile.box[1]]))
    r1, c1 = city.grid.index(np.array([tile.box[2]]), np.array([tile.box[3]]))
    u = city.urbanity[r0[0]:r1[0] + 1, c0[0]:c1[0] + 1]
    w = ((0.05 + u ** kind.urban_power) * city.settled[r0[0]:r1[0] + 1, c0[0]:c1[0] + 1]).ravel()
    if w.sum() <= 0:
        return float("nan"), float("nan")
    k = int(rng.choice(len(w), p=w / w.sum()))
    row, col = r0[0] + k // u.shape[1], c0[0] + k % u.shape[1]
    x = city.grid.x0 + (col + rng.random()) * city.grid.cell
    y = city.grid.y0 + (row + rng.random()) * city.grid.cell
    return float(x), float(y)


def _span(at: float, sp: float, ph: float, side: float, rng: np.random.Generator) -> tuple[float, float, int]:
    """An interval along one grid axis holding ``at``: whole grid cells, or part of one wide cell."""
    first = np.floor(at / sp - ph)
    cells = max(1, round(side / sp))
    lo = (first - int(rng.integers(0, cells)) + ph) * sp
    hi = lo + cells * sp
    if cells == 1 and sp - 2 * MARGIN > side:  # a wide rural cell: a parcel of the wanted size in it
        lo = float(np.clip(at - side / 2, lo + MARGIN, hi - MARGIN - side)) - MARGIN
        hi = lo + side + 2 * MARGIN
    return lo + MARGIN, hi - MARGIN, int(first)


def place(net: Network, tile: Tile, kind: Kind, rng: np.random.Generator, region: shapely.Geometry
          ) -> tuple[shapely.Geometry, int] | None:
    """One parcel (metres) and the street number it fronts, or None if the draw did not fit."""
    x, y = _candidate(net, tile, kind, rng)
    hits = net.blocks.tree.query(shapely.Point(x, y), predicate="within")
    if not len(hits):
        return None
    i = int(hits[0])
    c, s, x0, y0 = net.blocks.frame_of(i)
    u, v = (x - x0) * c + (y - y0) * s, -(x - x0) * s + (y - y0) * c
    sp = float(net.blocks.spacing[i])
    u0, u1, k = _span(u, sp, float(net.blocks.phase[i, 0]), rng.uniform(*kind.sides), rng)
    v0, v1, _ = _span(v, sp, float(net.blocks.phase[i, 1]), rng.uniform(*kind.sides), rng)
    corners = np.array([[u0, v0], [u1, v0], [u1, v1], [u0, v1]])
    rect = shapely.Polygon(np.column_stack([corners[:, 0] * c - corners[:, 1] * s + x0,
                                            corners[:, 0] * s + corners[:, 1] * c + y0]))
    clipped = shapely.intersection(shapely.intersection(rect, net.blocks.polygons[i]), region)
    parts = shapely.get_parts(clipped)
    parts = parts[shapely.get_type_id(parts) == 3]
    if not len(parts):
        return None
    best = parts[np.argmax(shapely.area(parts))]
    if shapely.area(best) < 0.5 * rect.area:
        return None
    return shapely.simplify(best, 0.5), i * 100_000 + (k % 25_000) * 2


def tile_parcels(net: Network, tile: Tile,
                 wanted: dict[Kind, int]) -> dict[Kind, tuple[list[shapely.Geometry], list[int]]]:
    """Place the tile's parcels of every kind without overlaps; returns polygons and street numbers."""
    rng = rng_for(net.seed, "parcels", tile.cell)
    region = net.city.settled_region(tile.box)
    placed: list[shapely.Geometry] = []
    out: dict[Kind, tuple[list[shapely.Geometry], list[int]]] = {k: ([], []) for k in wanted}
    for kind, n in wanted.items():
        for _ in range(8 * n):
            if len(out[kind][0]) >= n:
                break
            got = place(net, tile, kind, rng, region)
            if got is None or (placed and shapely.intersects(np.array(placed, dtype=object), got[0]).any()):
                continue
            placed.append(got[0])
            out[kind][0].append(got[0])
            out[kind][1].append(got[1])
    return out


def _district(net: Network, geoms: NDArray[np.object_]) -> tuple[NDArray[np.str_], NDArray[np.str_]]:
    pts = shapely.point_on_surface(geoms)
    d = net.city.district_near(shapely.get_x(pts), shapely.get_y(pts))
    table = net.city.districts
    zh = np.append(table["name"].to_numpy().astype(str), "上海市")
    code = np.append(table["code"].fillna("310100").to_numpy().astype(str), "310100")
    return zh[d], code[d]


def compounds(net: Network, tile: Tile, geoms: list[shapely.Geometry], streets: list[int]) -> gpd.GeoDataFrame:
    """Residential compounds: name, address, households, year built, property manager, phone, status."""
    rng = rng_for(net.seed, "compound", tile.cell)
    g = np.array(geoms, dtype=object)
    n = len(g)
    if not n:
        return _empty(COMPOUND_FIELDS)
    pts = shapely.point_on_surface(g)
    u = net.city.urbanity_at(shapely.get_x(pts), shapely.get_y(pts))
    district, _ = _district(net, g)
    road = names.street_names(np.array(streets, dtype=np.int64))
    number = (rng.integers(1, 120, n) * 2 - 1).astype(str)
    far = 1.0 + 2.2 * u + rng.uniform(-0.3, 0.3, n)
    frame = pd.DataFrame({
        "name": np.char.add(names.place_stems(rng, n), names.choose(rng, names.COMPOUND_SUFFIX, n)),
        "address": np.char.add(np.char.add(np.char.add(district, road), number), "弄"),
        "households": np.maximum(20, shapely.area(g) * far / 95.0).astype(np.int64),
        "built_year": np.clip(np.round(rng.normal(2004 - 30 * u, 9)), 1920, 2024).astype(np.int64),
        "property_manager": names.people(rng, n), "contact_phone": names.mobiles(rng, n),
        "status": np.array(["in_service", "under_renovation", "retired"])[rng.choice(3, n, p=[0.95, 0.04, 0.01])],
    })
    return _lonlat(net, frame, g)


def sites(net: Network, tile: Tile, geoms: list[shapely.Geometry], streets: list[int]) -> gpd.GeoDataFrame:
    """Construction sites: permit, project, contractor, dates, manager, phone and a status matching the dates."""
    rng = rng_for(net.seed, "construction_site", tile.cell)
    g = np.array(geoms, dtype=object)
    n = len(g)
    if not n:
        return _empty(SITE_FIELDS)
    district, code = _district(net, g)
    start = np.array(names.dates(rng, n, "2021-01-01", "2026-06-30"), dtype="datetime64[D]")
    end = start + rng.integers(300, 1500, n).astype("timedelta64[D]")
    today = np.datetime64(DEMO_DATE, "D")
    status = np.where(start > today, "planned", np.where(end < today, "completed", "active"))
    status = np.where((status == "active") & (rng.random(n) < 0.1), "suspended", status)
    road = names.street_names(np.array(streets, dtype=np.int64))
    stamp = np.char.replace(start.astype(str), "-", "")
    serial = names.padded(rng.integers(0, 10_000, n), 4)
    frame = pd.DataFrame({
        "permit_no": np.char.add(np.char.add(code, stamp), serial),
        "project_name": np.char.add(np.char.add(district, road), names.choose(rng, names.SITE_KINDS, n)),
        "contractor": np.char.add(np.char.add("上海", names.place_stems(rng, n)),
                                  names.choose(rng, names.CONTRACTOR_SUFFIX, n)),
        "start_date": start.astype(str), "end_date": end.astype(str),
        "site_manager": names.people(rng, n), "manager_phone": names.mobiles(rng, n), "status": status,
    })
    return _lonlat(net, frame, g)


def _empty(columns: tuple[str, ...]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({c: [] for c in columns}, geometry=[], crs="EPSG:4326")


def _lonlat(net: Network, frame: pd.DataFrame, geoms: NDArray[np.object_]) -> gpd.GeoDataFrame:
    out = gpd.GeoDataFrame(frame, geometry=polygonal(net.city.frame.geoms_to_lonlat(geoms)), crs="EPSG:4326")
    if net.focus is not None:
        out = out[net.focus.contains(*net.city.frame.to_xy(*shapely.get_coordinates(
            shapely.point_on_surface(out.geometry.to_numpy())).T))]
    return out.reset_index(drop=True)
