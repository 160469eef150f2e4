"""Twin extensions against a real server: radius, nearest-k, cross-layer search, key look-up."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pytest
import shapely

from tests.api.conftest import Server
from twin.geodesy import distance_to_point
from twin.model.rows import TIE_DECIMALS


def test_radius_search_is_exact_and_nearest_first(server: Server) -> None:
    lon, lat, metres = 121.45, 31.25, 1200.0
    doc = server.get("/collections/hydrant/items", params={"near": f"{lon},{lat}", "radius": metres,
                                                           "limit": 1000}).json()
    frame = server.store.features("hydrant")
    dist = distance_to_point(frame.geometry.to_numpy(), lon, lat)
    inside = frame[dist <= metres].assign(d=dist[dist <= metres]).sort_values(["d", "fid"])
    assert [f["id"] for f in doc["features"]] == inside["key"].tolist()
    assert [f["properties"]["distance_m"] for f in doc["features"]] == pytest.approx(inside["d"].tolist(), abs=1e-3)
    assert doc["numberMatched"] == len(inside) > 0


def test_radius_on_polygons_counts_distance_to_the_edge(server: Server) -> None:
    doc = server.get("/collections/district/items", params={"near": "121.40,31.25", "radius": 1}).json()
    assert [f["properties"]["name"] for f in doc["features"]] == ["西区"]
    assert doc["features"][0]["properties"]["distance_m"] == 0


@pytest.mark.parametrize("params", [{"near": "121.45,31.25"}, {"radius": "100"},
                                    {"near": "121.45,31.25", "radius": "-1"}, {"near": "121.45,31.25", "radius": "1e9"},
                                    {"near": "121.45", "radius": "10"}, {"near": "x,y", "radius": "10"},
                                    {"near": "500,31", "radius": "10"}, {"near": "121,31", "radius": "nan"}])
def test_bad_radius_searches_are_400(server: Server, params: dict[str, str]) -> None:
    r = server.get("/collections/hydrant/items", params=params)
    assert r.status_code == 400, r.text


def test_nearest_k_matches_brute_force(server: Server) -> None:
    lon, lat = 121.4437, 31.2371
    doc = server.get("/collections/street_light/nearest", params={"point": f"{lon},{lat}", "k": 5}).json()
    frame = server.store.features("street_light")
    dist = distance_to_point(frame.geometry.to_numpy(), lon, lat)
    order = np.lexsort((frame["fid"].to_numpy(), np.round(dist, TIE_DECIMALS)))[:5]
    assert [f["id"] for f in doc["features"]] == frame["key"].to_numpy()[order].tolist()
    assert [f["properties"]["rank"] for f in doc["features"]] == [1, 2, 3, 4, 5]
    assert [f["properties"]["distance_m"] for f in doc["features"]] == pytest.approx(dist[order], abs=1e-3)


def test_nearest_on_lines_and_bad_input(server: Server) -> None:
    doc = server.get("/collections/pipeline/nearest", params={"point": "121.45,31.25", "k": 3}).json()
    dists = [f["properties"]["distance_m"] for f in doc["features"]]
    assert len(dists) == 3 and dists == sorted(dists)
    for params in [{"point": "121.45,31.25", "k": 0}, {"point": "121.45,31.25", "k": 100000}, {"point": "a,b"},
                   {"k": 3}]:
        assert server.get("/collections/pipeline/nearest", params=params).status_code == 400
    assert server.get("/collections/nope/nearest", params={"point": "121,31"}).status_code == 404


def test_search_across_layers_by_polygon(server: Server) -> None:
    area = shapely.box(121.44, 31.24, 121.46, 31.26)
    doc = server.get("/search", params={"intersects": area.wkt, "limit": 10000}).json()
    got: dict[str, set[str]] = {}
    for f in doc["features"]:
        got.setdefault(f["properties"]["layer"], set()).add(f["id"])
    for layer in server.store.catalogue:
        frame = server.store.features(layer)
        expected = set(frame[frame.intersects(area)]["key"]) if len(frame) else set()
        assert got.get(layer, set()) == expected, layer
    assert {"hydrant", "street_light", "district"} <= set(got)
    assert doc["twin:truncated"] is False


def test_search_within_metres_of_a_line_as_geojson(server: Server) -> None:
    line = {"type": "LineString", "coordinates": [[121.41, 31.23], [121.49, 31.27]]}
    doc = server.get("/search", params={"intersects": json.dumps(line), "distance": 150, "layers": "hydrant,pipeline",
                                        "limit": 10000}).json()
    layers = {f["properties"]["layer"] for f in doc["features"]}
    assert layers <= {"hydrant", "pipeline"} and "hydrant" in layers
    frame = server.store.features("hydrant").to_crs(32651)
    geom = shapely.LineString(line["coordinates"])
    metric = gpd.GeoSeries([geom], crs=4326).to_crs(32651).iloc[0]
    expected = set(frame[frame.distance(metric) <= 150]["key"])
    got = {f["id"] for f in doc["features"] if f["properties"]["layer"] == "hydrant"}
    assert got == expected


def test_search_near_point_and_truncation(server: Server) -> None:
    doc = server.get("/search", params={"near": "121.45,31.25", "radius": 2000, "limit": 3}).json()
    assert doc["numberReturned"] == 3 and doc["twin:truncated"] is True
    for params in [{}, {"intersects": "POINT(121 31)", "near": "121,31", "radius": 5}, {"intersects": "nonsense"},
                   {"intersects": "POINT(500 31)"}, {"intersects": "POLYGON EMPTY"}, {"near": "121,31"},
                   {"intersects": "POINT(121 31)", "layers": "nope"}, {"intersects": "POINT(121 31)", "distance": -1}]:
        r = server.get("/search", params=params)
        assert r.status_code in (400, 404), (params, r.text)


def test_key_lookup_redirects_to_the_item(server: Server) -> None:
    key = server.store.features("pipeline", limit=1)["key"][0]
    r = server.get(f"/keys/{key}", params={"f": "json"}, follow_redirects=False)
    assert r.status_code == 307
    assert r.headers["location"].endswith(f"/collections/pipeline/items/{key}?f=json")
    assert server.get(f"/keys/{key}", follow_redirects=True).json()["id"] == key
    for bad in ["PL-wtw3zzzz-v", "ZZ-wtw3sjq6-0", "nonsense", "HY-wtw3sjq6-0%27%3B"]:
        assert server.get(f"/keys/{bad}", follow_redirects=False).status_code == 404
