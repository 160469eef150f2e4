"""POST /collections/{layer}/import with real files: dry runs, imports, previews and every refusal.

Imports are sent as a GIS editor (a role that writes); reads that check them as a planner.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from contextlib import chdir
from pathlib import Path

import geopandas as gpd
import httpx
import numpy as np
import orjson
import pytest
import shapely
from typer.testing import CliRunner

from tests.api.conftest import Server, add_users, running
from tests.engines import failing_inserts, fresh
from tests.query.twin_fixture import build_twin
from tests.users import bearer
from twin.catalogue import Catalogue
from twin.cli import app as cli_app
from twin.store import open_store


@pytest.fixture(scope="module")
def writable(tmp_path_factory: pytest.TempPathFactory, catalogue: Catalogue) -> Iterator[Server]:
    with fresh(tmp_path_factory.mktemp("imports")) as target:
        build_twin(target, catalogue).close()
        tokens = add_users(target)
        store = open_store(target, catalogue, create=False)
        with running(target) as url:
            yield Server(url, store, target, tokens)
        store.close()


def _hydrants(n: int, seed: int) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(seed)
    pts = shapely.points(121.47 + rng.random(n) * 0.01, 31.23 + rng.random(n) * 0.01)
    return gpd.GeoDataFrame({"类型": ["underground"] * n, "road": [f"西藏中路{i}号" for i in range(n)]},
                            geometry=pts, crs="EPSG:4326")


def _post(server: Server, files: list[tuple[str, bytes]], layer: str = "hydrant", role: str | None = "gis_editor",
          **data: object) -> httpx.Response:
    return httpx.post(f"{server.url}/collections/{layer}/import", files=[("file", f) for f in files],
                      data={k: str(v).lower() if isinstance(v, bool) else v for k, v in data.items()}, timeout=120,
                      headers=server.headers(role) if role else {})


def _count(server: Server) -> int:
    return server.get("/collections/hydrant/items?limit=1").json()["numberMatched"]


def test_geojson_dry_run_then_import(writable: Server, tmp_path: Path) -> None:
    path = tmp_path / "消火栓.geojson"
    _hydrants(6, 1).to_file(path, engine="pyogrio")
    before = _count(writable)
    dry = _post(writable, [(path.name, path.read_bytes())], map="类型=kind")
    assert dry.status_code == 200, dry.text
    body = dry.json()
    assert body["report"]["dry_run"] is True and body["changeset"] is None
    assert body["report"]["inserted"] == 6 and body["report"]["mapping"]["类型"] == "kind"
    assert [f["properties"]["action"] for f in body["preview"]["features"]] == ["insert"] * 6
    assert _count(writable) == before
    done = _post(writable, [(path.name, path.read_bytes())], map="类型=kind", dry_run=False, note="from the web")
    assert done.status_code == 200 and isinstance(done.json()["changeset"], int)
    keys = [f["properties"]["key"] for f in done.json()["preview"]["features"]]
    assert _count(writable) == before + 6
    item = writable.get(f"/collections/hydrant/items/{keys[0]}").json()
    assert item["properties"]["kind"] == "underground"
    near = writable.get("/collections/hydrant/nearest", params={
        "point": ",".join(map(str, item["geometry"]["coordinates"])), "k": 1}).json()
    assert near["features"][0]["id"] == keys[0]  # the live index saw the import
    again = _post(writable, [(path.name, path.read_bytes())], map="类型=kind", dry_run=False).json()
    assert again["report"]["unchanged"] == 6 and again["report"]["inserted"] == 0
    events = writable.get("/audit", role="admin", params={"action": "import", "layer": "hydrant"}).json()["events"]
    mine = [e for e in events if e["detail"].startswith(f"changeset {done.json()['changeset']} of")]
    assert len(mine) == 1 and mine[0]["role"] == "gis_editor" and mine[0]["count"] == 6
    assert mine[0]["user"].startswith("gis_editor-") and mine[0]["outcome"] == "ok"


def test_zipped_gauss_kruger_shapefile_in_gbk(writable: Server, tmp_path: Path) -> None:
    frame = _hydrants(4, 2).rename(columns={"类型": "kind"}).to_crs("EPSG:4549")
    frame.to_file(tmp_path / "hy.shp", encoding="GBK", engine="pyogrio")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for part in tmp_path.glob("hy.*"):
            z.write(part, part.name)
    body = _post(writable, [("hydrants.zip", buf.getvalue())]).json()
    assert body["report"]["crs"] == "EPSG:4549" and body["report"]["inserted"] == 4
    assert body["report"]["encoding"].upper() in ("GBK", "GB18030")


def test_csv_with_a_bad_row_is_reported_by_row(writable: Server) -> None:
    csv = b"kind,lon,lat,road\nunderground,121.471,31.231,a\nsideways,121.472,31.232,b\n"
    body = _post(writable, [("h.csv", csv)], lon="lon", lat="lat").json()
    report = body["report"]
    assert report["inserted"] == 1 and report["rejected"] == 1
    assert report["problems"][0]["row"] == 3 and report["problems"][0]["field"] == "kind"
    actions = sorted(f["properties"]["action"] for f in body["preview"]["features"])
    assert actions == ["insert", "reject"]


@pytest.mark.parametrize(("files", "data", "status", "needle"), [
    ([], {}, 400, "'file'"),
    ([("a.dbf", b"x"), ("a.shx", b"y")], {}, 400, ".shp"),
    ([("a.geojson", b"{not json")], {"dry_run": "false"}, 422, "a.geojson"),
    ([("a.exe", b"MZ\x90\x00")], {}, 422, "a.exe"),
    ([("a.geojson", b'{"type":"FeatureCollection","features":[]}')], {"dry_run": "maybe"}, 400, "dry_run"),
    ([("a.csv", b"kind,lon,lat\nunderground,121.47,31.23\n")], {"map": "nonsense"}, 422, "nonsense"),
])
def test_refusals_are_clear_and_write_nothing(writable: Server, files: list, data: dict, status: int,
                                              needle: str) -> None:
    before = _count(writable)
    r = _post(writable, files, **data)
    assert r.status_code == status, r.text[:300]
    assert needle in r.json()["description"]
    assert _count(writable) == before


def test_unsafe_zip_is_refused(writable: Server) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("../../evil.geojson", '{"type":"FeatureCollection","features":[]}')
    r = _post(writable, [("evil.zip", buf.getvalue())], dry_run=False)
    assert r.status_code == 422 and "evil" in r.json()["description"]


def test_unknown_layer_bad_body_and_no_length(writable: Server) -> None:
    assert _post(writable, [("a.csv", b"x")], layer="nope").status_code == 404
    form = {"Content-Type": "multipart/form-data; boundary=x", **writable.headers("gis_editor")}
    r = httpx.post(f"{writable.url}/collections/hydrant/import", content=b"--x\r\nnot a form", headers=form,
                   timeout=30)
    assert r.status_code == 400
    chunked = httpx.post(f"{writable.url}/collections/hydrant/import", content=iter([b"abc"]), headers=form,
                         timeout=30)
    assert chunked.status_code == 411


@pytest.mark.parametrize(("role", "status"), [(None, 401), ("planner", 403)])
def test_imports_need_a_role_that_writes(writable: Server, role: str | None, status: int) -> None:
    before = _count(writable)
    csv = b"kind,lon,lat\nunderground,121.47,31.23\n"
    r = _post(writable, [("h.csv", csv)], role=role, lon="lon", lat="lat", dry_run=False)
    assert r.status_code == status, r.text[:300]
    assert ("token" if status == 401 else "may not write") in r.json()["description"]
    assert _count(writable) == before


def test_upload_size_is_bounded(target: str, catalogue: Catalogue) -> None:
    build_twin(target, catalogue).close()
    tokens = add_users(target, ("gis_editor",))
    with running(target, max_upload_mb=1) as url:
        r = httpx.post(f"{url}/collections/hydrant/import", headers=bearer(tokens["gis_editor"]), timeout=120,
                       files=[("file", ("big.csv", b"kind,lon,lat\n" + b"underground,121.47,31.23\n" * 60_000))])
        assert r.status_code == 413 and "TWIN_MAX_UPLOAD_MB" in r.json()["description"]


# -- files of realistic size, over HTTP and on the command line: one import path ------------------------------------

runner = CliRunner()
#: Report fields that differ between two runs of the same import (timing, sample timestamps, changeset ids).
_VOLATILE = ("seconds", "samples", "changeset")


def _essentials(report: dict) -> dict:
    return {k: v for k, v in report.items() if k not in _VOLATILE}


def _cli_import(store: str, path: Path, options: dict[str, str], *flags: str) -> dict:
    """``twin import`` of ``path`` with the form's options as flags; its JSON report."""
    out = path.with_suffix(".report.json")
    args = [a for k, v in options.items() for a in (f"--{k.replace('_', '-')}", v)]
    result = runner.invoke(cli_app, ["import", str(path), "--layer", "hydrant", "--store", store, *args,
                                     *flags, "--report", str(out)])
    assert result.exit_code == 0, result.output
    return orjson.loads(out.read_bytes())


