"""Street lights, hydrants and pipelines along real roads and synthetic streets, on a seeded subset."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from twin.demo import pipelines, roads
from twin.demo.city import City
from twin.demo.networks import Network, TileLines, hydrants, street_lights, tile_lines
from twin.demo.streets import MIN_STREET, SETBACK, grid_lines
from twin.demo.tiles import Tile, city_tiles

CENTRE_TILE = "wtw3s"  # People's Square and the Bund


@pytest.fixture(scope="module")
def tile(city: City) -> Tile:
    return next(t for t in city_tiles(city) if t.cell == CENTRE_TILE)


@pytest.fixture(scope="module")
def lines(network: Network, tile: Tile) -> TileLines:
    return tile_lines(network, tile)


def _xy(city: City, frame) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[no-untyped-def]
    return city.frame.to_xy(shapely.get_x(frame.geometry.to_numpy()), shapely.get_y(frame.geometry.to_numpy()))


def test_synthetic_streets_follow_their_block_and_keep_off_the_main_roads(network: Network, tile: Tile,
                                                                         lines: TileLines) -> None:
    street = lines.cls == roads.STREET
    assert street.sum() > 100 and (~street).sum() > 50
    assert shapely.length(lines.geoms[street]).min() >= MIN_STREET
    near = network.road_tree.query(lines.geoms[street], predicate="dwithin", distance=SETBACK - 2.0)  # arcs as chords
    assert near.size == 0  # every synthetic street stays clear of the real roads
    assert shapely.length(shapely.intersection(lines.geoms[street], network.city.water)).max() < 0.01
    i = int(network.blocks.tree.query(shapely.box(*tile.box), predicate="intersects")[0])
    grid, _ = grid_lines(network.blocks, i, network.blocks.polygons[i])
    d = np.diff(shapely.get_coordinates(grid).reshape(-1, 2, 2), axis=1)[:, 0]
    angle = np.mod(np.arctan2(d[:, 1], d[:, 0]) - network.blocks.angle[i], np.pi / 2)
    assert np.allclose(np.minimum(angle, np.pi / 2 - angle), 0, atol=1e-6)  # the grid is square to its block


def test_street_lights_stand_every_30_to_40_m_beside_the_road(network: Network, tile: Tile, city: City,
                                                              lines: TileLines) -> None:
    lights = street_lights(network, tile, lines)
    assert len(lights) > 20_000
    x, y = _xy(city, lights)
    pts = shapely.points(x, y)
    tree = shapely.STRtree(lines.geoms)
    _, dist = tree.query_nearest(pts, return_distance=True, all_matches=False)
    assert np.quantile(dist, 0.9) < 10.5 and np.median(dist) > 2.5  # off the centre line, on the pavement
    per_km = len(lights) / (shapely.length(lines.geoms).sum() / 1000)
    assert 2 * 1000 / 40 * 0.9 < per_km < 2 * 1000 / 30 * 1.05  # both sides, 30-40 m apart
    assert set(lights["lamp_type"]) <= {"led", "sodium", "metal_halide"}
    assert lights["pole_height"].between(6.0, 14.0).all() and (lights["pole_height"] * 2 % 1 == 0).all()
    main = lights["road"].str.contains("#")  # along a real OSM road link
    assert lights.loc[main, "pole_height"].mean() > lights.loc[~main, "pole_height"].mean() + 2
    share = lights["status"].value_counts(normalize=True)
    assert 0.93 < share["in_service"] < 0.98 and share["faulty"] > 0.01
    assert lights["circuit"].str.fullmatch(r"WTW3S-\d{4}").all() and lights["road"].notna().all()


def test_hydrants_every_120_m_alternating_sides(network: Network, tile: Tile, city: City, lines: TileLines) -> None:
    found = hydrants(network, tile, lines)
    with_hydrants = roads.table("hydrants")[lines.cls]
    per_km = len(found) / (shapely.length(lines.geoms[with_hydrants]).sum() / 1000)
    assert 1000 / 130 * 0.85 < per_km < 1000 / 110 * 1.02
    assert found["owner"].str.endswith("供水管理所").all()
    assert found["pressure"].between(0, 0.5).all()
    assert (found.loc[found["status"] == "in_service", "pressure"] >= 0.18).all()
    assert found["inspected_on"].between("2023-07-01", "2025-06-30").all()
    x, y = _xy(city, found)
    assert not shapely.contains_xy(city.water, x, y).any()


def test_tiles_are_reproducible_and_the_seed_matters(network: Network, city: City) -> None:
    tile = next(t for t in city_tiles(city) if t.cell == "wtw0y")  # suburban Minhang: a light tile
    a = hydrants(network, tile, tile_lines(network, tile))
    b = hydrants(network, tile, tile_lines(network, tile))
    assert len(a) > 500 and a.equals(b)
    other = Network(network.city, network.blocks, network.seed + 1)
    c = hydrants(other, tile, tile_lines(other, tile))
    assert not shapely.equals(a.geometry.to_numpy()[:100], c.geometry.to_numpy()[:100]).all()


def test_pipelines_follow_the_roads_with_plausible_attributes(city: City) -> None:
    pipes = pipelines.pipelines(city, 7, 26_800)
    metres = shapely.length(city.frame.geoms_to_xy(pipes.geometry.to_numpy())).sum()
    assert 0.95 * 26_800e3 < metres < 1.05 * 26_800e3
    kinds = pipes["kind"].value_counts()
    assert set(kinds.index) == set(pipelines.KINDS) and kinds["heat"] < kinds["water_supply"] / 5
    gas = pipes[pipes["kind"] == "gas"]
    assert set(gas["material"]) <= {"steel", "pe"} and (pipes.loc[pipes["kind"] == "drainage", "pressure_class"]
                                                        == "none").all()
    sample = pipes.sample(300, random_state=1)
    x, y = city.frame.to_xy(*shapely.get_coordinates(shapely.point_on_surface(sample.geometry.to_numpy())).T)
    _, dist = shapely.STRtree(city.road_xy).query_nearest(shapely.points(x, y), return_distance=True)
    assert dist.max() < 8.0 and np.median(dist) > 1.0  # in the road, off its centre line
