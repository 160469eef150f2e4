"""Area scope in the tile engine: raw tiles hold only what meets the area, aggregate counts add up to the features
API's numberMatched for the same scope, and no view is ever served a tile drawn for another."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.tiles.conftest import BOX, admin_areas, area_keys, decode, seen_keys
from tiles import TileEngine, TileFilter, TileSettings
from tiles.grid import TileID, buffered_mercator, lonlat_box, tiles_in
from tiles.view import View
from twin.access import Gate, Principal
from twin.errors import OutOfScopeError
from twin.model.query import FeatureQuery
from twin.store import Store

LAYERS = ("hydrant", "pipeline", "residential_compound")
#: Matches every component: forces the aggregate cells to be counted from the components themselves.
EVERYTHING = TileFilter(cql="status <> 'no such status'")


@pytest.fixture(scope="module")
def areas_engine(areas_city: Store) -> TileEngine:
    eng = TileEngine(areas_city, TileSettings(warm=False))
    yield eng
    eng.close()


def officer(gate: Gate, area: str) -> Principal:
    return gate.principal(f"officer-{area}", "area_officer", area, via="token")


def view_of(gate: Gate, area: str, layers: tuple[str, ...] = LAYERS) -> View:
    return View.of(officer(gate, area), layers, gate.store.catalogue)


def features(engine: TileEngine, layer: str, tile: TileID, view: View, flt: TileFilter = TileFilter()) -> list[dict]:
    return decode(engine.tile((layer,), tile, flt, view).gz).get(layer, {}).get("features", [])


def number_matched(store: Store, layer: str, view: View) -> int:
    """The features API's numberMatched for ``layer`` with the view's scope."""
    with store.read() as snap:
        return snap.count(FeatureQuery(layer=layer, scope=view.area))[0]


def zoom_total(engine: TileEngine, layer: str, z: int, view: View, flt: TileFilter = TileFilter(),
               bounds: tuple[float, float, float, float] | None = None) -> int:
    """Aggregate counts summed over every tile of zoom ``z`` that meets the view's area (or ``bounds``)."""
    total = 0
    for tile in tiles_in(bounds or view.area.bounds, z):
        try:
            total += sum(f["properties"]["count"] for f in features(engine, layer, tile, view, flt))
        except OutOfScopeError:
            continue
    return total


@pytest.mark.parametrize("layer", LAYERS)
def test_scoped_raw_tiles_hold_exactly_the_components_meeting_the_area_and_the_tile(
        areas_engine: TileEngine, areas_city: Store, areas_gate: Gate, layer: str) -> None:
    checked = 0
    for key in area_keys(areas_city)[::2]:
        view = view_of(areas_gate, key)
        seen = seen_keys(areas_city, layer, view.area)
        for tile in tiles_in(view.area.bounds, 15)[::3]:
            box = lonlat_box(buffered_mercator(tile, areas_engine.settings.buffer))
            if not view.area.meets_box(box):
                continue
            frame = areas_city.features(layer, bbox=box)
            expected = set(frame.key[frame.intersects(shapely.box(*box))]) & seen
            got = {f["properties"]["key"] for f in features(areas_engine, layer, tile, view)}
            assert got == expected, (key, tile)
            checked += len(got)
    assert checked > 50


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_scoped_aggregate_counts_over_a_zoom_add_up_to_number_matched(areas_engine: TileEngine,
                                                                      areas_city: Store,
                                                                      areas_gate: Gate, data: st.DataObject) -> None:
    key = data.draw(st.sampled_from(area_keys(areas_city)), label="area")
    layer = data.draw(st.sampled_from(LAYERS), label="layer")
    z = data.draw(st.integers(0, areas_city.catalogue[layer].min_zoom - 1), label="zoom")
    view = view_of(areas_gate, key)
    expected = number_matched(areas_city, layer, view)
    assert expected == len(seen_keys(areas_city, layer, view.area))
    assert zoom_total(areas_engine, layer, z, view) == expected


def test_a_line_entering_the_area_counts_once_though_its_representative_point_lies_outside(
        city: Store, tmp_path: Path) -> None:
    admin_areas(city)
    committees = city.features("committee")
    target = committees.geometry.iloc[0]
    inside, outside = target.representative_point(), shapely.Point(BOX[0] - 0.01, BOX[1] - 0.01)
    city.delete("pipeline", list(city.features("pipeline").key), author="test")
    gate, engine = Gate(city), TileEngine(city, TileSettings(warm=False))
    try:
        view = view_of(gate, committees.key.iloc[0])
        # a long line from far outside the area to a point inside it: its representative point is outside,
        # and no stored cell of the area holds anything
        line = shapely.LineString([(outside.x - 0.01, outside.y - 0.01), (outside.x, outside.y), (inside.x, inside.y)])
        assert not target.contains(shapely.point_on_surface(line)) and line.intersects(target)
        city.upsert("pipeline", gpd.GeoDataFrame({"kind": ["gas"], "diameter": [300]}, geometry=[line],
                                                 crs="EPSG:4326"), author="test", source="test")
        for z in (4, 8, 10, 12):
            assert zoom_total(engine, "pipeline", z, view) == 1 == number_matched(city, "pipeline", view)
            assert zoom_total(engine, "pipeline", z, view, EVERYTHING) == 1
        assert zoom_total(engine, "pipeline", 10, View(), bounds=line.bounds) == 1
    finally:
        engine.close()
        gate.close()


