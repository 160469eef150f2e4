"""Importing each format, field mapping, geometry repair, the row policy, dry runs and idempotence."""

from __future__ import annotations

import zipfile

import geopandas as gpd
import pytest
import shapely

from tests.io.conftest import hydrant_frame, run, state, write
from twin.errors import ImportRejectedError


@pytest.mark.parametrize("name", ["h.shp", "h.gpkg", "h.geojson", "h.fgb"])
def test_each_gis_format_imports(tmp_path, store, name):
    report = run(store, write(hydrant_frame(), tmp_path / name))
    assert (report.read, report.inserted, report.rejected) == (8, 8, 0)
    assert set(store.features("hydrant")["road"]) == set(hydrant_frame()["road"])


def test_zip_with_the_shapefile_deep_inside_imports(tmp_path, store):
    write(hydrant_frame(), tmp_path / "h.shp")
    with zipfile.ZipFile(tmp_path / "h.zip", "w") as zf:
        zf.writestr("readme.txt", "not data")
        for part in tmp_path.glob("h.*"):
            if part.suffix != ".zip":
                zf.write(part, f"export/2024/layers/{part.name}")
    report = run(store, tmp_path / "h.zip")
    assert report.source == "h.zip!export/2024/layers/h.shp" and report.inserted == 8


def test_geopackage_with_several_layers_needs_source_layer(tmp_path, store):
    gpkg = write(hydrant_frame(), tmp_path / "many.gpkg", layer="消火栓")
    write(hydrant_frame(3), gpkg, layer="other")
    with pytest.raises(ImportRejectedError, match=r"2 layers \(消火栓, other\); choose one with --source-layer"):
        run(store, gpkg)
    assert run(store, gpkg, source_layer="消火栓").inserted == 8
    with pytest.raises(ImportRejectedError, match=r"no layer 'nope'"):
        run(store, gpkg, source_layer="nope")


@pytest.mark.parametrize(("lon", "lat"), [("lng", "lat"), ("Longitude", "Latitude"), ("经度", "纬度"), ("x", "y"),
                                          ("long", "lat")])
def test_csv_coordinate_columns_are_found_by_name(tmp_path, store, lon, lat):
    frame = hydrant_frame()
    table = frame.drop(columns="geometry").assign(**{lon: frame.geometry.x, lat: frame.geometry.y})
    table.to_csv(tmp_path / "h.csv", index=False)
    assert run(store, tmp_path / "h.csv").inserted == 8


def test_csv_coordinate_columns_can_be_named(tmp_path, store):
    frame = hydrant_frame()
    frame.drop(columns="geometry").assign(东=frame.geometry.x, 北=frame.geometry.y).to_csv(tmp_path / "h.csv",
                                                                                          index=False)
    assert run(store, tmp_path / "h.csv", lon="东", lat="北").inserted == 8


def test_csv_rows_with_bad_coordinates_are_rejected_by_line_number(tmp_path, store):
    lines = ["lng,lat,kind", "121.47,31.23,above_ground", "abc,31.2,above_ground", "121.48,31.24,underground"]
    (tmp_path / "h.csv").write_text("\n".join(lines), encoding="utf-8")
    report = run(store, tmp_path / "h.csv")
    assert (report.inserted, report.rejected) == (2, 1)
    assert report.problems[0].row == 3 and "not numbers" in report.problems[0].message


def test_field_mapping_by_option_and_chinese_titles(tmp_path, store):
    frame = hydrant_frame().rename(columns={"kind": "类型", "road": "路名"})  # 类型 is kind's title_zh
    report = run(store, write(frame, tmp_path / "h.gpkg"), mapping={"路名": "road"})
    assert report.mapping == {"路名": "road", "类型": "kind", "outlet_diameter": "outlet_diameter"}
    assert set(store.features("hydrant")["road"]) == set(frame["路名"])


def test_mapping_file_with_value_tables(tmp_path, store):
    from twin.io.mapping import load_mapping_file

    frame = hydrant_frame().rename(columns={"kind": "消防栓类型"})
    frame["消防栓类型"] = frame["消防栓类型"].map({"above_ground": "地上式", "underground": "地下式"})
    yml = tmp_path / "map.yaml"
    yml.write_text("fields:\n  消防栓类型: kind\nvalues:\n  kind: {地上式: above_ground, 地下式: underground}\n",
                   encoding="utf-8")
    pairs, values = load_mapping_file(yml)
    report = run(store, write(frame, tmp_path / "h.gpkg"), mapping=pairs, values=values)
    assert report.inserted == 8
    assert set(store.features("hydrant")["kind"]) == {"above_ground", "underground"}


def test_bad_mappings_are_refused(tmp_path, store):
    path = write(hydrant_frame(), tmp_path / "h.gpkg")
    with pytest.raises(ImportRejectedError, match=r"the file has no column 'nope'"):
        run(store, path, mapping={"nope": "road"})
    with pytest.raises(ImportRejectedError, match=r"has no field 'street'"):
        run(store, path, mapping={"road": "street"})
    with pytest.raises(ImportRejectedError, match=r"requires kind but no column of the file maps to it"):
        run(store, write(hydrant_frame().drop(columns="kind"), tmp_path / "nokind.gpkg"))


