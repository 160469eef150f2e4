"""Raw tiles match the store: the components meeting the tile, their attributes, geometries inside the buffered
tile, decoded by mapbox-vector-tile and by GDAL's MVT driver."""

from __future__ import annotations

import gzip
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import geopandas as gpd
import mapbox_vector_tile
import numpy as np
import pytest
import shapely

from tests.conftest import hydrants
from tests.tiles.conftest import decode, gdal_read
from tiles import TileEngine, TileFilter, TileSettings
from tiles.grid import EXTENT, TileID, buffered_mercator, lonlat_box, mercator_bounds, tiles_in
from twin.errors import InvalidQueryError
from twin.query.versions import as_of_stamp
from twin.store import Store

mvt_decode = mapbox_vector_tile.decode

CENTRE = (121.45, 31.25)


def _tile(z: int) -> TileID:
    return tiles_in((*CENTRE, *CENTRE), z)[0]


def _in_store(store: Store, layer: str, tile: TileID, buffer: int) -> set[str]:
    box = lonlat_box(buffered_mercator(tile, buffer))
    frame = store.features(layer, bbox=box)
    return set(frame.key[frame.intersects(shapely.box(*box))])


@pytest.mark.parametrize("layer", ["hydrant", "pipeline", "residential_compound"])
def test_raw_tile_holds_exactly_the_components_meeting_the_buffered_tile(engine: TileEngine, city: Store,
                                                                        layer: str, tmp_path: Path) -> None:
    tile = _tile(14)
    result = engine.tile((layer,), tile)
    features = decode(result.gz)[layer]["features"]
    keys = [f["properties"]["key"] for f in features]
    assert len(keys) == len(set(keys)) > 0
    assert set(keys) == _in_store(city, layer, tile, engine.settings.buffer)
    gdal = gdal_read(gzip.decompress(result.gz), tile.z, tile.x, tile.y, layer, tmp_path)
    assert set(gdal.key) == set(keys)
    assert set(gdal.status) <= set(city.catalogue[layer].statuses)
    # GDAL georeferences the tile: every geometry lies within the buffered tile, in Web Mercator
    grown = shapely.box(*buffered_mercator(tile, engine.settings.buffer + 1))
    assert gdal.geometry.within(grown).all()
    spec = city.catalogue[layer]
    plain = ["status", *(f.name for f in spec.fields if f.sensitive is None)]
    stored = city.features(layer, keys=keys).set_index("key")
    for f in features:
        row = stored.loc[f["properties"]["key"]]
        for name in plain:
            value = row[name]
            expected = None if value is None or (isinstance(value, float) and np.isnan(value)) else value
            assert f["properties"].get(name) == expected, (name, f["properties"])


def test_point_positions_are_the_stored_ones_to_a_tile_unit(engine: TileEngine, city: Store,
                                                            tmp_path: Path) -> None:
    tile = _tile(15)
    result = engine.tile(("hydrant",), tile)
    gdal = gdal_read(gzip.decompress(result.gz), tile.z, tile.x, tile.y, "hydrant", tmp_path).to_crs(4326)
    stored = city.features("hydrant", keys=list(gdal.key)).set_index("key").geometry
    left, _, right, _ = mercator_bounds(tile)
    unit_deg = (right - left) / EXTENT / 111_320 / np.cos(np.radians(CENTRE[1]))
    error = shapely.distance(gdal.geometry.to_numpy(), stored.loc[gdal.key].to_numpy())
    assert error.max() < 1.5 * unit_deg


def test_polygons_keep_their_area_and_winding_and_sensitive_fields_are_masked(engine: TileEngine,
                                                                             city: Store,
                                                                             tmp_path: Path) -> None:
    tile = _tile(16)
    result = engine.tile(("residential_compound",), tile)
    gdal = gdal_read(gzip.decompress(result.gz), tile.z, tile.x, tile.y, "residential_compound", tmp_path)
    assert len(gdal) > 0
    assert (gdal.property_manager == "张**").all() and (gdal.contact_phone == "138****1234").all()
    stored = city.features("residential_compound", keys=list(gdal.key)).set_index("key").to_crs(3857)
    inside = shapely.box(*buffered_mercator(tile, engine.settings.buffer))
    expected = stored.geometry.intersection(inside).area.loc[gdal.key].to_numpy()
    # GDAL reads exterior rings by their winding; a wrongly wound ring would come back as a hole or vanish
    assert np.allclose(gdal.area.to_numpy(), expected, rtol=0.05)


