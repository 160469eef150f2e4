"""Re-imports that would duplicate components: rows whose identity fields equal a nearby existing component's."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely

from tests.io.conftest import hydrant_frame, run, write
from twin import crs as crsmod
from twin.geodesy import METRES_PER_DEGREE

#: A compound in Jing'an (WGS84); the tests place others at known distances north of it.
HOME = (121.4480, 31.2290)


def _north(metres: float) -> shapely.Point:
    return shapely.Point(HOME[0], HOME[1] + metres / METRES_PER_DEGREE)


def _parcel(centre: shapely.Point) -> shapely.Polygon:
    return shapely.box(centre.x - 0.0008, centre.y - 0.0006, centre.x + 0.0008, centre.y + 0.0006)


def _compounds(names: list[str], north_metres: list[float]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"name": names, "households": [300] * len(names)}, crs=4326,
                            geometry=[_parcel(_north(m)) for m in north_metres])


@pytest.fixture
def with_compound(store):
    store.upsert("residential_compound", _compounds(["康平花园"], [0]), author="test", source="test")
    return store


def test_districts_reimported_from_amap_are_reported_as_duplicates(tmp_path, store):
    from twin.demo.sources import load_districts

    districts = load_districts()
    store.upsert("district", districts, author="test", source="test")
    keys = dict(zip(store.features("district")["name"], store.features("district")["key"], strict=True))
    amap = districts.assign(geometry=crsmod.transform_geoms(districts.geometry.to_numpy(), crsmod.LONLAT,
                                                            crsmod.parse_crs("gcj02")))
    path = write(amap, tmp_path / "districts.geojson")
    for dry_run in (True, False):
        report = run(store, path, "district", dry_run=dry_run)
        assert (report.inserted, report.duplicates) == (16, 16)
        (warning,) = [w for w in report.warnings if "repeat components" in w]
        first = districts["name"].iloc[0]
        assert warning.startswith("16 new row(s) repeat components the layer already has (same name within")
        assert f"row 1 (name {first!r}) and {keys[first]}, overlapping it" in warning
        assert "store.edit(KEY" in warning


@pytest.mark.parametrize("north", [480.0, 60.0])
def test_the_same_name_nearby_is_reported_with_the_distance(tmp_path, with_compound, north):
    frame = _compounds(["新建小区", " 康平花园 "], [-5000, north])  # names compare trimmed
    report = run(with_compound, write(frame, tmp_path / "c.geojson"), "residential_compound", dry_run=True)
    assert (report.inserted, report.duplicates) == (2, 1)
    (warning,) = [w for w in report.warnings if "repeat components" in w]
    key = with_compound.features("residential_compound")["key"].iloc[0]
    gap = north - 0.0012 * METRES_PER_DEGREE  # the parcels are 0.0012 degrees tall
    where = f"{gap:,.0f} m away" if gap > 0 else "overlapping it"
    assert f"row 2 (name ' 康平花园 ') and {key}, {where}" in warning


def test_the_same_name_far_away_is_not_a_duplicate(tmp_path, with_compound):
    report = run(with_compound, write(_compounds(["康平花园"], [3000]), tmp_path / "c.geojson"),
                 "residential_compound", dry_run=True)
    assert (report.inserted, report.duplicates) == (1, 0)
    assert not any("repeat components" in w for w in report.warnings)


def test_unchanged_and_updated_components_are_not_duplicates(tmp_path, with_compound):
    frame = _compounds(["康平花园"], [0]).assign(households=[310])
    report = run(with_compound, write(frame, tmp_path / "c.geojson"), "residential_compound", dry_run=True)
    assert (report.updated, report.duplicates) == (1, 0)


def test_construction_sites_are_identified_by_their_permit_number(tmp_path, store):
    def sites(permits: list[str], projects: list[str], north: list[float]) -> gpd.GeoDataFrame:
        return gpd.GeoDataFrame({"permit_no": permits, "project_name": projects, "status": ["active"] * len(permits)},
                                geometry=[_parcel(_north(m)) for m in north], crs=4326)

    store.upsert("construction_site", sites(["沪建2024-0815"], ["静安寺地块"], [0]), author="test", source="test")
    frame = sites(["沪建2024-0815", "沪建2024-0999"], ["静安寺地块（二期）", "静安寺地块"], [200, 250])
    report = run(store, write(frame, tmp_path / "sites.geojson"), "construction_site", dry_run=True)
    assert (report.inserted, report.duplicates) == (2, 1)
    assert any("same permit_no within" in w and "row 1 (permit_no '沪建2024-0815')" in w for w in report.warnings)


def test_layers_without_identity_fields_are_not_checked(tmp_path, store):
    run(store, write(hydrant_frame(8), tmp_path / "a.geojson"))
    moved = hydrant_frame(8).assign(geometry=hydrant_frame(8).geometry.translate(0.0005, 0.0))
    report = run(store, write(moved, tmp_path / "b.geojson"), dry_run=True)
    assert (report.inserted, report.duplicates) == (8, 0)


def test_many_rows_are_counted_exactly(tmp_path, store):
    rng = np.random.default_rng(5)
    n = 3000
    x, y = 121.40 + rng.random(n) * 0.15, 31.15 + rng.random(n) * 0.15
    existing = gpd.GeoDataFrame({"name": [f"小区{i}" for i in range(n)]}, crs=4326,
                                geometry=shapely.buffer(shapely.points(x, y), 0.0003, cap_style="square"))
    store.upsert("residential_compound", existing, author="test", source="test")
    # every tenth compound again, 100 m east; the others under new names at the same spots
    names = [f"小区{i}" if i % 10 == 0 else f"新区{i}" for i in range(n)]
    again = existing.assign(name=names, geometry=shapely.transform(existing.geometry.to_numpy(),
                                                                   lambda c: c + np.array([0.00105, 0.0])))
    report = run(store, write(again, tmp_path / "again.gpkg"), "residential_compound", dry_run=True)
    assert (report.inserted, report.duplicates) == (n, n // 10)
    assert "row 1 (name '小区0')" in next(w for w in report.warnings if "repeat components" in w)
