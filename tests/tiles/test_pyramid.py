"""``twin tiles build`` writes a PMTiles pyramid that GDAL and the pmtiles reader open; the service serves from it
only what is still current, and draws the rest."""

from __future__ import annotations

from pathlib import Path

import pyogrio
import pytest
import shapely
from pmtiles.reader import MmapSource, Reader
from typer.testing import CliRunner

from tests.conftest import hydrants
from tests.engines import drop, new_target
from tests.tiles.conftest import BOX, admin_areas, decode, pipelines
from tiles import TileEngine, TileSettings
from tiles.grid import buffered_mercator, lonlat_box, tiles_in
from tiles.view import View
from twin.access import Gate
from twin.catalogue import Catalogue
from twin.cli import app
from twin.errors import StoreError
from twin.store import Store, open_store

SMALL = (121.44, 31.24, 121.46, 31.26)


def _build(store: Store, out: Path, *args: str) -> str:
    result = CliRunner().invoke(app, ["tiles", "build", "--store", store.location, "--out", str(out), *args])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def pyramid(city: Store, tmp_path: Path) -> Path:
    out = tmp_path / "city.pmtiles"
    text = _build(city, out, "--layers", "hydrant,pipeline", "--minzoom", "10", "--maxzoom", "14",
                  "--bbox", ",".join(map(str, SMALL)))
    assert "wrote" in text and out.exists()
    return out


def test_pyramid_opens_in_gdal_and_the_pmtiles_reader(pyramid: Path, city: Store) -> None:
    assert {"hydrant", "pipeline"} <= {name for name, _ in pyogrio.list_layers(pyramid)}
    gdal = pyogrio.read_dataframe(pyramid, layer="hydrant", ZOOM_LEVEL="14")
    stored = city.features("hydrant", bbox=SMALL)
    assert set(stored.key) <= set(gdal.key)
    with open(pyramid, "rb") as f:
        reader = Reader(MmapSource(f))
        header, meta = reader.header(), reader.metadata()
        assert (header["min_zoom"], header["max_zoom"]) == (10, 14)
        assert meta["twin"]["layers"] == ["hydrant", "pipeline"]
        tile = tiles_in((121.45, 31.25, 121.45, 31.25), 12)[0]
        cells = decode(reader.get(tile.z, tile.x, tile.y))["hydrant"]["features"]
        assert sum(c["properties"]["count"] for c in cells) > 0


def test_service_serves_the_pyramid_while_current_and_draws_the_rest(pyramid: Path, city: Store) -> None:
    engine = TileEngine(city, TileSettings(pyramid=pyramid, warm=False))
    layers = ("hydrant", "pipeline")
    try:
        inside = [t for t in tiles_in(SMALL, 14) if decode(engine.tile(layers, t).gz)]
        assert inside and engine.tile(layers, inside[0]).source == "memory"
        engine.memory = type(engine.memory)(engine.memory.max_bytes)  # forget what was served
        assert all(engine.tile(layers, t).source == "pyramid" for t in inside)
        assert engine.tile(("pipeline", "hydrant"), inside[0]).source == "pyramid"  # the same layers, reordered
        assert engine.tile(layers, tiles_in(SMALL, 15)[0]).source == "drawn"  # a zoom it lacks
        assert engine.tile(("hydrant",), inside[0]).source == "drawn"  # another layer set
        edited = decode(engine.tile(layers, inside[0]).gz)["hydrant"]["features"][0]["properties"]["key"]
        city.edit(edited, author="test", properties={"status": "faulty"})
        engine.memory = type(engine.memory)(engine.memory.max_bytes)
        result = engine.tile(layers, inside[0])
        assert result.source == "drawn"
        statuses = {f["properties"]["key"]: f["properties"]["status"]
                    for f in decode(result.gz)["hydrant"]["features"]}
        assert statuses[edited] == "faulty"
        point = city.get(edited).geometry.iloc[0]
        untouched = [t for t in inside
                     if not shapely.box(*lonlat_box(buffered_mercator(t, engine.settings.buffer))).intersects(point)]
        assert untouched and engine.tile(layers, untouched[0]).source == "pyramid"
    finally:
        engine.close()


