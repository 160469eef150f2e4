"""The map's HTTP side against a real server: pages, configuration, static files, roads, and the import endpoint."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import httpx
import numpy as np
import pytest
import shapely

from tests.maps.htmlrefs import external, loaded_refs
from tests.maps.server import GEOJSON_MAX, running
from twin.catalogue import Catalogue
from twin.maps.basemap import MapSettings
from twin.store import GeoPackageStore, open_store


def get(url: str, **kwargs: object) -> httpx.Response:
    return httpx.get(url, timeout=60, **kwargs)


def test_map_page_loads_only_local_assets(city_url: str) -> None:
    page = get(city_url + "/map")
    assert page.status_code == 200 and "上海城市数字孪生地图" in page.text
    refs = [r for r in loaded_refs(page.text) if not r.startswith("data:")]
    assert external(refs) == [] and len(refs) == 10  # Leaflet, VectorGrid, twin's own scripts and styles
    for ref in refs:
        assert get(city_url + ref).status_code == 200, ref
    assert "L.VectorGrid" in get(city_url + "/static/vendor/vectorgrid/Leaflet.VectorGrid.bundled.min.js").text


def test_config_describes_every_layer(city_url: str, city: GeoPackageStore, catalogue: Catalogue) -> None:
    cfg = get(city_url + "/map/config.json").json()
    layers = {la["id"]: la for la in cfg["layers"]}
    assert list(layers) == list(catalogue)
    for layer_id, la in layers.items():
        spec = catalogue[layer_id]
        assert la["count"] == city.count(layer_id)
        assert la["title_zh"] == spec.title_zh and la["group"] == spec.group.value
        assert la["mode"] == ("tiles" if la["count"] > GEOJSON_MAX else "geojson")
        assert [f["title_zh"] for f in la["fields"]] == [f.title_zh for f in spec.fields]
    hydrant = layers["hydrant"]
    assert {s["id"]: s["color"] for s in hydrant["statuses"]} == dict(catalogue["hydrant"].style.status_colors)
    assert layers["residential_compound"]["search"] == ["name", "address"]  # never the sensitive fields
    assert cfg["tiles"].endswith("/tiles/{layers}/{z}/{x}/{y}.mvt")
    assert [b["id"] for b in cfg["basemaps"]] == ["twin", "none"]  # no online basemap unless configured
    assert [g["id"] for g in cfg["groups"]] == ["infrastructure", "construction", "residential", "heritage",
                                                "administrative"]


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


def test_online_basemaps_are_opt_in(city_path: Path) -> None:
    settings = MapSettings(basemaps="amap,tianditu", tianditu_key="k123", geojson_max=GEOJSON_MAX)
    with running(city_path, settings) as url:
        bases = {b["id"]: b for b in get(url + "/map/config.json").json()["basemaps"]}
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


def _post(url: str, files: list[Path], **data: str) -> httpx.Response:
    parts = [("file", (p.name, p.read_bytes())) for p in files]
    return httpx.post(url + "/collections/hydrant/import", files=parts, data=data, timeout=120)


def test_import_dry_run_then_confirm(own_city: Path, tmp_path: Path, catalogue: Catalogue) -> None:
    files = messy_shapefile(tmp_path / "shp")
    before = open_store(own_city, catalogue, create=False)
    count = before.count("hydrant")
    before.close()
    with running(own_city) as url:
        dry = _post(url, files)
        assert dry.status_code == 200, dry.text
        report, preview = dry.json()["report"], dry.json()["preview"]
        assert report["dry_run"] and report["read"] == 12 and report["inserted"] == 11 and report["rejected"] == 1
        assert report["crs"] == "EPSG:4549" and report["encoding"].upper() in ("GBK", "GB18030")
        assert report["problems"][0]["row"] == 12 and report["problems"][0]["field"] == "kind"
        actions = [f["properties"]["action"] for f in preview["features"]]
        assert actions.count("insert") == 11 and actions.count("reject") == 1
        assert get(url + "/collections/hydrant/items?limit=1").json()["numberMatched"] == count  # nothing written
        done = _post(url, files, dry_run="false", note="web import")
        assert done.status_code == 200 and done.json()["report"]["changeset"] is not None
        keys = [f["properties"]["key"] for f in done.json()["preview"]["features"] if f["properties"].get("key")]
        assert len(keys) == 11
        item = get(f"{url}/collections/hydrant/items/{keys[0]}").json()
        assert item["properties"]["owner"] == "上海市自来水公司"
        counts = {la["id"]: la["count"] for la in get(url + "/map/config.json").json()["layers"]}
        assert counts["hydrant"] == count + 11


def test_import_refusals_are_clear_and_write_nothing(own_city: Path, tmp_path: Path) -> None:
    files = messy_shapefile(tmp_path / "shp", n=3, bad=3)
    with running(own_city) as url:
        count = get(url + "/collections/hydrant/items?limit=1").json()["numberMatched"]
        rejected = _post(url, files, dry_run="false")
        assert rejected.status_code == 422 and "no row of the file can be imported" in rejected.json()["description"]
        parts = _post(url, [f for f in files if f.suffix != ".shp"])
        assert parts.status_code == 400 and ".shp" in parts.json()["description"]
        strict = _post(url, messy_shapefile(tmp_path / "s2"), dry_run="false", strict="true")
        assert strict.status_code == 422 and "--strict" in strict.json()["description"]
        assert get(url + "/collections/hydrant/items?limit=1").json()["numberMatched"] == count
