"""Sanity checks: the city extent, and spotting GCJ-02 / BD-09 data labelled as WGS84."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely

from tests.io.conftest import hydrant_frame, run, state, write
from twin import crs as crsmod
from twin.errors import ImportRejectedError

#: A made-up "district" outline in central Shanghai (WGS84), the store's reference layer in these tests.
DISTRICT = shapely.Polygon([(121.44, 31.20), (121.47, 31.195), (121.51, 31.21), (121.52, 31.24),
                            (121.50, 31.27), (121.46, 31.265), (121.43, 31.24), (121.44, 31.20)])


@pytest.fixture
def with_district(store):
    frame = gpd.GeoDataFrame({"name": ["黄浦区"]}, geometry=[DISTRICT], crs=4326)
    store.upsert("district", frame, author="test", source="test")
    return store


def _boundary_hydrants(offset: str | None) -> gpd.GeoDataFrame:
    """Hydrants along the district boundary (every ~150 m), shifted as Amap/Baidu would show them."""
    line = DISTRICT.exterior
    pts = shapely.line_interpolate_point(line, np.linspace(0, line.length, 120, endpoint=False))
    if offset:
        pts = crsmod.transform_geoms(pts, crsmod.LONLAT, crsmod.parse_crs(offset))
    n = len(pts)
    return gpd.GeoDataFrame({"kind": ["underground"] * n, "road": [f"边界路{i}号" for i in range(n)]},
                            geometry=pts, crs=4326)


def test_features_outside_the_city_are_held_back_and_reported(tmp_path, store):
    frame = hydrant_frame(4)
    frame.loc[2, "geometry"] = shapely.Point(116.40, 39.90)  # Beijing
    report = run(store, write(frame, tmp_path / "h.geojson"))
    assert (report.inserted, report.held_back) == (3, 1)
    held = [p for p in report.problems if "outside the city extent" in p.message]
    assert [p.row for p in held] == [3]
    assert store.count("hydrant") == 3


def test_allow_outside_imports_them(tmp_path, store):
    frame = hydrant_frame(4)
    frame.loc[2, "geometry"] = shapely.Point(116.40, 39.90)
    report = run(store, write(frame, tmp_path / "h.geojson"), allow_outside=True)
    assert (report.inserted, report.held_back) == (4, 0)


def test_extent_option_changes_the_city(tmp_path, store):
    frame = hydrant_frame(4)
    frame.loc[2, "geometry"] = shapely.Point(116.40, 39.90)
    report = run(store, write(frame, tmp_path / "h.geojson"), extent=(116.0, 39.5, 117.0, 40.5))
    assert (report.inserted, report.held_back) == (1, 3)


def test_a_file_wholly_outside_the_city_imports_nothing(tmp_path, store):
    before = state(store)
    with pytest.raises(ImportRejectedError, match=r"no row of the file can be imported \(0 rejected, 4 outside"):
        run(store, write(hydrant_frame(4), tmp_path / "h.geojson"), extent=(116.0, 39.5, 117.0, 40.5))
    assert state(store) == before


@pytest.mark.parametrize(("offset", "label"), [("gcj02", "GCJ-02"), ("bd09", "BD-09")])
def test_offset_data_labelled_wgs84_is_spotted_against_the_reference_layers(tmp_path, with_district, offset, label):
    report = run(with_district, write(_boundary_hydrants(offset), tmp_path / "amap.geojson"), dry_run=True)
    assert any(f"looks like {label}" in w and f"--crs {offset}" in w for w in report.warnings), report.warnings


def test_true_wgs84_data_on_the_reference_raises_no_offset_warning(tmp_path, with_district):
    report = run(with_district, write(_boundary_hydrants(None), tmp_path / "wgs.geojson"), dry_run=True)
    assert not any("looks like" in w for w in report.warnings)


def test_unrelated_data_raises_no_offset_warning(tmp_path, with_district):
    report = run(with_district, write(hydrant_frame(60, seed=3), tmp_path / "h.geojson"), dry_run=True)
    assert not any("looks like" in w for w in report.warnings)


def test_offset_data_imported_with_the_right_crs_raises_no_warning(tmp_path, with_district):
    report = run(with_district, write(_boundary_hydrants("gcj02"), tmp_path / "amap.geojson"), crs="gcj02",
                 dry_run=True)
    assert not any("looks like" in w for w in report.warnings)


def test_wgs84_data_wrongly_read_as_gcj02_is_spotted(tmp_path, with_district):
    report = run(with_district, write(_boundary_hydrants(None), tmp_path / "wgs.geojson"), crs="gcj02",
                 dry_run=True)
    assert any("already WGS84" in w for w in report.warnings), report.warnings


# -- polygon and line files: the check samples their vertices ----------------------------------------------------

@pytest.fixture(scope="module")
def real_districts() -> gpd.GeoDataFrame:
    """Shanghai's 16 real district outlines (DataV, converted from GCJ-02 to WGS84 by the demo's loader)."""
    from twin.demo.sources import load_districts

    return load_districts()


@pytest.fixture
def with_real_districts(store, real_districts):
    store.upsert("district", real_districts, author="test", source="test")
    return store


def _gcj02(geoms: np.ndarray) -> np.ndarray:
    """Geometries as Amap/DataV would publish them: the real GCJ-02 formula applied to every vertex."""
    return crsmod.transform_geoms(geoms, crsmod.LONLAT, crsmod.parse_crs("gcj02"))


def _district_file(frame: gpd.GeoDataFrame, path, *, prj: bool = True):
    shp = write(frame, path, encoding="UTF-8")
    if not prj:
        shp.with_suffix(".prj").unlink()
    return shp


def test_gcj02_district_polygons_labelled_wgs84_are_spotted(tmp_path, with_real_districts, real_districts):
    amap = real_districts.assign(geometry=_gcj02(real_districts.geometry.to_numpy()))
    report = run(with_real_districts, _district_file(amap, tmp_path / "districts.shp"), "district", dry_run=True)
    assert report.crs == "EPSG:4326" and report.read == 16
    (warning,) = [w for w in report.warnings if "looks like" in w]
    assert "GCJ-02" in warning and "district layer" in warning and "--crs gcj02" in warning


def test_a_dozen_gcj02_polygons_without_a_prj_are_spotted(tmp_path, with_real_districts, real_districts):
    amap = real_districts.iloc[:12].assign(geometry=_gcj02(real_districts.geometry.to_numpy()[:12]))
    shp = _district_file(amap, tmp_path / "districts.shp", prj=False)
    report = run(with_real_districts, shp, "district", dry_run=True)
    assert "assumed" in report.crs_how
    assert any("looks like GCJ-02" in w and "--crs gcj02" in w for w in report.warnings), report.warnings


def test_gcj02_polygons_imported_with_crs_gcj02_raise_no_offset_warning(tmp_path, with_real_districts,
                                                                          real_districts):
    amap = real_districts.assign(geometry=_gcj02(real_districts.geometry.to_numpy()))
    report = run(with_real_districts, _district_file(amap, tmp_path / "d.shp"), "district", crs="gcj02",
                 dry_run=True)
    assert not any("looks like" in w for w in report.warnings), report.warnings


def test_a_dozen_wgs84_outlines_from_another_source_raise_no_offset_warning(tmp_path, with_real_districts,
                                                                            real_districts):
    redrawn = real_districts.iloc[:12].assign(  # the same boundaries with a vertex every ~200 m: new geometries
        geometry=shapely.segmentize(real_districts.geometry.to_numpy()[:12], 0.002))
    report = run(with_real_districts, _district_file(redrawn, tmp_path / "d.shp"), "district", dry_run=True)
    assert report.inserted == 12
    assert not any("looks like" in w for w in report.warnings), report.warnings


def test_a_dozen_unrelated_wgs84_polygons_raise_no_offset_warning(tmp_path, with_real_districts, real_districts):
    centres = shapely.point_on_surface(real_districts.geometry.to_numpy()[:12])
    parcels = gpd.GeoDataFrame({"name": [f"小区{i}" for i in range(12)]}, crs=4326,
                               geometry=shapely.buffer(centres, 0.003, cap_style="square"))
    report = run(with_real_districts, write(parcels, tmp_path / "parcels.geojson"), "residential_compound",
                 dry_run=True)
    assert report.inserted == 12
    assert not any("looks like" in w for w in report.warnings), report.warnings


def test_a_dozen_gcj02_lines_are_spotted_against_the_pipelines(tmp_path, store):
    from twin.demo.sources import load_roads

    roads = load_roads()
    geoms = roads.geometry.to_numpy()
    central = roads[(shapely.length(geoms) > 0.01) & shapely.within(geoms, shapely.box(121.40, 31.15, 121.55, 31.30))]
    lines = central.geometry.to_numpy()[:12]
    store.upsert("pipeline", gpd.GeoDataFrame({"kind": ["water_supply"] * 12}, geometry=lines, crs=4326),
                 author="test", source="test")
    beside = shapely.transform(lines, lambda c: c + np.array([0.0, 0.00003]))  # gas mains ~3 m north of the water mains
    amap = gpd.GeoDataFrame({"kind": ["gas"] * 12}, geometry=_gcj02(beside), crs=4326)
    report = run(store, write(amap, tmp_path / "gas.geojson"), "pipeline", dry_run=True)
    assert report.inserted == 12
    assert any("looks like GCJ-02" in w and "pipeline layer" in w for w in report.warnings), report.warnings