def _geojson_points(tmp_path: Path) -> tuple[Path, dict[str, str], int]:
    path = tmp_path / "消火栓_3000.geojson"
    _hydrants(3000, 11).assign(geometry=lambda f: f.geometry.translate(0.03, 0.0)).to_file(path, engine="pyogrio")
    return path, {"map": "类型=kind"}, 0


def _gbk_shapefile(tmp_path: Path) -> tuple[Path, dict[str, str], int]:
    frame = _hydrants(2000, 12).rename(columns={"类型": "kind"})
    frame = frame.assign(geometry=frame.geometry.translate(-0.03, 0.0)).to_crs("EPSG:4549")
    frame.to_file(tmp_path / "hy.shp", encoding="GBK", engine="pyogrio")
    path = tmp_path / "消火栓_gbk.zip"
    with zipfile.ZipFile(path, "w") as z:
        for part in tmp_path.glob("hy.*"):
            z.write(part, f"导出/{part.name}")
    return path, {}, 0


def _csv_with_a_bad_row(tmp_path: Path) -> tuple[Path, dict[str, str], int]:
    rng = np.random.default_rng(13)
    lines = ["经度,纬度,kind,road"] + [
        f"{121.47 + rng.random() * 0.01:.6f},{31.26 + rng.random() * 0.01:.6f},"
        f"{'sideways' if i == 2000 else 'underground'},北京东路{i}号" for i in range(4000)]
    path = tmp_path / "hydrants.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, {}, 1