def test_schema_errors_name_the_file_row_and_field_across_chunks(tmp_path, store):
    frame = hydrant_frame(30, seed=2)
    frame.loc[4, "kind"] = "sideways"
    frame.loc[23, "outlet_diameter"] = 77
    report = run(store, write(frame, tmp_path / "h.gpkg"), chunk_size=7)
    assert (report.inserted, report.rejected) == (28, 2)
    assert [(p.row, p.field) for p in report.problems] == [(5, "kind"), (24, "outlet_diameter")]
    assert "'sideways' is not one of" in report.problems[0].message


def test_strict_imports_nothing_when_a_row_has_a_problem(tmp_path, store):
    frame = hydrant_frame()
    frame.loc[4, "kind"] = "sideways"
    before = state(store)
    with pytest.raises(ImportRejectedError, match=r"--strict: 1 row\(s\) have problems \(first: row 5, kind"):
        run(store, write(frame, tmp_path / "h.gpkg"), strict=True)
    assert state(store) == before


def test_reimport_is_idempotent_and_updates_only_what_changed(tmp_path, store):
    frame = hydrant_frame(30, seed=4)
    path = write(frame, tmp_path / "h.gpkg")
    first = run(store, path)
    keys = set(store.features("hydrant")["key"])
    again = run(store, path)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 30)
    frame.loc[7, "road"] = "新路名"
    changed = run(store, write(frame, tmp_path / "h2.gpkg"), chunk_size=8)
    assert (changed.inserted, changed.updated, changed.unchanged) == (0, 1, 29)
    assert store.count("hydrant") == 30 and set(store.features("hydrant")["key"]) == keys
    assert first.changeset is not None and changed.changeset == first.changeset + 2


def test_dry_run_writes_nothing_and_reports_what_would_happen(tmp_path, store):
    frame = hydrant_frame()
    frame.loc[2, "kind"] = "sideways"
    before = state(store)
    report = run(store, write(frame, tmp_path / "h.gpkg"), dry_run=True)
    assert state(store) == before
    assert (report.inserted, report.rejected, report.changeset) == (7, 1, None)
    assert len(report.samples["insert"]) == 5 and report.samples["insert"][0]["key"].startswith("HY-")


def _polygons(geoms):
    n = len(geoms)
    return gpd.GeoDataFrame({"permit_no": [f"沪建{i}" for i in range(n)], "project_name": ["工地"] * n},
                            geometry=geoms, crs=4326)


def test_invalid_polygons_are_repaired_and_reported(tmp_path, store):
    bowtie = shapely.Polygon([(121.47, 31.23), (121.48, 31.24), (121.48, 31.23), (121.47, 31.24)])
    square = shapely.box(121.45, 31.20, 121.46, 31.21)
    report = run(store, write(_polygons([bowtie, square]), tmp_path / "cs.geojson"), layer="construction_site")
    assert (report.inserted, report.repaired) == (2, 1)
    assert report.repairs[0].row == 1 and "Self-intersection" in report.repairs[0].message
    stored = store.features("construction_site").set_index("permit_no").geometry
    assert stored["沪建0"].is_valid and stored["沪建0"].geom_type == "MultiPolygon"
    assert stored["沪建0"].area == pytest.approx(shapely.make_valid(bowtie).area)  # both triangles kept


def test_collapsed_geometries_are_rejected_per_row(tmp_path, store):
    flat = shapely.Polygon([(121.47, 31.23), (121.48, 31.23), (121.49, 31.23), (121.47, 31.23)])
    square = shapely.box(121.45, 31.20, 121.46, 31.21)
    report = run(store, write(_polygons([square, flat]), tmp_path / "cs.geojson"), layer="construction_site")
    assert (report.inserted, report.rejected) == (1, 1)
    assert report.problems[0].row == 2 and "cannot be repaired" in report.problems[0].message


def test_single_and_multi_parts_mix_freely(tmp_path, store):
    square = shapely.box(121.45, 31.20, 121.46, 31.21)
    two = shapely.MultiPolygon([shapely.box(121.47, 31.2, 121.48, 31.21), shapely.box(121.49, 31.2, 121.5, 31.21)])
    report = run(store, write(_polygons([square, two]), tmp_path / "cs.geojson"), layer="construction_site")
    assert report.inserted == 2


def test_multipoint_with_several_parts_is_rejected_in_a_point_layer(tmp_path, store):
    frame = hydrant_frame(3)
    frame.loc[1, "geometry"] = shapely.MultiPoint([(121.47, 31.23), (121.48, 31.24)])
    frame.loc[2, "geometry"] = shapely.MultiPoint([(121.50, 31.25)])
    report = run(store, write(frame, tmp_path / "h.geojson"))
    assert (report.inserted, report.rejected) == (2, 1)
    assert report.problems[0].row == 2 and "MultiPoint with 2 parts" in report.problems[0].message


def test_missing_geometry_is_rejected_per_row(tmp_path, store):
    frame = hydrant_frame(3)
    frame.loc[1, "geometry"] = None
    report = run(store, write(frame, tmp_path / "h.gpkg"))
    assert (report.inserted, report.rejected) == (2, 1)
    assert (report.problems[0].row, report.problems[0].message) == (2, "geometry is missing")
