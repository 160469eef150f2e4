"""Broken and hostile files: each is refused with a clear error and leaves the store exactly as it was."""

from __future__ import annotations

import zipfile

import geopandas as gpd
import pytest
import shapely

from tests.io.conftest import hydrant_frame, run, state, write
from twin.errors import ImportRejectedError, LayerNotFoundError
from twin.io import archive


@pytest.fixture
def seeded(store, tmp_path):
    """A store that already holds some hydrants, so 'unchanged' means something."""
    run(store, write(hydrant_frame(3), tmp_path / "seed.geojson"))
    return store


def _refused(store, path, match, **options):
    before = state(store)
    with pytest.raises(ImportRejectedError, match=match):
        run(store, path, **options)
    assert state(store) == before


@pytest.mark.parametrize(("sidecar", "what"), [(".shx", "index"), (".dbf", "attribute table")])
def test_shapefile_missing_a_sidecar_is_refused(tmp_path, seeded, sidecar, what):
    shp = write(hydrant_frame(), tmp_path / "h.shp")
    shp.with_suffix(sidecar).unlink()
    _refused(seeded, shp, rf"\{sidecar} \({what}\) file is missing")


def test_truncated_shapefile_is_refused(tmp_path, seeded):
    shp = write(hydrant_frame(), tmp_path / "h.shp")
    shp.write_bytes(shp.read_bytes()[:-30])
    _refused(seeded, shp, r"truncated or damaged")


def test_corrupt_geopackage_is_refused(tmp_path, seeded):
    gpkg = write(hydrant_frame(), tmp_path / "h.gpkg")
    data = bytearray(gpkg.read_bytes())
    data[100:4000] = b"\xff" * 3900
    gpkg.write_bytes(bytes(data))
    _refused(seeded, gpkg, r"h.gpkg")


def test_garbage_with_a_geojson_name_is_refused(tmp_path, seeded):
    path = tmp_path / "h.geojson"
    path.write_text('{"type": "FeatureCollection", "features": [{"type": "Feat', encoding="utf-8")
    _refused(seeded, path, r"h.geojson: not a readable GeoJSON file")


@pytest.mark.parametrize("name", ["h.shp", "h.geojson", "h.csv", "h.zip"])
def test_empty_file_is_refused(tmp_path, seeded, name):
    (tmp_path / name).write_bytes(b"")
    _refused(seeded, tmp_path / name, r"empty")


def test_file_without_features_is_refused(tmp_path, seeded):
    path = tmp_path / "none.geojson"
    path.write_text('{"type": "FeatureCollection", "features": []}', encoding="utf-8")
    _refused(seeded, path, r"contains no features")


def test_wrong_geometry_type_for_the_layer_is_refused(tmp_path, seeded):
    lines = gpd.GeoDataFrame({"kind": ["water_supply"]},
                             geometry=[shapely.LineString([(121.47, 31.23), (121.48, 31.24)])], crs=4326)
    _refused(seeded, write(lines, tmp_path / "pipes.shp"), r"holds LineString features but layer 'hydrant'")


def test_unknown_layer_is_refused(tmp_path, seeded):
    before = state(seeded)
    with pytest.raises(LayerNotFoundError, match="unknown layer 'hydrants'"):
        run(seeded, write(hydrant_frame(), tmp_path / "h.geojson"), layer="hydrants")
    assert state(seeded) == before


def _zip(path, entries):
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries:
            zf.writestr(zipfile.ZipInfo(name), data)
    return path


@pytest.mark.parametrize("bad", ["../evil.geojson", "/etc/evil.geojson", "a/../../evil.geojson",
                                 "C:/evil.geojson", "..\\evil.geojson"])
def test_zip_with_path_traversal_or_absolute_entries_is_refused(tmp_path, seeded, bad):
    data = (write(hydrant_frame(), tmp_path / "h.geojson")).read_bytes()
    z = _zip(tmp_path / "evil.zip", [("ok.txt", b"x"), (bad, data)])
    _refused(seeded, z, r"points outside the archive")
    assert not (tmp_path.parent / "evil.geojson").exists()