@pytest.mark.parametrize("make", [_geojson_points, _gbk_shapefile, _csv_with_a_bad_row])
def test_realistic_files_import_over_http_as_on_the_command_line(writable: Server, tmp_path: Path, make) -> None:
    path, options, bad = make(tmp_path)
    files = [(path.name, path.read_bytes())]
    before = _count(writable)
    dry = _post(writable, files, **options)
    assert dry.status_code == 200, dry.text[:500]
    report = dry.json()["report"]
    assert _essentials(report) == _essentials(_cli_import(writable.target, path, options, "--dry-run"))
    n = report["read"] - bad
    assert (report["inserted"], report["rejected"]) == (n, bad) and _count(writable) == before
    assert dry.json()["preview"]["twin:actions"] == {"insert": n, **({"reject": bad} if bad else {})}
    done = _post(writable, files, dry_run=False, **options)
    assert done.status_code == 200, done.text[:500]
    assert done.json()["report"]["inserted"] == n and isinstance(done.json()["changeset"], int)
    assert _count(writable) == before + n
    again = _cli_import(writable.target, path, options)  # the CLI finds every component the HTTP import made
    assert (again["inserted"], again["unchanged"]) == (0, n)


def test_a_csv_report_names_its_coordinate_columns(writable: Server) -> None:
    csv = "东坐标,北坐标,kind\n121.4712,31.2311,underground\n".encode()
    found = _post(writable, [("h.csv", csv)], lon="东坐标", lat="北坐标").json()["report"]
    assert found["coordinates"] == {"lon": "东坐标", "lat": "北坐标"}
    assert found["coordinates_how"] == "given with --lon/--lat"