def test_combined_tile_has_one_layer_per_requested_layer(engine: TileEngine) -> None:
    result = engine.tile(("hydrant", "pipeline", "residential_compound"), _tile(14))
    assert set(decode(result.gz)) == {"hydrant", "pipeline", "residential_compound"}


def test_tiles_outside_the_data_are_empty(engine: TileEngine) -> None:
    far = tiles_in((100.0, 10.0, 100.0, 10.0), 14)[0]
    assert engine.tile(("hydrant",), far).empty
    assert engine.tile(("hydrant", "pipeline"), tiles_in((100.0, 10.0, 100.0, 10.0), 6)[0]).empty


def test_filter_and_datetime_select_like_the_features_api(engine: TileEngine, city: Store) -> None:
    tile = _tile(14)
    key = decode(engine.tile(("hydrant",), tile).gz)["hydrant"]["features"][0]["properties"]["key"]
    city.edit(key, author="test", properties={"status": "faulty"})
    faulty = decode(engine.tile(("hydrant",), tile, TileFilter(cql="status = 'faulty'")).gz)["hydrant"]["features"]
    assert [f["properties"]["key"] for f in faulty] == [key]
    as_json = TileFilter(cql='{"op": "=", "args": [{"property": "status"}, "faulty"]}', lang="cql2-json")
    assert len(decode(engine.tile(("hydrant",), tile, as_json).gz)["hydrant"]["features"]) == 1
    edited_at = city.get(key).updated_at.iloc[0]
    recent = decode(engine.tile(("hydrant",), tile, TileFilter(datetime=f"{edited_at}/..")).gz)
    assert [f["properties"]["key"] for f in recent["hydrant"]["features"]] == [key]
    # below min_zoom the filtered tile is aggregated from the matching components only
    low = decode(engine.tile(("hydrant",), _tile(10), TileFilter(cql="status = 'faulty'")).gz)
    assert sum(f["properties"]["count"] for f in low["hydrant"]["features"]) == 1


@pytest.mark.parametrize("text", ["status = ", "nonsense(((", "no_such_field = 1"])
def test_filters_that_do_not_parse_or_name_unknown_fields_are_refused(engine: TileEngine, text: str) -> None:
    with pytest.raises(InvalidQueryError):
        engine.tile(("hydrant",), _tile(14), TileFilter(cql=text))


def test_no_tile_exceeds_the_size_limit(city: Store) -> None:
    dense = hydrants(3000, seed=9, box=(121.445, 31.245, 121.455, 31.255))
    dense["road"] = [f"{i}号" + "很长的道路名称" * 3 for i in range(len(dense))]
    city.upsert("hydrant", dense, author="test", source="test")
    tile = tiles_in((*CENTRE, *CENTRE), 14)[0]
    small, full = TileEngine(city, TileSettings(max_tile_kb=16, warm=False)), TileEngine(city, TileSettings(warm=False))
    try:
        drawn = small.renderer.render(("hydrant",), tile, TileFilter())
        assert len(drawn.data) <= 16_000 and drawn.mode == "cells"
        assert sum(f["properties"]["count"] for f in mvt_decode(drawn.data)["hydrant"]["features"]) >= 3000
        rich = full.renderer.render(("hydrant",), tile, TileFilter())
        assert len(rich.data) > 16_000 and rich.mode == "full"
    finally:
        small.close()
        full.close()


