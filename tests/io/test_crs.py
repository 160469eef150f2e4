"""CRS handling: overrides, Chinese offsets, Gauss-Krüger zones, missing and lying .prj files."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Transformer

from tests.io.conftest import hydrant_frame, run, state, write
from twin import crs as crsmod
from twin.errors import ImportRejectedError
from twin.geodesy import haversine

CHINA_LON = st.floats(73.7, 134.7)
CHINA_LAT = st.floats(18.2, 53.4)


def _max_error(store, truth) -> float:
    got = store.features("hydrant").set_index("road").loc[truth["road"]]
    return float(max(haversine(np.array([g.x]), np.array([g.y]), w.x, w.y)[0]
                     for g, w in zip(got.geometry, truth.geometry, strict=True)))


@pytest.mark.parametrize("offset", ["gcj02", "bd09"])
def test_offset_geojson_imported_with_crs_option_lands_within_a_metre(tmp_path, store, offset):
    truth = hydrant_frame()
    shifted = truth.copy()
    fwd = crsmod.wgs84_to_gcj02 if offset == "gcj02" else crsmod.wgs84_to_bd09
    shifted.geometry = crsmod.transform_geoms(truth.geometry.to_numpy(), crsmod.LONLAT, crsmod.parse_crs(offset))
    assert fwd(np.array([121.47]), np.array([31.23]))[0][0] != 121.47
    report = run(store, write(shifted, tmp_path / "amap.geojson"), crs=offset)
    assert report.crs_how == "--crs" and report.inserted == len(truth)
    assert _max_error(store, truth) < 1.0


@pytest.mark.parametrize("epsg", [4549, 4550, 4528, 4529, 4490])
def test_cgcs2000_and_gauss_kruger_zones_land_within_a_metre(tmp_path, store, epsg):
    truth = hydrant_frame()
    report = run(store, write(truth.to_crs(epsg), tmp_path / "survey.gpkg"))
    assert report.crs == f"EPSG:{epsg}"
    assert _max_error(store, truth) < 1.0


@pytest.mark.filterwarnings("ignore:'crs' was not provided", "ignore:You will likely lose")
def test_crs_option_supplies_a_proj_string(tmp_path, store):
    truth = hydrant_frame()
    proj = "+proj=tmerc +lat_0=0 +lon_0=120 +k=1 +x_0=500000 +y_0=0 +ellps=GRS80 +units=m +no_defs"
    frame = truth.to_crs(4549).set_crs(None, allow_override=True)
    report = run(store, write(frame, tmp_path / "nocrs.geojson"), crs=proj)
    assert report.crs_how == "--crs"
    assert _max_error(store, truth) < 1.0


def test_no_crs_and_gauss_kruger_eastings_with_zone_prefix_suggests_the_zone(tmp_path, store):
    before = state(store)
    shp = write(hydrant_frame().to_crs(4528), tmp_path / "gk.shp")
    shp.with_suffix(".prj").unlink()
    with pytest.raises(ImportRejectedError, match=r"zone prefix 40.*--crs EPSG:4528"):
        run(store, shp)
    assert state(store) == before


def test_no_crs_and_gauss_kruger_metres_without_prefix_suggests_fitting_zones(tmp_path, store):
    shp = write(hydrant_frame().to_crs(4549), tmp_path / "gk.shp")
    shp.with_suffix(".prj").unlink()
    with pytest.raises(ImportRejectedError, match=r"no CRS.*EPSG:4549"):
        run(store, shp)


def test_no_crs_and_lonlat_coordinates_assumes_wgs84_with_a_warning(tmp_path, store):
    shp = write(hydrant_frame(), tmp_path / "ll.shp")
    shp.with_suffix(".prj").unlink()
    report = run(store, shp)
    assert report.crs == "EPSG:4326" and report.crs_how.startswith("assumed")
    assert any("no CRS" in w for w in report.warnings)


def test_prj_that_says_degrees_for_gauss_kruger_metres_is_refused(tmp_path, store):
    frame = hydrant_frame().to_crs(4528).set_crs(4326, allow_override=True)  # a lying .prj
    before = state(store)
    with pytest.raises(ImportRejectedError, match=r"says its CRS is .*degrees.*EPSG:4528"):
        run(store, write(frame, tmp_path / "lies.shp"))
    assert state(store) == before


def test_prj_with_zone_lacking_its_prefix_is_refused_with_the_prefixed_code(tmp_path, store):
    frame = hydrant_frame().to_crs(4528).set_crs(4549, allow_override=True)
    with pytest.raises(ImportRejectedError, match=r"EPSG:4528"):
        run(store, write(frame, tmp_path / "lies.shp"))


def test_prj_that_says_metres_for_lonlat_is_refused(tmp_path, store):
    frame = hydrant_frame().set_crs(4549, allow_override=True)
    with pytest.raises(ImportRejectedError, match=r"lon/lat degrees.*--crs EPSG:4326"):
        run(store, write(frame, tmp_path / "lies.gpkg"))


def test_geographic_crs_option_for_metres_is_refused(tmp_path, store):
    with pytest.raises(ImportRejectedError, match=r"--crs gcj02 is in degrees"):
        run(store, write(hydrant_frame().to_crs(4528), tmp_path / "gk.gpkg"), crs="gcj02")


def test_unknown_crs_option_is_refused(tmp_path, store):
    with pytest.raises(ImportRejectedError, match=r"unknown CRS"):
        run(store, write(hydrant_frame(), tmp_path / "h.gpkg"), crs="EPSG:999999")


# -- properties of twin.crs, checked against the published forward transforms and pyproj --------------

@settings(max_examples=200, deadline=None)
@given(CHINA_LON, CHINA_LAT)
def test_wgs84_gcj02_round_trip_is_sub_millimetre_inside_china(lon, lat):
    g = crsmod.wgs84_to_gcj02(np.array([lon]), np.array([lat]))
    w = crsmod.gcj02_to_wgs84(*g)
    assert haversine(w[0], w[1], lon, lat)[0] < 1e-3
    shift = haversine(g[0], g[1], lon, lat)[0]
    assert 1 < shift < 1500  # GCJ-02 really moves points inside China, by at most ~a kilometre


@settings(max_examples=200, deadline=None)
@given(CHINA_LON, CHINA_LAT)
def test_wgs84_bd09_round_trip_is_sub_metre_inside_china(lon, lat):
    w = crsmod.bd09_to_wgs84(*crsmod.wgs84_to_bd09(np.array([lon]), np.array([lat])))
    assert haversine(w[0], w[1], lon, lat)[0] < 1.0


@settings(max_examples=100, deadline=None)
@given(st.one_of(st.floats(-179, 70), st.floats(140, 179)), st.floats(-80, 80))
def test_offsets_leave_points_outside_china_unshifted(lon, lat):
    for fn in (crsmod.wgs84_to_gcj02, crsmod.gcj02_to_wgs84, crsmod.wgs84_to_bd09, crsmod.bd09_to_wgs84):
        x, y = fn(np.array([lon]), np.array([lat]))
        assert (x[0], y[0]) == (lon, lat)


_REFERENCE = {epsg: Transformer.from_crs(4326, epsg, always_xy=True) for epsg in (4549, 4550, 4528, 4529)}


@settings(max_examples=100, deadline=None)
@given(st.floats(120.85, 122.25), st.floats(30.67, 31.88), st.sampled_from(sorted(_REFERENCE)))
def test_gauss_kruger_zones_match_pyproj_and_round_trip(lon, lat, epsg):
    src = crsmod.parse_crs(f"EPSG:{epsg}")
    x, y = crsmod.transform_xy(np.array([lon]), np.array([lat]), crsmod.LONLAT, src)
    ref = _REFERENCE[epsg].transform(lon, lat)
    assert abs(x[0] - ref[0]) < 1e-6 and abs(y[0] - ref[1]) < 1e-6
    back = crsmod.transform_xy(x, y, src, crsmod.LONLAT)
    assert haversine(back[0], back[1], lon, lat)[0] < 1e-3
