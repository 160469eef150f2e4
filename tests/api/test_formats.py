"""Representations: GeoJSON (streamed when large), HTML pages, CSV, FlatGeobuf, GeoPackage; f= and Accept."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import httpx
import pyogrio
import pytest
import shapely

from tests.api.conftest import Server, add_users, running
from tests.conftest import hydrants
from tests.query.twin_fixture import COUNTS
from tests.users import bearer
from twin.catalogue import Catalogue
from twin.store import open_store


@pytest.mark.parametrize("fmt", ["fgb", "gpkg"])
def test_file_downloads_read_back_with_gdal(server: Server, tmp_path: Path, fmt: str) -> None:
    r = server.get("/collections/residential_compound/items", params={"f": fmt, "limit": 1000})
    assert r.status_code == 200
    assert f'filename="residential_compound.{fmt}"' in r.headers["content-disposition"]
    path = tmp_path / f"out.{fmt}"
    path.write_bytes(r.content)
    frame = pyogrio.read_dataframe(path)
    assert len(frame) == COUNTS["residential_compound"]
    stored = server.store.features("residential_compound").set_index("key")
    row = frame.iloc[0]
    assert row.geometry.equals_exact(stored.loc[row["id"]].geometry, 1e-9)
    assert set(frame["contact_phone"].str[3:7]) == {"****"}
    assert frame.crs.to_epsg() == 4326


def test_gauss_kruger_download_is_projected(server: Server, tmp_path: Path) -> None:
    r = server.get("/collections/hydrant/items", params={"f": "gpkg", "crs": "EPSG:4549", "limit": 5})
    path = tmp_path / "gk.gpkg"
    path.write_bytes(r.content)
    frame = pyogrio.read_dataframe(path)
    assert frame.crs.to_epsg() == 4549
    assert 3_000_000 < frame.geometry.y.min() < 4_000_000  # northing, written as y in the file


def test_csv_has_header_wkt_and_bom(server: Server) -> None:
    r = server.get("/collections/hydrant/items", params={"f": "csv", "limit": 20, "properties": "kind,road"})
    assert r.headers["content-type"].startswith("text/csv")
    assert r.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert list(rows[0]) == ["id", "kind", "road", "wkt"]
    assert len(rows) == 20
    stored = server.store.get(rows[0]["id"]).geometry.iloc[0]
    assert shapely.from_wkt(rows[0]["wkt"]).equals_exact(stored, 1e-9)


def test_large_geojson_is_streamed_and_valid(target: str, catalogue: Catalogue) -> None:
    store = open_store(target, catalogue)
    store.upsert("hydrant", hydrants(2500, seed=3), author="test", source="test")
    store.close()
    token = add_users(target, ("planner",))["planner"]
    with running(target) as url:
        r = httpx.get(url + "/collections/hydrant/items", params={"limit": 10000}, timeout=60, headers=bearer(token))
    assert r.headers.get("transfer-encoding") == "chunked"
    doc = r.json()
    assert doc["numberReturned"] == 2500 == len({f["id"] for f in doc["features"]})
    assert r.headers["content-type"] == "application/geo+json"


@pytest.mark.parametrize("path", ["/", "/collections", "/collections/hydrant", "/collections/hydrant/items",
                                  "/collections/hydrant/queryables", "/conformance", "/api.html",
                                  "/collections/pipeline/items?limit=3", "/search?near=121.45,31.25&radius=300",
                                  "/collections/hydrant/nearest?point=121.45,31.25"])
def test_html_pages_for_people(server: Server, path: str) -> None:
    r = server.get(path, headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert r.status_code == 200, r.text[:300]
    assert r.headers["content-type"].startswith("text/html")
    assert "<html" in r.text and "twin" in r.text


def test_html_item_page_shows_properties_and_map(server: Server) -> None:
    key = server.store.features("residential_compound", limit=1)["key"][0]
    page = server.get(f"/collections/residential_compound/items/{key}?f=html").text
    assert key in page and "<svg" in page and "households" in page
    assert "张**" in page or "张*" in page
    items = server.get("/collections/hydrant/items?f=html&limit=5").text
    assert items.count("/collections/hydrant/items/HY-") >= 5 and "下一页" in items


def test_accept_negotiation(server: Server) -> None:
    assert server.get("/collections", headers={"Accept": "application/json"}).headers["content-type"] == \
        "application/json"
    assert server.get("/collections/hydrant/items", headers={"Accept": "application/geo+json"}).status_code == 200
    r = server.get("/collections/hydrant/items", headers={"Accept": "application/xml"})
    assert r.status_code == 406 and "application/geo+json" in r.json()["description"]
    assert server.get("/collections", headers={"Accept": "image/png"}).status_code == 406
    assert server.get("/collections", headers={"Accept": "*/*"}).status_code == 200


@pytest.mark.parametrize(("path", "fmt"), [("/collections/hydrant/items", "xml"), ("/collections", "csv"),
                                           ("/", "gpkg"), ("/collections/hydrant/items", "shp")])
def test_unknown_formats_are_400(server: Server, path: str, fmt: str) -> None:
    r = server.get(path, params={"f": fmt})
    assert r.status_code == 400
    assert fmt in r.json()["description"]


def test_unknown_routes_use_the_error_format(server: Server) -> None:
    r = server.get("/nope")
    assert r.status_code == 404 and set(r.json()) == {"code", "description"}
    r = httpx.post(server.url + "/collections", timeout=30)
    assert r.status_code == 405 and r.json()["code"] == "MethodNotAllowed"


def test_search_csv_has_one_header_for_every_layer(server: Server) -> None:
    r = server.get("/search", params={"near": "121.45,31.25", "radius": 1500, "f": "csv", "limit": 10000})
    text = r.content.decode("utf-8-sig")
    assert "\ufeff" not in text
    rows = list(csv.DictReader(io.StringIO(text)))
    layers = {row["layer"] for row in rows}
    assert {"hydrant", "street_light"} <= layers
    assert all(row["id"] and row["wkt"] for row in rows)
    assert "kind" in rows[0] and "lamp_type" in rows[0]
