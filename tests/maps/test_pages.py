"""The map's HTTP side against a real server: pages, configuration, static files, roads, and the import endpoint."""

from __future__ import annotations

import re
from pathlib import Path

import geopandas as gpd
import httpx
import numpy as np
import pytest
import shapely

from tests.maps.conftest import OFFICER_AREA
from tests.maps.htmlrefs import external, loaded_refs
from tests.maps.server import GEOJSON_MAX, running
from tests.users import add_user, bearer
from twin.catalogue import Catalogue
from twin.settings import DEFAULT_LAYERS_DIR, MapSettings
from twin.store import Store, open_store


def get(url: str, token: str | None = None, headers: dict[str, str] | None = None, **kwargs: object
        ) -> httpx.Response:
    return httpx.get(url, timeout=60, headers={**(headers or {}), **(bearer(token) if token else {})}, **kwargs)


def test_map_page_loads_only_local_assets(city_url: str, tokens: dict[str, str]) -> None:
    page = get(city_url + "/map", tokens["planner"])
    assert page.status_code == 200 and "上海城市数字孪生地图" in page.text
    assert page.headers["cache-control"] == "private, no-store"  # built for this user
    refs = [r for r in loaded_refs(page.text) if not r.startswith("data:")]
    assert external(refs) == [] and len(refs) == 14  # Leaflet, VectorGrid, twin's own scripts and styles
    for ref in refs:
        assert get(city_url + ref).status_code == 200, ref  # static files need no sign-in
    assert "L.VectorGrid" in get(city_url + "/static/vendor/vectorgrid/Leaflet.VectorGrid.bundled.min.js").text


def test_visitors_are_sent_to_sign_in(city_url: str) -> None:
    for page in ("/map", "/import"):
        answer = get(city_url + page)
        assert answer.status_code == 303 and answer.headers["location"] == f"/login?next={page}"
    assert get(city_url + "/map/config.json").status_code == 401
    login = get(city_url + "/map", follow_redirects=True)
    assert login.status_code == 200 and 'name="token"' in login.text and 'value="/map"' in login.text
    assert "登录" in login.text and "Sign in" in login.text
    assert external(loaded_refs(login.text)) == []


def test_config_describes_every_layer(city_url: str, city: Store, catalogue: Catalogue,
                                      tokens: dict[str, str]) -> None:
    cfg = get(city_url + "/map/config.json", tokens["planner"]).json()
    layers = {la["id"]: la for la in cfg["layers"]}
    assert list(layers) == list(catalogue)
    for layer_id, la in layers.items():
        spec = catalogue[layer_id]
        assert la["count"] == city.count(layer_id)
        assert la["title_zh"] == spec.title_zh and la["group"] == spec.group.value
        assert la["mode"] == ("tiles" if la["count"] > GEOJSON_MAX else "geojson")
        assert [f["title_zh"] for f in la["fields"]] == [f.title_zh for f in spec.fields]
        assert [f["name"] for f in la["fields"] if f["masked"]] == list(spec.sensitive_fields)
    assert cfg["user"] == {"name": "test-planner", "anonymous": False, "role": "planner", "zh": "规划人员",
                           "en": "Planner", "area": None, "can_import": False}
    assert cfg["writable"] == []
    admin = get(city_url + "/map/config.json", tokens["admin"]).json()
    assert not any(f["masked"] for la in admin["layers"] for f in la["fields"])  # admins see personal data
    assert admin["tiles"] != cfg["tiles"]  # no browser cache shares tiles between the two
    hydrant = layers["hydrant"]
    assert {s["id"]: s["color"] for s in hydrant["statuses"]} == dict(catalogue["hydrant"].style.status_colors)
    assert layers["residential_compound"]["search"] == ["name", "address"]  # never the sensitive fields
    assert re.fullmatch(r"/tiles/\{layers\}/\{z\}/\{x\}/\{y\}\.mvt\?v=[0-9a-f]{12}", cfg["tiles"])
    assert [b["id"] for b in cfg["basemaps"]] == ["twin", "none"]  # no online basemap unless configured
    assert [g["id"] for g in cfg["groups"]] == ["infrastructure", "construction", "residential", "heritage",
                                                "administrative"]