def test_a_layer_drawn_raw_at_every_zoom_reaches_the_tiles_at_the_edge_of_the_world(engine: TileEngine,
                                                                                   city: Store) -> None:
    # Shanghai lies in the last column of zoom 2 and the eastern half of zoom 1: a buffered tile there must stop
    # at the antimeridian, not wrap round to it from the west (which found nothing)
    district = gpd.GeoDataFrame({"name": ["测试区"]}, geometry=[shapely.box(121.42, 31.22, 121.48, 31.28)],
                                crs="EPSG:4326")
    city.upsert("district", district, author="test", source="test")
    for z in range(0, 4):
        tile = _tile(z)
        features = decode(engine.tile(("district",), tile).gz)["district"]["features"]
        assert [f["properties"]["name"] for f in features] == ["测试区"], tile


@pytest.mark.parametrize("gap", [1e-9, 1e-7, 3e-6])
def test_points_a_hair_outside_the_buffered_tile_are_left_out_and_a_hair_inside_kept(store: Store, gap: float
                                                                                     ) -> None:
    # whether an engine's index returns such a point depends on how it rounds boxes; the tile must not
    from tiles.grid import xy_to_lonlat

    tile = _tile(14)
    engine = TileEngine(store, TileSettings(cache_dir=None, warm=False))
    left, bottom, right, top = buffered_mercator(tile, engine.settings.buffer)
    size = right - left
    xs = np.array([left - gap * size, left + gap * size, right + gap * size, right - gap * size])
    lon, lat = xy_to_lonlat(xs, np.full(4, (bottom + top) / 2))
    frame = hydrants(4)
    frame.geometry = shapely.points(lon, lat)
    frame["road"] = ["outside-west", "inside-west", "outside-east", "inside-east"]
    store.upsert("hydrant", frame, author="t", source="t")
    try:
        drawn = {f["properties"]["road"] for f in decode(engine.tile(("hydrant",), tile).gz)["hydrant"]["features"]}
    finally:
        engine.close()
    assert drawn == {"inside-west", "inside-east"}


def test_a_tile_is_drawn_in_turn_with_the_other_requests_of_an_in_process_engine(engine: TileEngine,
                                                                                 city: Store) -> None:
    """GeoPackage: a tile waits while another request of the process holds the turn, then is drawn; PostGIS
    requests overlap (their time is spent waiting for the server)."""
    done = threading.Event()

    def draw() -> None:
        engine.draw(("hydrant",), _tile(14))
        done.set()

    with city.turn():
        thread = threading.Thread(target=draw)
        thread.start()
        overlapped = done.wait(2.0)
    thread.join(30)
    assert done.is_set()
    assert overlapped is (city.engine == "postgis")


def test_an_as_of_tile_draws_the_components_as_they_were(engine: TileEngine, city: Store) -> None:
    tile = _tile(14)

    def statuses(flt: TileFilter = TileFilter()) -> dict[str, str]:
        return {f["properties"]["key"]: f["properties"]["status"]
                for f in decode(engine.tile(("hydrant",), tile, flt).gz).get("hydrant", {"features": []})["features"]}

    def counted(z: int, flt: TileFilter = TileFilter()) -> int:
        cells = decode(engine.tile(("hydrant",), _tile(z), flt).gz)["hydrant"]["features"]
        return sum(int(c["properties"]["count"]) for c in cells)

    before, cells_before = statuses(), counted(10)
    time.sleep(0.002)
    moment = as_of_stamp(datetime.now(UTC).isoformat())
    time.sleep(0.002)
    keys = sorted(before)
    city.edit(keys[0], author="t", properties={"status": "retired"})
    city.delete("hydrant", [keys[1]], author="t")
    engine.refresh("hydrant")
    now = statuses()
    assert now[keys[0]] == "retired" and keys[1] not in now
    assert statuses(TileFilter(as_of=moment)) == before
    assert counted(10, TileFilter(as_of=moment)) == cells_before == counted(10) + 1
    in_service = TileFilter(cql="status = 'in_service'", as_of=moment)  # a filter applies to the past as it was
    assert statuses(in_service) == {k: s for k, s in before.items() if s == "in_service"}
    assert keys[0] in statuses(in_service) and keys[0] not in statuses(TileFilter(cql="status = 'in_service'"))