def test_a_file_gdal_cannot_read_is_explained_in_twin_terms(writable: Server) -> None:
    r = _post(writable, [("survey.json", b'{"a":')])
    assert r.status_code == 422, r.text
    text = r.json()["description"]
    assert text.startswith("survey.json: not a readable GeoJSON file") and "twin reads Shapefile" in text
    assert "DRIVER" not in text and "prefix" not in text and "twin-upload" not in text and "/tmp" not in text


@pytest.mark.parametrize(("form", "flags"), [
    ({"extent": "121.6,31.1,121.4,31.3"}, ["--extent", "121.6,31.1,121.4,31.3"]),
    ({"map": "路名 road"}, ["--map", "路名 road"]),
    ({"mapping": "- just\n- a list\n"}, None),
])
def test_the_form_and_the_command_line_refuse_the_same_options_alike(writable: Server, tmp_path: Path,
                                                                      form: dict, flags: list[str] | None) -> None:
    csv = tmp_path / "h.csv"
    csv.write_text("kind,lon,lat\nunderground,121.47,31.23\n", encoding="utf-8")
    if flags is None:
        (tmp_path / "mapping").write_text(form["mapping"], encoding="utf-8")
        flags = ["--mapping", "mapping"]
    r = _post(writable, [("h.csv", csv.read_bytes())], **form)
    assert r.status_code in (400, 422), r.text[:300]
    with chdir(tmp_path):
        result = runner.invoke(cli_app, ["import", "h.csv", "--layer", "hydrant", "--store", writable.target,
                                         *flags])
    assert result.exit_code == 1
    assert " ".join(result.output.split()) == f"error: {r.json()['description']}"


# -- every outcome is audited ---------------------------------------------------------------------------------------

def _import_events(server: Server, **params: str) -> list[dict]:
    params = {"action": "import", "layer": "hydrant", **params}
    return server.get("/audit", role="admin", params=params).json()["events"]


def test_an_import_failing_inside_the_store_is_audited_and_answered_without_internals(writable: Server,
                                                                                     tmp_path: Path) -> None:
    path = tmp_path / "h.geojson"
    _hydrants(50, 21).to_file(path, engine="pyogrio")
    before = _count(writable)
    with failing_inserts(writable.target, "hydrant"):
        r = _post(writable, [(path.name, path.read_bytes())], map="类型=kind", dry_run=False)
    assert r.status_code == 503 and r.headers["Retry-After"]
    body = r.json()
    assert body["code"] == "StoreUnavailable" and "retry shortly" in body["description"]
    assert "disk" not in r.text and "Integrity" not in r.text and "Raise" not in r.text
    assert _count(writable) == before
    (event,) = _import_events(writable, outcome="failed")
    assert (event["status"], event["role"], event["count"]) == (503, "gis_editor", None)
    # the operator's trail says what the database said, in one line without the rows it was given
    assert "the database refused the write: database or disk is full" in event["detail"]
    assert "\n" not in event["detail"] and "HY-" not in event["detail"]


@pytest.mark.parametrize(("files", "data", "status"), [
    ([("a.csv", b"kind,lon,lat\nunderground,121.47,31.23\n")], {"dry_run": "maybe"}, 400),
    ([("a.csv", b"kind,lon,lat\nunderground,121.47,31.23\n")], {"map": "nonsense"}, 422),
    ([], {}, 400),
])
def test_refused_http_imports_are_audited_as_rejected(writable: Server, files: list, data: dict,
                                                      status: int) -> None:
    r = _post(writable, files, **data)
    assert r.status_code == status
    events = _import_events(writable, outcome="rejected")
    assert any(e["detail"] == r.json()["description"] and e["status"] == status for e in events)