def test_an_area_officer_sees_their_area(city_url: str, city: Store, tokens: dict[str, str],
                                         area_key: str) -> None:
    cfg = get(city_url + "/map/config.json", tokens["area_officer"]).json()
    area = city.get(area_key).geometry.iloc[0]
    for la in cfg["layers"]:
        inside = shapely.intersects(area, city.features(la["id"]).geometry.to_numpy())
        assert la["count"] == int(inside.sum()), la["id"]  # counted inside the area only
        assert la["mode"] == ("tiles" if la["count"] > GEOJSON_MAX else "geojson")
    counts = {la["id"]: la["count"] for la in cfg["layers"]}
    assert 0 < counts["hydrant"] < city.count("hydrant") and counts["committee"] == 3  # itself and two neighbours
    user = cfg["user"]
    assert user["role"] == "area_officer" and user["area"]["name"] == OFFICER_AREA and user["area"]["zh"] == "居委"
    assert cfg["view"] == pytest.approx(list(area.bounds))  # it opens on the area
    outline = shapely.geometry.shape(user["area"]["outline"])
    assert shapely.hausdorff_distance(outline, area) < 2e-5


def test_roads_are_gzipped_cached_and_revalidated(city_url: str) -> None:
    first = httpx.get(city_url + "/map/basemap/roads.geojson", headers={"Accept-Encoding": "gzip"}, timeout=60)
    assert first.headers["content-encoding"] == "gzip" and len(first.content) > 1000
    fc = first.json()
    assert {f["properties"]["c"] for f in fc["features"]} == {0, 1, 2}
    again = get(city_url + "/map/basemap/roads.geojson", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    plain = httpx.get(city_url + "/map/basemap/roads.geojson", headers={"Accept-Encoding": "identity"}, timeout=60)
    assert "content-encoding" not in plain.headers
    assert plain.json() == fc  # httpx undid the gzip of the first answer


def test_online_basemaps_are_opt_in(city_target: str, tokens: dict[str, str]) -> None:
    settings = MapSettings(basemaps="amap,tianditu", tianditu_key="k123", geojson_max=GEOJSON_MAX)
    with running(city_target, settings) as url:
        bases = {b["id"]: b for b in get(url + "/map/config.json", tokens["planner"]).json()["basemaps"]}
    assert bases["amap"]["crs"] == "gcj02" and bases["tianditu"]["crs"] == "wgs84"
    assert "tk=k123" in bases["tianditu"]["url"]
    with pytest.raises(ValueError, match="TIANDITU_KEY"):
        from twin.maps.basemap import online_basemaps
        online_basemaps(MapSettings(basemaps="tianditu"))


def messy_shapefile(folder: Path, n: int = 12, bad: int = 1) -> list[Path]:
    """Hydrants as GIS staff send them: GBK text, no .cpg, CGCS2000 3-degree Gauss-Krüger (EPSG:4549)."""
    rng = np.random.default_rng(5)
    lon, lat = 121.472 + rng.random(n) * 0.006, 31.230 + rng.random(n) * 0.005
    frame = gpd.GeoDataFrame({"kind": ["above_ground"] * (n - bad) + ["sideways"] * bad,
                              "road": [f"人民大道{i}号" for i in range(n)], "owner": ["上海市自来水公司"] * n},
                             geometry=shapely.points(lon, lat), crs="EPSG:4326").to_crs("EPSG:4549")
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_file(folder / "消火栓.shp", encoding="GBK", engine="pyogrio")
    (folder / "消火栓.cpg").unlink(missing_ok=True)
    return sorted(folder.glob("消火栓.*"))


def _post(url: str, token: str, files: list[Path], **data: str) -> httpx.Response:
    parts = [("file", (p.name, p.read_bytes())) for p in files]
    return httpx.post(url + "/collections/hydrant/import", files=parts, data=data, timeout=120,
                      headers=bearer(token))


def test_import_dry_run_then_confirm(own_city: str, tmp_path: Path, catalogue: Catalogue) -> None:
    files = messy_shapefile(tmp_path / "shp")
    before = open_store(own_city, catalogue, create=False)
    count = before.count("hydrant")
    before.close()
    token = add_user(own_city, "editor", "gis_editor")
    with running(own_city) as url:
        page = get(url + "/import", token)
        assert page.status_code == 200 and '<option value="hydrant">' in page.text
        dry = _post(url, token, files)
        assert dry.status_code == 200, dry.text
        report, preview = dry.json()["report"], dry.json()["preview"]
        assert report["dry_run"] and report["read"] == 12 and report["inserted"] == 11 and report["rejected"] == 1
        assert report["crs"] == "EPSG:4549" and report["encoding"].upper() in ("GBK", "GB18030")
        assert report["problems"][0]["row"] == 12 and report["problems"][0]["field"] == "kind"
        actions = [f["properties"]["action"] for f in preview["features"]]
        assert actions.count("insert") == 11 and actions.count("reject") == 1
        assert get(url + "/collections/hydrant/items?limit=1", token).json()["numberMatched"] == count  # unwritten
        done = _post(url, token, files, dry_run="false", note="web import")
        assert done.status_code == 200 and done.json()["report"]["changeset"] is not None
        keys = [f["properties"]["key"] for f in done.json()["preview"]["features"] if f["properties"].get("key")]
        assert len(keys) == 11
        item = get(f"{url}/collections/hydrant/items/{keys[0]}", token).json()
        assert item["properties"]["owner"] == "上海市自来水公司"
        counts = {la["id"]: la["count"] for la in get(url + "/map/config.json", token).json()["layers"]}
        assert counts["hydrant"] == count + 11


def test_import_refusals_are_clear_and_write_nothing(own_city: str, tmp_path: Path) -> None:
    files = messy_shapefile(tmp_path / "shp", n=3, bad=3)
    token, planner = add_user(own_city, "editor", "gis_editor"), add_user(own_city, "planner", "planner")
    with running(own_city) as url:
        count = get(url + "/collections/hydrant/items?limit=1", token).json()["numberMatched"]
        rejected = _post(url, token, files, dry_run="false")
        assert rejected.status_code == 422 and "no row of the file can be imported" in rejected.json()["description"]
        parts = _post(url, token, [f for f in files if f.suffix != ".shp"])
        assert parts.status_code == 400 and ".shp" in parts.json()["description"]
        strict = _post(url, token, messy_shapefile(tmp_path / "s2"), dry_run="false", strict="true")
        assert strict.status_code == 422 and "--strict" in strict.json()["description"]
        assert _post(url, planner, messy_shapefile(tmp_path / "s3"), dry_run="false").status_code == 403
        assert get(url + "/collections/hydrant/items?limit=1", token).json()["numberMatched"] == count


def _site_rules(folder: Path) -> tuple[Path, Path]:
    """A catalogue whose compounds' phone numbers are dropped (not masked), and a policy with narrow roles and a
    public layer."""
    layers = folder / "layers"
    layers.mkdir(parents=True)
    for spec in DEFAULT_LAYERS_DIR.glob("*.yaml"):
        text = spec.read_text(encoding="utf-8")
        if spec.stem == "residential_compound":
            text = text.replace("name: contact_phone, title_zh: 联系电话, type: string, sensitive: phone",
                                "name: contact_phone, title_zh: 联系电话, type: string, sensitive: drop")
            assert "sensitive: drop" in text
        (layers / spec.name).write_text(text, encoding="utf-8")
    policy = folder / "policy.yaml"
    policy.write_text("public_layers: [hydrant]\nroles:\n  admin: {read: '*', write: '*', unmask: '*', manage: true}\n"
                      "  viewer: {read: [hydrant, residential_compound]}\n"
                      "  hydrant_editor: {read: '*', write: [hydrant], unmask: [residential_compound.contact_phone]}\n",
                      encoding="utf-8")
    return layers, policy


def test_pages_follow_the_sites_policy(own_city: str, tmp_path: Path) -> None:
    layers, policy = _site_rules(tmp_path / "site")
    users = {role: add_user(own_city, role, role, layers=layers, policy=policy)
             for role in ("admin", "viewer", "hydrant_editor")}
    with running(own_city, layers=layers, access_policy=policy) as url:
        viewer = get(url + "/map/config.json", users["viewer"]).json()
        assert [la["id"] for la in viewer["layers"]] == ["hydrant", "residential_compound"]  # what the role reads
        fields = {f["name"]: f for f in viewer["layers"][1]["fields"]}
        assert "contact_phone" not in fields and fields["property_manager"]["masked"]  # dropped / masked
        assert viewer["user"]["role"] == "viewer" and viewer["user"]["zh"] == "viewer"  # a site's own role
        editor = {la["id"]: la for la in get(url + "/map/config.json", users["hydrant_editor"]).json()["layers"]}
        fields = {f["name"]: f for f in editor["residential_compound"]["fields"]}
        assert not fields["contact_phone"]["masked"] and fields["property_manager"]["masked"]
        page = get(url + "/import", users["hydrant_editor"])
        assert page.status_code == 200 and re.findall(r'<option value="(\w+)">.*\(\w\w\)', page.text) == ["hydrant"]
        refused = get(url + "/import", users["viewer"])
        assert refused.status_code == 403 and "不能导入" in refused.text and "may not import" in refused.text
        assert "<b>viewer</b>" in refused.text and external(loaded_refs(refused.text)) == []
        visitor = get(url + "/map/config.json").json()  # a visitor sees the public layers, and may sign in
        assert [la["id"] for la in visitor["layers"]] == ["hydrant"] and visitor["user"]["anonymous"]
        page = get(url + "/map")
        assert page.status_code == 200 and 'id="twin-sign-in"' in page.text and "twin-sign-out" not in page.text
        assert get(url + "/import").headers["location"] == "/login?next=/import"
        audit = get(url + "/audit?action=denied", users["admin"]).json()["events"]
        assert [(e["user"], e["status"], e["path"]) for e in audit] == [("viewer", 403, "/import")]