def test_zip_bomb_is_refused_before_anything_is_extracted(tmp_path, seeded):
    with zipfile.ZipFile(tmp_path / "bomb.zip", "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("bomb.csv", b"0" * (50 * 1024**2))  # 50 MB of zeros squeezes to ~50 kB
    _refused(seeded, tmp_path / "bomb.zip", r"zip bomb")


def test_zip_over_the_total_size_limit_is_refused(tmp_path, seeded):
    shp = write(hydrant_frame(), tmp_path / "h.shp")
    z = _zip(tmp_path / "big.zip", [(p.name, p.read_bytes()) for p in tmp_path.glob("h.*")])
    before = state(seeded)
    with pytest.raises(ImportRejectedError, match=r"unpacks to more than 100 bytes"):
        run(seeded, z, limits=archive.Limits(max_bytes=100))
    assert state(seeded) == before and shp.exists()


def test_absurdly_long_value_refuses_the_file(tmp_path, seeded):
    frame = hydrant_frame(4)
    frame.loc[2, "road"] = "路" * 1_500_000
    _refused(seeded, write(frame, tmp_path / "h.geojson"), r"row 3, field 'road': a value of 1,500,000 characters")


def test_list_values_mapped_onto_a_text_field_are_imported_as_text(tmp_path, store):
    # GDAL reads a GeoJSON array property as a list; mapped onto a text field it is kept as its text, not a traceback
    path = tmp_path / "tagged.geojson"
    path.write_text('{"type": "FeatureCollection", "features": ['
                    '{"type": "Feature", "properties": {"kind": "underground", "tags": ["a", "b"]}, '
                    '"geometry": {"type": "Point", "coordinates": [121.47, 31.23]}}, '
                    '{"type": "Feature", "properties": {"kind": "underground", "tags": ["c"]}, '
                    '"geometry": {"type": "Point", "coordinates": [121.471, 31.231]}}]}', encoding="utf-8")
    report = run(store, path, mapping={"tags": "road"})
    assert (report.inserted, report.rejected) == (2, 0)
    assert sorted(store.features("hydrant")["road"]) == ["['a' 'b']", "['c']"]


def test_value_longer_than_the_field_allows_rejects_only_that_row(tmp_path, store):
    frame = hydrant_frame(4)
    frame.loc[1, "road"] = "路" * 1200
    report = run(store, write(frame, tmp_path / "h.geojson"))
    assert (report.inserted, report.rejected) == (3, 1)
    assert [(p.row, p.field) for p in report.problems] == [(2, "road")]
    assert "1200 characters" in report.problems[0].message


def test_a_nul_character_in_a_value_is_refused_with_its_row_and_field_on_either_engine(tmp_path, store):
    # GDAL cuts a file's text at a NUL, so one arrives only from a program writing frames (or an edit)
    from twin.errors import SchemaViolationError

    run(store, write(hydrant_frame(2), tmp_path / "h.geojson"))
    before = state(store)
    frame = hydrant_frame(4)
    frame.loc[1, "road"] = "中山\x00路"
    with pytest.raises(SchemaViolationError, match=r"row 1, field .road.: value holds a NUL character"):
        store.upsert("hydrant", frame, author="t", source="t")
    assert state(store) == before


def test_an_edit_with_a_nul_character_is_refused_and_changes_nothing(tmp_path, store):
    from twin.errors import SchemaViolationError

    run(store, write(hydrant_frame(2), tmp_path / "h.geojson"))
    key = store.features("hydrant").key.iloc[0]
    before = state(store)
    with pytest.raises(SchemaViolationError, match=r"road.*NUL"):
        store.edit(key, author="t", properties={"road": "a\x00b"})
    assert state(store) == before


def test_mixed_geometry_types_refuse_the_file(tmp_path, seeded):
    frame = hydrant_frame(4)
    frame.loc[3, "geometry"] = shapely.LineString([(121.47, 31.23), (121.48, 31.24)])
    _refused(seeded, write(frame, tmp_path / "mixed.geojson"), r"row 4 is a LineString .* mixes geometry kinds")


def test_mixed_geometry_types_refuse_the_file_even_in_a_late_chunk(tmp_path, seeded):
    frame = hydrant_frame(40, seed=1)
    frame.loc[37, "geometry"] = shapely.Polygon([(121.47, 31.23), (121.48, 31.24), (121.48, 31.23)])
    _refused(seeded, write(frame, tmp_path / "mixed.geojson"), r"row 38 is a Polygon", chunk_size=10)


def _csv(tmp_path, lines):
    path = tmp_path / "h.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_csv_with_a_repeated_header_mid_file_is_refused(tmp_path, seeded):
    rows = [f"121.4{i},31.2{i},above_ground,路{i}" for i in range(6)]
    path = _csv(tmp_path, ["lng,lat,kind,road", *rows[:3], "lng,lat,kind,road", *rows[3:]])
    _refused(seeded, path, r"line 5 is another header row", chunk_size=2)


def test_csv_whose_header_changes_halfway_is_refused(tmp_path, seeded):
    rows = [f"121.4{i},31.2{i},above_ground,路{i}" for i in range(6)]
    path = _csv(tmp_path, ["lng,lat,kind,road", *rows[:3], "经度,纬度,类型,道路", *rows[3:]])
    _refused(seeded, path, r"line 5 is another header row")


def test_csv_whose_column_count_changes_halfway_is_refused(tmp_path, seeded):
    rows = [f"121.4{i},31.2{i},above_ground,路{i}" for i in range(6)]
    path = _csv(tmp_path, ["lng,lat,kind,road", *rows[:3], "id,lng,lat,kind,road,extra", *rows[3:]])
    _refused(seeded, path, r"malformed")


def test_csv_without_coordinate_columns_is_refused_with_the_options_to_use(tmp_path, seeded):
    _refused(seeded, _csv(tmp_path, ["东,北,kind", "121.47,31.23,above_ground"]), r"--lon COLUMN --lat COLUMN")


def test_unknown_format_is_refused(tmp_path, seeded):
    path = tmp_path / "h.dwg"
    path.write_bytes(b"AC1032" + b"\x00" * 100)
    _refused(seeded, path, r"unknown format")
