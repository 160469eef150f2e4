"""Export to every format, and the round trip import → export → import."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import shapely

from tests.engines import drop, new_target
from tests.io.conftest import hydrant_frame, run, write
from twin.catalogue import Catalogue
from twin.errors import ExportError
from twin.geodesy import haversine
from twin.io import ExportOptions, export_layer
from twin.store import open_store

#: Coordinates must come back within this distance after a round trip through any format.
TOLERANCE_M = 0.01
FORMATS = ["gpkg", "shp", "geojson", "csv", "fgb"]


def _compare(a, b):
    fa = a.features("hydrant").set_index("key").sort_index()
    fb = b.features("hydrant").set_index("key").sort_index()
    assert list(fa.index) == list(fb.index)
    dist = [haversine(np.array([p.x]), np.array([p.y]), q.x, q.y)[0]
            for p, q in zip(fa.geometry, fb.geometry, strict=True)]
    assert max(dist) < TOLERANCE_M
    cols = ["kind", "outlet_diameter", "road", "status"]
    assert fa[cols].equals(fb[cols])


@pytest.fixture
def filled(store, tmp_path):
    run(store, write(hydrant_frame(40, seed=5), tmp_path / "seed.gpkg"))
    return store


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("crs", [None, "gcj02", "EPSG:4549"])
def test_round_trip_keeps_keys_and_coordinates(tmp_path, filled, catalogue: Catalogue, fmt, crs):
    report = export_layer(filled, "hydrant", tmp_path / "out", ExportOptions(format=fmt, crs=crs, page_size=15))
    assert report.count == 40 and len(report.paths) == 1
    target = new_target(tmp_path, "fresh")
    fresh = open_store(target, catalogue)
    given = crs if crs == "gcj02" or fmt == "csv" else None  # GCJ-02 files say WGS84; CSV says nothing
    try:
        back = run(fresh, tmp_path / report.paths[0], crs=given)
        assert (back.inserted, back.rejected) == (40, 0)
        _compare(filled, fresh)
        again = run(filled, tmp_path / report.paths[0], crs=given)
        assert (again.inserted, again.updated, again.unchanged) == (0, 0, 40)
    finally:
        fresh.close()
        drop(target)


def test_shapefile_export_writes_utf8_cpg_and_cuts_long_field_names(tmp_path, filled):
    report = export_layer(filled, "hydrant", tmp_path / "h.shp", ExportOptions(format="shp"))
    assert report.renamed_fields == {"outlet_diameter": "outlet_dia", "inspected_on": "inspected_"}
    assert (tmp_path / "h.cpg").read_text().strip() == "UTF-8"
    info = pyogrio.read_info(tmp_path / "h.shp")
    assert "outlet_dia" in list(info["fields"])
    roads = set(pyogrio.read_dataframe(tmp_path / "h.shp")["road"])
    assert roads == set(filled.features("hydrant")["road"])


def test_shapefile_names_stay_unique_when_cut():
    from twin.io.export import shapefile_names

    assert shapefile_names(["protection_batch", "protection_level", "name"]) == {
        "protection_batch": "protection", "protection_level": "protecti_1"}


def test_bbox_limits_the_export(tmp_path, filled):
    box = (121.40, 31.18, 121.47, 31.23)
    report = export_layer(filled, "hydrant", tmp_path / "part.geojson", ExportOptions(format="geojson", bbox=box))
    inside = filled.features("hydrant").cx[box[0]:box[2], box[1]:box[3]]
    assert 0 < report.count == len(inside) < 40


def test_export_with_gcj02_moves_coordinates_and_warns(tmp_path, filled):
    report = export_layer(filled, "hydrant", tmp_path / "amap.geojson", ExportOptions(format="geojson", crs="gcj02"))
    assert any("no EPSG code" in w for w in report.warnings)
    out = gpd.read_file(tmp_path / "amap.geojson").set_index("key").sort_index()
    src = filled.features("hydrant").set_index("key").sort_index()
    moved = [haversine(np.array([p.x]), np.array([p.y]), q.x, q.y)[0]
             for p, q in zip(out.geometry, src.geometry, strict=True)]
    assert min(moved) > 300 and max(moved) < 800


def test_mixed_point_and_polygon_layer_becomes_two_shapefiles(tmp_path, store):
    frame = gpd.GeoDataFrame({"name": ["外滩", "豫园"]}, geometry=[
        shapely.Point(121.49, 31.24), shapely.box(121.49, 31.22, 121.495, 31.228)], crs=4326)
    store.upsert("heritage_building", frame, author="t", source="t")
    report = export_layer(store, "heritage_building", tmp_path / "hb.shp", ExportOptions(format="shp"))
    assert [p.rsplit("/", 1)[1] for p in report.paths] == ["hb_points.shp", "hb_polygons.shp"]
    assert report.count == 2


def test_empty_layer_exports_an_empty_file(tmp_path, store):
    report = export_layer(store, "hydrant", tmp_path / "none.gpkg")
    assert report.count == 0 and pyogrio.read_info(tmp_path / "none.gpkg")["features"] == 0


@pytest.mark.parametrize(("options", "match"), [
    (ExportOptions(format="dwg"), "unknown format"), (ExportOptions(crs="EPSG:999999"), "unknown CRS")])
def test_bad_export_options_are_refused(tmp_path, filled, options, match):
    with pytest.raises(ExportError, match=match):
        export_layer(filled, "hydrant", tmp_path / "x", options)
    assert list(tmp_path.glob("x*")) == []


def test_export_into_a_missing_folder_is_refused(tmp_path, filled):
    with pytest.raises(ExportError, match="no such folder"):
        export_layer(filled, "hydrant", tmp_path / "nope" / "x.gpkg")


@pytest.mark.parametrize("fmt", FORMATS)
def test_polygon_layer_round_trip_keeps_keys_and_shapes(tmp_path, store, catalogue, fmt):
    squares = [shapely.box(121.40 + i * 0.01, 31.20, 121.405 + i * 0.01, 31.205) for i in range(6)]
    frame = gpd.GeoDataFrame({"permit_no": [f"沪建{i}" for i in range(6)], "start_date": ["2024-03-01"] * 6},
                             geometry=squares, crs=4326)
    store.upsert("construction_site", frame, author="t", source="t")
    report = export_layer(store, "construction_site", tmp_path / "cs", ExportOptions(format=fmt))
    target = new_target(tmp_path, "fresh")
    fresh = open_store(target, catalogue)
    try:
        assert run(fresh, tmp_path / report.paths[0], layer="construction_site").inserted == 6
        a = store.features("construction_site").set_index("key").sort_index()
        b = fresh.features("construction_site").set_index("key").sort_index()
        assert list(a.index) == list(b.index)
        assert a["start_date"].tolist() == b["start_date"].tolist()
        same = shapely.equals_exact(shapely.normalize(a.geometry.to_numpy()), shapely.normalize(b.geometry.to_numpy()),
                                    tolerance=1e-9)  # shapefiles turn rings clockwise
        assert same.all()
    finally:
        fresh.close()
        drop(target)
