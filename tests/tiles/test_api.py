"""The tile routes over a real uvicorn server, with httpx and a planner's token: OGC API - Tiles, TileJSON, the
.mvt shortcut, compression, ETags, 204s and clear 4xx errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import mapbox_vector_tile
import pytest

from tests.serving import serving
from tests.tiles.conftest import gdal_read, tile_app
from tests.users import bearer
from tiles import TileEngine
from tiles.grid import TileID, tiles_in
from twin.access import Gate
from twin.store import Store

MVT = "application/vnd.mapbox-vector-tile"
CENTRE = (121.45, 31.25)


@pytest.fixture
def client(engine: TileEngine, gate: Gate) -> Iterator[httpx.Client]:
    """A client sending a planner's token to the tile routes, served by uvicorn on a free port."""
    with serving(tile_app(engine, gate)) as url, httpx.Client(
            base_url=url, timeout=30, headers=bearer(gate.add_user("planner1", "planner"))) as c:
        yield c


def _ogc(tile: TileID, layer: str = "hydrant") -> str:
    return f"/collections/{layer}/tiles/WebMercatorQuad/{tile.z}/{tile.y}/{tile.x}"


def test_ogc_tile_is_gzip_mvt_with_etag_and_revalidation(client: httpx.Client, city: Store,
                                                         tmp_path: Path) -> None:
    tile = tiles_in((*CENTRE, *CENTRE), 14)[0]
    r = client.get(_ogc(tile), headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200 and r.headers["content-type"] == MVT
    assert r.headers["content-encoding"] == "gzip" and r.headers["cache-control"] == "private, no-cache"
    assert r.headers["vary"] == "Accept-Encoding, Authorization, Cookie"
    etag = r.headers["etag"]
    features = mapbox_vector_tile.decode(r.content)["hydrant"]["features"]  # httpx un-gzips
    gdal = gdal_read(r.content, tile.z, tile.x, tile.y, "hydrant", tmp_path)
    assert sorted(gdal.key) == sorted(f["properties"]["key"] for f in features)
    plain = client.get(_ogc(tile), headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and plain.content == r.content
    assert client.get(_ogc(tile), headers={"If-None-Match": etag}).status_code == 304
    assert r.headers["twin-tile-source"] == "drawn" and plain.headers["twin-tile-source"] == "memory"
    away = TileID(tile.z, tile.x + 3, tile.y)
    far = client.get(_ogc(away))
    key = features[0]["properties"]["key"]
    city.edit(key, author="test", properties={"status": "faulty"})
    fresh = client.get(_ogc(tile), headers={"If-None-Match": etag})
    assert fresh.status_code == 200 and fresh.headers["etag"] != etag
    assert fresh.headers["twin-tile-source"] == "drawn"  # the change met it: drawn again
    again = client.get(_ogc(away), headers={"If-None-Match": far.headers["etag"]})  # the change did not: kept
    assert again.status_code == 304 and again.headers["twin-tile-source"] == "memory"
    statuses = {f["properties"]["key"]: f["properties"]["status"]
                for f in mapbox_vector_tile.decode(fresh.content)["hydrant"]["features"]}
    assert statuses[key] == "faulty"


def test_shortcut_combines_layers_and_empty_tiles_are_204(client: httpx.Client) -> None:
    tile = tiles_in((*CENTRE, *CENTRE), 14)[0]
    r = client.get(f"/tiles/hydrant,pipeline/{tile.z}/{tile.x}/{tile.y}.mvt")
    assert r.status_code == 200 and set(mapbox_vector_tile.decode(r.content)) == {"hydrant", "pipeline"}
    far = tiles_in((100.0, 10.0, 100.0, 10.0), 14)[0]
    empty = client.get(f"/tiles/hydrant/{far.z}/{far.x}/{far.y}.mvt")
    assert empty.status_code == 204 and empty.content == b"" and "etag" in empty.headers
    filtered = client.get(f"/tiles/hydrant/{tile.z}/{tile.x}/{tile.y}.mvt", params={"filter": "status = 'retired'"})
    assert filtered.status_code == 204


def test_tilejson_and_ogc_documents_lead_to_the_tiles(client: httpx.Client) -> None:
    tj = client.get("/collections/hydrant/tiles/WebMercatorQuad/tilejson.json").json()
    assert tj["tilejson"] == "3.0.0" and [v["id"] for v in tj["vector_layers"]] == ["hydrant"]
    assert {"key", "status", "kind", "count", "count_faulty"} <= set(tj["vector_layers"][0]["fields"])
    tile = tiles_in((*CENTRE, *CENTRE), 12)[0]
    url = tj["tiles"][0].replace("{z}", str(tile.z)).replace("{x}", str(tile.x)).replace("{y}", str(tile.y))
    assert client.get(url).status_code == 200
    combined = client.get("/tiles/hydrant,residential_compound/tilejson.json").json()
    assert [v["id"] for v in combined["vector_layers"]] == ["hydrant", "residential_compound"]
    assert combined["tiles"][0].endswith("/tiles/hydrant,residential_compound/{z}/{x}/{y}.mvt")
    sets = client.get("/tileMatrixSets").json()
    assert [s["id"] for s in sets["tileMatrixSets"]] == ["WebMercatorQuad"]
    tms = client.get(sets["tileMatrixSets"][0]["links"][0]["href"]).json()
    assert tms["id"] == "WebMercatorQuad" and len(tms["tileMatrices"]) == 25
    listing = client.get("/collections/hydrant/tiles").json()
    tileset = client.get(listing["tilesets"][0]["links"][0]["href"]).json()
    assert tileset["dataType"] == "vector" and tileset["layers"][0]["id"] == "hydrant"
    template = next(link["href"] for link in tileset["links"] if link["rel"] == "item")
    href = template.replace("{tileMatrix}", str(tile.z)).replace("{tileRow}", str(tile.y)).replace(
        "{tileCol}", str(tile.x))
    assert client.get(href).status_code == 200


@pytest.mark.parametrize(("path", "status", "words"), [
    ("/tiles/hydrant/14/abc/1.mvt", 400, "column (tileCol) x must be a whole number"),
    ("/tiles/hydrant/14/-3/1.mvt", 400, "must be 0 or more"),
    ("/tiles/hydrant/30/0/0.mvt", 400, "zoom (tileMatrix) 30 is out of range"),
    ("/tiles/hydrant/3/0/9.mvt", 400, "row (tileRow) y 9 is out of range at zoom 3"),
    ("/collections/hydrant/tiles/WebMercatorQuad/3/9/0", 400, "row (tileRow) y 9"),
    ("/tiles/no_such_layer/3/0/0.mvt", 404, "unknown layer 'no_such_layer'"),
    ("/tiles/hydrant,nope/3/0/0.mvt", 404, "unknown layer 'nope'"),
    ("/collections/nope/tiles", 404, "unknown layer"),
    ("/collections/hydrant/tiles/WorldCRS84Quad/3/0/0", 404, "unknown tile matrix set 'WorldCRS84Quad'"),
    ("/tileMatrixSets/Nope", 404, "unknown tile matrix set"),
    ("/tiles/hydrant/3/6/3.mvt?filter=status%20%3D", 400, "filter does not parse"),
    ("/tiles/hydrant/3/6/3.mvt?filter=colour%20%3D%201", 400, "unknown property 'colour'"),
    ("/tiles/hydrant/3/6/3.mvt?datetime=yesterday", 400, "datetime"),
])
def test_bad_requests_get_clear_4xx(client: httpx.Client, path: str, status: int, words: str) -> None:
    r = client.get(path)
    assert r.status_code == status, r.text
    assert words in r.json()["description"]


def test_the_service_app_serves_tiles_beside_the_features_api(city: Store, gate: Gate) -> None:
    from tests.api.conftest import running

    tile = tiles_in((*CENTRE, *CENTRE), 14)[0]
    token = gate.add_user("planner1", "planner")
    with running(city.location) as url, httpx.Client(base_url=url, timeout=30,
                                                                    headers=bearer(token)) as client:
        r = client.get(f"/tiles/hydrant/{tile.z}/{tile.x}/{tile.y}.mvt")
        assert r.status_code == 200 and mapbox_vector_tile.decode(r.content)["hydrant"]["features"]
        assert client.get("/collections/hydrant/tiles").json()["tilesets"]
        collection = client.get("/collections/hydrant").json()
        tilesets = next(link["href"] for link in collection["links"]
                        if link["rel"] == "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector")
        assert client.get(tilesets).json()["tilesets"][0]["dataType"] == "vector"
        conformance = client.get("/conformance").json()["conformsTo"]
        assert "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/mvt" in conformance
        assert httpx.get(f"{url}/tiles/hydrant/{tile.z}/{tile.x}/{tile.y}.mvt").status_code == 401
