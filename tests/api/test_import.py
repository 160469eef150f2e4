"""POST /collections/{layer}/import with real files: dry runs, imports, previews and every refusal.

Imports are sent as a GIS editor (a role that writes); reads that check them as a planner.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import httpx
import numpy as np
import pytest
import shapely

from tests.api.conftest import Server, add_users, running
from tests.query.twin_fixture import build_twin
from tests.users import bearer
from twin.catalogue import Catalogue
from twin.store import open_store


@pytest.fixture(scope="module")
def writable(tmp_path_factory: pytest.TempPathFactory, catalogue: Catalogue) -> Iterator[Server]:
    path = tmp_path_factory.mktemp("imports") / "twin.gpkg"
    build_twin(path, catalogue).close()
    tokens = add_users(path)
    store = open_store(path, catalogue, create=False)
    with running(path, warm_index="false") as url:
        yield Server(url, store, path, tokens)
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


def test_upload_size_is_bounded(tmp_path: Path, catalogue: Catalogue) -> None:
    path = tmp_path / "twin.gpkg"
    build_twin(path, catalogue).close()
    tokens = add_users(path, ("gis_editor",))
    with running(path, max_upload_mb=1, warm_index="false") as url:
        r = httpx.post(f"{url}/collections/hydrant/import", headers=bearer(tokens["gis_editor"]), timeout=120,
                       files=[("file", ("big.csv", b"kind,lon,lat\n" + b"underground,121.47,31.23\n" * 60_000))])
        assert r.status_code == 413 and "TWIN_MAX_UPLOAD_MB" in r.json()["description"]