def test_scoped_cells_from_stored_counts_equal_cells_counted_from_scratch(areas_engine: TileEngine,
                                                                         areas_city: Store,
                                                                         areas_gate: Gate) -> None:
    compared = 0
    for key in area_keys(areas_city)[::3]:
        view = view_of(areas_gate, key)
        for layer, z in (("hydrant", 12), ("hydrant", 9), ("pipeline", 11), ("residential_compound", 10)):
            for tile in tiles_in(view.area.bounds, z):
                try:
                    stored = features(areas_engine, layer, tile, view)
                except OutOfScopeError:
                    continue
                fresh = features(areas_engine, layer, tile, view, EVERYTHING)

                def cells(found: list[dict]) -> list[tuple]:
                    return sorted(tuple(sorted((k, v) for k, v in f["properties"].items() if k.startswith("count")))
                                  for f in found if f["properties"]["count"])

                assert cells(stored) == cells(fresh), (key, layer, tile)
                compared += len(stored)
    assert compared > 100


def test_a_tile_that_misses_the_area_is_out_of_scope(areas_engine: TileEngine, areas_city: Store,
                                                    areas_gate: Gate) -> None:
    view = view_of(areas_gate, area_keys(areas_city)[0])
    far = tiles_in((121.0, 31.0, 121.0, 31.0), 14)[0]
    with pytest.raises(OutOfScopeError):
        areas_engine.tile(("hydrant",), far, view=view)
    assert areas_engine.tile(("hydrant",), far).empty  # unscoped, the same tile is merely empty


def _shared_tile(store: Store, gate: Gate) -> tuple[View, View, TileID]:
    """Two committee views and a z15 tile meeting both, with hydrants of each in it."""
    frame = store.features("committee")
    hydrants = store.features("hydrant")
    for i in range(len(frame)):
        for j in range(i + 1, len(frame)):
            a, b = frame.geometry.iloc[i], frame.geometry.iloc[j]
            if not a.touches(b):
                continue
            border = a.intersection(b).representative_point()
            for tile in tiles_in((border.x, border.y, border.x, border.y), 15):
                box = shapely.box(*lonlat_box(buffered_mercator(tile, 64)))
                here = hydrants[hydrants.intersects(box)]
                if here.intersects(a).any() and here.intersects(b).any() and not here.intersects(a).all():
                    return view_of(gate, frame.key.iloc[i]), view_of(gate, frame.key.iloc[j]), tile
    raise AssertionError("no tile straddles two committees with hydrants on both sides")


def test_two_areas_never_get_each_others_cached_tile_in_memory_or_on_disk(areas_city: Store,
                                                                        areas_gate: Gate, tmp_path: Path) -> None:
    first, second, tile = _shared_tile(areas_city, areas_gate)
    settings = TileSettings(cache_dir=tmp_path / "disk", warm=False)
    engine = TileEngine(areas_city, settings)
    try:
        a = engine.tile(("hydrant",), tile, view=first)
        b = engine.tile(("hydrant",), tile, view=second)
        assert (a.source, b.source) == ("drawn", "drawn")
        assert a.etag != b.etag and decode(a.gz) != decode(b.gz)
        assert engine.tile(("hydrant",), tile, view=first).source == "memory"
        assert engine.tile(("hydrant",), tile, view=second).gz == b.gz
        keys = {f["properties"]["key"] for f in decode(a.gz)["hydrant"]["features"]}
        assert keys <= seen_keys(areas_city, "hydrant", first.area)
    finally:
        engine.close()
    again = TileEngine(areas_city, settings)
    try:
        for view, drawn in ((second, b), (first, a)):
            result = again.tile(("hydrant",), tile, view=view)
            assert result.source == "disk" and result.gz == drawn.gz and result.etag == drawn.etag
        unscoped = again.tile(("hydrant",), tile)
        assert unscoped.source == "drawn" and unscoped.etag not in (a.etag, b.etag)
    finally:
        again.close()


def test_an_edit_invalidates_the_tile_of_every_view(city: Store, tmp_path: Path) -> None:
    admin_areas(city)
    gate = Gate(city)
    first, second, tile = _shared_tile(city, gate)
    engine = TileEngine(city, TileSettings(cache_dir=tmp_path / "disk", warm=False))
    views = (first, second, View())
    try:
        before = [decode(engine.tile(("hydrant",), tile, view=v).gz)["hydrant"]["features"] for v in views]
        key = before[0][0]["properties"]["key"]
        city.edit(key, author="test", properties={"status": "faulty"})
        for view, old in zip(views, before, strict=True):
            result = engine.tile(("hydrant",), tile, view=view)
            statuses = {f["properties"]["key"]: f["properties"]["status"]
                        for f in decode(result.gz)["hydrant"]["features"]}
            assert result.source == "drawn"
            assert {f["properties"]["key"] for f in old} == set(statuses)
            if key in statuses:
                assert statuses[key] == "faulty"
    finally:
        engine.close()
        gate.close()