@pytest.mark.parametrize(("args", "words"), [
    (["--layers", "hydrant", "--minzoom", "12", "--maxzoom", "10"], "--minzoom 12 is above --maxzoom 10"),
    (["--layers", "hydrant", "--maxzoom", "40"], "--maxzoom 40 is out of range"),
    (["--layers", "nope"], "unknown layer 'nope'"),
    (["--layers", "hydrant", "--bbox", "1,2,3"], "--bbox needs 4 numbers"),
    (["--layers", "hydrant", "--bbox", "100,10,100.01,10.01", "--minzoom", "14", "--maxzoom", "14"],
     "has data"),
])
def test_build_refuses_bad_options_clearly(city: Store, tmp_path: Path, args: list[str],
                                           words: str) -> None:
    out = tmp_path / "x.pmtiles"
    result = CliRunner().invoke(app, ["tiles", "build", "--store", city.location, "--out", str(out), *args])
    assert result.exit_code == 1 and words in " ".join(result.output.split())
    assert not out.exists()


def test_a_pyramid_of_another_store_is_not_served(pyramid: Path, catalogue: Catalogue, tmp_path: Path) -> None:
    target = new_target(tmp_path, "other")
    other = open_store(target, catalogue)  # same layers, same changeset numbers, other data
    other.upsert("hydrant", hydrants(400, seed=77, box=BOX), author="test", source="test")
    other.upsert("pipeline", pipelines(120, seed=78), author="test", source="test")
    engine = TileEngine(other, TileSettings(pyramid=pyramid, warm=False))
    try:
        assert engine.pyramid is None
        tile = tiles_in(SMALL, 14)[0]
        assert engine.tile(("hydrant", "pipeline"), tile).source == "drawn"
    finally:
        engine.close()
        other.close()
        drop(target)


def test_a_file_that_is_not_a_pyramid_is_refused(city: Store, tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.pmtiles"
    bogus.write_bytes(b"not a pmtiles file at all")
    with pytest.raises(StoreError, match="not a readable PMTiles pyramid"):
        TileEngine(city, TileSettings(pyramid=bogus, warm=False))


def test_the_pyramid_serves_only_callers_who_see_the_whole_city_masked(city: Store, tmp_path: Path) -> None:
    admin_areas(city)
    out = tmp_path / "compounds.pmtiles"
    _build(city, out, "--layers", "residential_compound", "--minzoom", "15", "--maxzoom", "15",
           "--bbox", ",".join(map(str, SMALL)))
    gate, engine = Gate(city), TileEngine(city, TileSettings(pyramid=out, warm=False))
    layers = ("residential_compound",)
    try:
        tile = next(t for t in tiles_in(SMALL, 15) if engine.draw(layers, t)[0])
        box = lonlat_box(buffered_mercator(tile, engine.settings.buffer))
        near = city.features("committee", bbox=box)
        committee = near.key[near.intersects(shapely.box(*box))].iloc[0]
        views = {role: View.of(gate.principal(role, role, area, via="token"), layers, city.catalogue)
                 for role, area in (("planner", None), ("gis_editor", None), ("admin", None),
                                    ("area_officer", committee))}
        sources = {role: engine.tile(layers, tile, view=view).source for role, view in views.items()}
        assert sources == {"planner": "pyramid", "gis_editor": "memory", "admin": "drawn", "area_officer": "drawn"}
        managers = {f["properties"]["property_manager"]
                    for f in decode(engine.tile(layers, tile, view=views["admin"]).gz)["residential_compound"]
                    ["features"]}
        assert managers == {"张三丰"}
    finally:
        engine.close()
        gate.close()
