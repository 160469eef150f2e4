"""``twin import`` and ``twin export`` on the command line, against a real store of this run's engine."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pyogrio
import pytest
from typer.testing import CliRunner

from tests.engines import failing_inserts, nothing_at
from tests.io.conftest import hydrant_frame, write
from twin.catalogue import load_catalogue
from twin.cli import app
from twin.cli.audit import audited
from twin.cli.common import settings
from twin.settings import DEFAULT_LAYERS_DIR
from twin.store import open_store

runner = CliRunner()


def _count(path) -> int:
    st = open_store(path, load_catalogue(DEFAULT_LAYERS_DIR), create=False)
    try:
        return st.count("hydrant")
    finally:
        st.close()


def test_import_prints_a_report_and_writes_json(tmp_path, target):
    src = write(hydrant_frame(), tmp_path / "h.gpkg")
    store = target
    result = runner.invoke(app, ["import", str(src), "--layer", "hydrant", "--store", str(store),
                                 "--report", str(tmp_path / "r.json")])
    assert result.exit_code == 0, result.output
    assert "inserted" in result.output and "EPSG:4326" in result.output
    data = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert data["inserted"] == 8 and data["layer"] == "hydrant" and data["changeset"] == 1
    assert _count(store) == 8


def test_dry_run_with_mapping_shows_samples_and_writes_nothing(tmp_path, target):
    frame = hydrant_frame().rename(columns={"road": "路名"})
    src = write(frame, tmp_path / "h.geojson")
    store = target
    result = runner.invoke(app, ["import", str(src), "--layer", "hydrant", "--store", str(store), "--dry-run",
                                 "--map", "路名=road"])
    assert result.exit_code == 0, result.output
    assert "dry run" in result.output and "sample: insert" in result.output and "路名 → road" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h.geojson"]  # no store, -wal, -shm or access db
    assert nothing_at(target)  # nor a schema


def test_refused_import_exits_1_with_a_clear_message(tmp_path, target):
    shp = write(hydrant_frame(), tmp_path / "h.shp")
    shp.with_suffix(".dbf").unlink()
    result = runner.invoke(app, ["import", str(shp), "--layer", "hydrant", "--store", target,
                                 "--report", str(tmp_path / "r.json")])
    assert result.exit_code == 1
    assert "attribute table" in result.output
    assert "attribute table" in json.loads((tmp_path / "r.json").read_text())["error"]


def test_bad_extent_is_refused(tmp_path, target):
    src = write(hydrant_frame(), tmp_path / "h.gpkg")
    result = runner.invoke(app, ["import", str(src), "--layer", "hydrant", "--store", target,
                                 "--extent", "1,2,3"])
    assert result.exit_code == 1 and "minx,miny,maxx,maxy" in result.output


def test_export_writes_the_file_and_reports_renamed_fields(tmp_path, target):
    store = target
    runner.invoke(app, ["import", str(write(hydrant_frame(), tmp_path / "h.gpkg")), "--layer", "hydrant",
                        "--store", str(store)])
    result = runner.invoke(app, ["export", "hydrant", "--format", "shp", "--out", str(tmp_path / "out.shp"),
                                 "--store", str(store), "--bbox", "121.3,31.1,121.6,31.3", "--crs", "EPSG:4549"])
    assert result.exit_code == 0, result.output
    assert "exported 8" in result.output and "outlet_dia" in result.output
    assert (tmp_path / "out.cpg").exists()


def test_export_as_of_writes_the_layer_as_it_was(tmp_path, target):
    runner.invoke(app, ["import", str(write(hydrant_frame(), tmp_path / "h.gpkg")), "--layer", "hydrant",
                        "--store", str(target)])
    st = open_store(target, load_catalogue(DEFAULT_LAYERS_DIR), create=False)
    try:
        before = st.features("hydrant").set_index("key").road.to_dict()
        time.sleep(0.003)
        moment = datetime.now(UTC).isoformat(timespec="milliseconds")
        time.sleep(0.003)
        keys = sorted(before)
        st.edit(keys[0], author="t", properties={"road": "新路"})
        st.delete("hydrant", [keys[1]], author="t")
    finally:
        st.close()
    out = tmp_path / "then.gpkg"
    result = runner.invoke(app, ["export", "hydrant", "--out", str(out), "--store", str(target), "--as-of", moment])
    assert result.exit_code == 0, result.output
    then = pyogrio.read_dataframe(out)  # read back by GDAL
    assert then.set_index("key").road.to_dict() == before
    bad = runner.invoke(app, ["export", "hydrant", "--out", str(out), "--store", str(target), "--as-of", "then"])
    assert bad.exit_code == 1 and "as_of" in bad.output


def _audit(store, *args: str) -> list[dict]:
    result = runner.invoke(app, ["audit", "--json", "--store", str(store), *args])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.output.splitlines()]


def test_a_csv_report_says_which_columns_held_the_coordinates(tmp_path, target):
    src = tmp_path / "lights.csv"
    src.write_text("纬度,经度,lamp_type\n31.2301,121.4702,led\n31.2302,121.4705,led\n", encoding="utf-8")
    result = runner.invoke(app, ["import", str(src), "--layer", "street_light", "--store", target,
                                 "--dry-run", "--report", str(tmp_path / "r.json")])
    assert result.exit_code == 0, result.output
    assert "coordinates" in result.output and "lon: 经度, lat: 纬度" in result.output
    assert "found by their names" in result.output
    data = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert data["coordinates"] == {"lon": "经度", "lat": "纬度"} and "found by their names" in data["coordinates_how"]


def test_a_refused_import_into_a_store_that_does_not_exist_creates_nothing(tmp_path, target):
    src = tmp_path / "h.geojson"
    src.write_text('{"type": "FeatureCollection", "features": []}', encoding="utf-8")
    for flags in ([], ["--dry-run"], ["--extent", "121.6,31.1,121.4,31.3"]):
        result = runner.invoke(app, ["import", str(src), "--layer", "hydrant", "--store", target,
                                     *flags])
        assert result.exit_code == 1, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h.geojson"] and nothing_at(target)


def test_an_import_into_a_new_store_creates_it_and_audits_it(tmp_path, target):
    store = target
    result = runner.invoke(app, ["import", str(write(hydrant_frame(), tmp_path / "h.gpkg")), "--layer", "hydrant",
                                 "--store", str(store)])
    assert result.exit_code == 0, result.output
    assert _count(store) == 8
    (event,) = _audit(store)
    assert (event["outcome"], event["count"]) == ("ok", 8)


def test_an_import_refused_for_its_options_is_audited(tmp_path, target):
    store = target
    src = write(hydrant_frame(), tmp_path / "h.gpkg")
    assert runner.invoke(app, ["import", str(src), "--layer", "hydrant", "--store", str(store)]).exit_code == 0
    mapping = tmp_path / "m.yaml"
    mapping.write_text("- not\n- a mapping\n", encoding="utf-8")
    for flags in (["--extent", "1,2,3"], ["--mapping", str(mapping)], ["--map", "nonsense"]):
        result = runner.invoke(app, ["import", str(src), "--layer", "hydrant", "--store", str(store), *flags])
        assert result.exit_code == 1
    refused = _audit(store, "--outcome", "rejected")
    assert [e["detail"].split(": ", 1)[1][:10] for e in refused] == ["--map 'non", f"{mapping}"[:10], "--extent '"]


def test_an_import_failing_inside_the_store_is_audited_as_failed(tmp_path, target):
    store = target
    src = write(hydrant_frame(), tmp_path / "h.gpkg")
    assert runner.invoke(app, ["import", str(src), "--layer", "hydrant", "--store", str(store)]).exit_code == 0
    moved = hydrant_frame().assign(geometry=hydrant_frame().geometry.translate(0.001, 0.0))
    with failing_inserts(store, "hydrant", "disk full"):
        result = runner.invoke(app, ["import", str(write(moved, tmp_path / "moved.gpkg")), "--layer", "hydrant",
                                     "--store", str(store)])
    assert result.exit_code != 0
    assert _count(store) == 8
    (failed,) = _audit(store, "--outcome", "failed")
    # one line naming what the database said, never the rows it was given (PostgreSQL quotes them in a CONTEXT)
    assert failed["layer"] == "hydrant" and "moved.gpkg: " in failed["detail"] and "\n" not in failed["detail"]
    assert "the database refused the write: disk full" in failed["detail"]
    assert "HY-" not in failed["detail"] and "测试路" not in failed["detail"] and "路" not in failed["detail"]


def test_an_interrupted_import_is_audited_as_failed(tmp_path, target):
    store = target
    assert runner.invoke(app, ["import", str(write(hydrant_frame(), tmp_path / "h.gpkg")), "--layer", "hydrant",
                               "--store", str(store)]).exit_code == 0
    cfg = settings(store)
    with pytest.raises(KeyboardInterrupt), audited(cfg, "import", "hydrant", "big.shp"):
        raise KeyboardInterrupt
    (failed,) = _audit(store, "--outcome", "failed")
    assert failed["detail"] == "big.shp: interrupted"


def test_an_import_leaves_the_layers_tile_aggregates_built(tmp_path, target):
    from tiles.aggregate import Aggregates

    src = write(hydrant_frame(), tmp_path / "h.gpkg")
    result = runner.invoke(app, ["import", str(src), "--layer", "hydrant", "--store", str(target)])
    assert result.exit_code == 0, result.output
    assert "tile aggregates of hydrant up to date" in result.output
    st = open_store(target, load_catalogue(DEFAULT_LAYERS_DIR), create=False)
    try:
        aggregates = Aggregates(st)
        with st.read() as snap:  # a server starting now has nothing to build
            assert aggregates.state(snap, aggregates.plan("hydrant")) == snap.last_changeset("hydrant") == 1
    finally:
        st.close()
