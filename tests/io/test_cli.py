"""``twin import`` and ``twin export`` on the command line, against a real store file."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from tests.io.conftest import hydrant_frame, write
from twin.catalogue import load_catalogue
from twin.cli import app
from twin.settings import DEFAULT_LAYERS_DIR
from twin.store import open_store

runner = CliRunner()


def _count(path) -> int:
    st = open_store(path, load_catalogue(DEFAULT_LAYERS_DIR), create=False)
    try:
        return st.count("hydrant")
    finally:
        st.close()


def test_import_prints_a_report_and_writes_json(tmp_path):
    src = write(hydrant_frame(), tmp_path / "h.gpkg")
    store = tmp_path / "twin.gpkg"
    result = runner.invoke(app, ["import", str(src), "--layer", "hydrant", "--store", str(store),
                                 "--report", str(tmp_path / "r.json")])
    assert result.exit_code == 0, result.output
    assert "inserted" in result.output and "EPSG:4326" in result.output
    data = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert data["inserted"] == 8 and data["layer"] == "hydrant" and data["changeset"] == 1
    assert _count(store) == 8


def test_dry_run_with_mapping_shows_samples_and_writes_nothing(tmp_path):
    frame = hydrant_frame().rename(columns={"road": "路名"})
    src = write(frame, tmp_path / "h.geojson")
    store = tmp_path / "twin.gpkg"
    result = runner.invoke(app, ["import", str(src), "--layer", "hydrant", "--store", str(store), "--dry-run",
                                 "--map", "路名=road"])
    assert result.exit_code == 0, result.output
    assert "dry run" in result.output and "sample: insert" in result.output and "路名 → road" in result.output
    assert _count(store) == 0


def test_refused_import_exits_1_with_a_clear_message(tmp_path):
    shp = write(hydrant_frame(), tmp_path / "h.shp")
    shp.with_suffix(".dbf").unlink()
    result = runner.invoke(app, ["import", str(shp), "--layer", "hydrant", "--store", str(tmp_path / "t.gpkg"),
                                 "--report", str(tmp_path / "r.json")])
    assert result.exit_code == 1
    assert "attribute table" in result.output
    assert "attribute table" in json.loads((tmp_path / "r.json").read_text())["error"]


def test_bad_extent_is_refused(tmp_path):
    src = write(hydrant_frame(), tmp_path / "h.gpkg")
    result = runner.invoke(app, ["import", str(src), "--layer", "hydrant", "--store", str(tmp_path / "t.gpkg"),
                                 "--extent", "1,2,3"])
    assert result.exit_code == 1 and "minx,miny,maxx,maxy" in result.output


def test_export_writes_the_file_and_reports_renamed_fields(tmp_path):
    store = tmp_path / "twin.gpkg"
    runner.invoke(app, ["import", str(write(hydrant_frame(), tmp_path / "h.gpkg")), "--layer", "hydrant",
                        "--store", str(store)])
    result = runner.invoke(app, ["export", "hydrant", "--format", "shp", "--out", str(tmp_path / "out.shp"),
                                 "--store", str(store), "--bbox", "121.3,31.1,121.6,31.3", "--crs", "EPSG:4549"])
    assert result.exit_code == 0, result.output
    assert "exported 8" in result.output and "outlet_dia" in result.output
    assert (tmp_path / "out.cpg").exists()
