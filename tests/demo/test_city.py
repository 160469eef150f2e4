"""The committed real data and the city model built from it."""

from __future__ import annotations

import numpy as np
import pyogrio
import shapely

from twin.crs import wgs84_to_gcj02
from twin.demo import sources
from twin.demo.city import City
from twin.demo.tiles import city_tiles
from twin.keys import geohash_bounds

PEOPLES_SQUARE = (121.4737, 31.2304)  # WGS84


def test_districts_are_converted_from_gcj02_with_their_official_codes() -> None:
    d = sources.load_districts()
    assert len(d) == 16 and d["code"].str.fullmatch(r"31\d{4}").all() and d["code"].is_unique
    assert d.set_index("name").loc["黄浦区", "code"] == "310101" and d["name_en"].notna().all()
    assert d.geometry.is_valid.all()
    square = shapely.Point(*PEOPLES_SQUARE)
    assert d.geometry[d.geometry.contains(square)].index.tolist() == d.index[d["name"] == "黄浦区"].tolist()
    raw = pyogrio.read_dataframe(sources.DISTRICTS)
    moved = np.asarray(wgs84_to_gcj02(*shapely.get_coordinates(d.geometry.iloc[0].exterior).T))
    original = shapely.get_coordinates(raw.geometry.iloc[0].exterior).T
    assert np.abs(moved - original).max() < 1e-6  # converting back gives the published GCJ-02 outline


def test_roads_metro_and_heritage_load_in_full() -> None:
    roads = sources.load_roads()
    assert len(roads) > 25_000 and set(roads["highway"]) >= {"motorway", "primary", "secondary"}
    metro = sources.load_metro()
    assert metro["name"].is_unique and metro["lines"].str.contains(",").any()  # transfer stations merged
    assert len(sources.load_heritage()) == 1408


def test_urbanity_peaks_in_the_centre_and_settled_land_excludes_the_river(city: City) -> None:
    x, y = city.frame.to_xy(np.array([PEOPLES_SQUARE[0], 121.40]), np.array([PEOPLES_SQUARE[1], 31.62]))
    centre, chongming = city.urbanity_at(x, y)
    assert centre > 0.7 > 0.2 > chongming
    assert 6.0 < city.water.area / 1e6 < 15.0  # km² of the Huangpu between Xuhui and Yangpu
    along = shapely.get_coordinates(shapely.segmentize(city.road_xy, 20.0))
    on_water = shapely.contains_xy(city.water, along[:, 0], along[:, 1])
    assert on_water.mean() < 1e-4  # the river mask spares the riverside roads
    assert city.settled_at(x[:1], y[:1])[0]
    assert 5_000 < city.settled.sum() * (city.grid.cell / 1000) ** 2 < 7_500  # km², Shanghai's land is ~6,340


def test_tiles_are_geohash_cells_in_key_order(city: City) -> None:
    tiles = city_tiles(city)
    cells = [t.cell for t in tiles]
    assert cells == sorted(cells) and 300 < len(cells) < 500
    minx, miny, maxx, maxy = geohash_bounds(cells[0])
    lon, lat = city.frame.to_lonlat(np.array(tiles[0].box[::2]), np.array(tiles[0].box[1::2]))
    np.testing.assert_allclose([lon[0], lat[0], lon[1], lat[1]], [minx, miny, maxx, maxy])
