"""OGC API - Features Part 1 against a real server: documents, items, paging, bbox, datetime, errors."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely

from tests.api.conftest import Server
from tests.query.twin_fixture import COUNTS


def _all_pages(server: Server, path: str) -> list[dict]:
    """Follow next links from ``path`` to the end, collecting every feature."""
    feats: list[dict] = []
    url = server.url + path
    for _ in range(1000):
        doc = server.get(url.removeprefix(server.url)).json()
        feats += doc["features"]
        nxt = [link["href"] for link in doc["links"] if link["rel"] == "next"]
        if not nxt:
            return feats
        url = nxt[0]
    raise AssertionError("paging never ended")


def test_landing_conformance_and_api(server: Server) -> None:
    doc = server.get("/").json()
    rels = {link["rel"] for link in doc["links"]}
    assert {"self", "service-desc", "service-doc", "conformance", "data"} <= rels
    classes = server.get("/conformance").json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in classes
    assert "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter" in classes
    api = server.get("/api").json()
    assert api["openapi"].startswith("3.")
    assert "/collections/{collectionId}/items" in api["paths"]
    assert api["paths"]["/collections/{collectionId}/nearest"]["get"]["x-twin-extension"] is True
    assert "S_DWITHIN" in api["x-twin-extensions"]["cql2-functions"]


def test_collections_cover_the_catalogue(server: Server) -> None:
    doc = server.get("/collections").json()
    ids = [c["id"] for c in doc["collections"]]
    assert sorted(ids) == sorted(server.store.catalogue)
    hydrant = next(c for c in doc["collections"] if c["id"] == "hydrant")
    assert hydrant["title"] == "消火栓 Fire hydrant"
    assert hydrant["twin:count"] == COUNTS["hydrant"]
    assert hydrant["extent"]["spatial"]["bbox"][0] == pytest.approx(list(server.store.extent("hydrant")))
    assert "http://www.opengis.net/def/crs/EPSG/0/4549" in hydrant["crs"]
    assert any(link["rel"].endswith("queryables") for link in hydrant["links"])
    assert server.get("/collections/hydrant").json()["id"] == "hydrant"


@pytest.mark.parametrize("layer", sorted(COUNTS))
def test_paging_returns_every_feature_once(server: Server, layer: str) -> None:
    first = server.get(f"/collections/{layer}/items?limit=7").json()
    assert first["numberMatched"] == COUNTS[layer]
    assert first["numberReturned"] == min(7, COUNTS[layer])
    feats = _all_pages(server, f"/collections/{layer}/items?limit=7")
    keys = [f["id"] for f in feats]
    assert len(keys) == len(set(keys)) == COUNTS[layer]
    assert set(keys) == set(server.store.features(layer)["key"])


def test_prev_link_and_offset(server: Server) -> None:
    doc = server.get("/collections/hydrant/items?limit=5&offset=10").json()
    prev = next(link["href"] for link in doc["links"] if link["rel"] == "prev")
    assert "offset=5" in prev
    stored = server.store.features("hydrant", limit=5, offset=10)["key"].tolist()
    assert [f["id"] for f in doc["features"]] == stored


def test_limit_is_clamped_not_refused(server: Server) -> None:
    doc = server.get("/collections/hydrant/items?limit=99999999999999999999").json()
    assert doc["numberReturned"] == COUNTS["hydrant"]


@pytest.mark.parametrize("limit", ["0", "-1", "ten", "1.5", ""])
def test_bad_limits_are_400(server: Server, limit: str) -> None:
    r = server.get(f"/collections/hydrant/items?limit={limit}")
    assert r.status_code == 400
    assert "limit" in r.json()["description"]


def test_point_bbox_matches_the_store(server: Server) -> None:
    box = (121.42, 31.21, 121.46, 31.26)
    doc = server.get("/collections/hydrant/items?limit=1000&bbox=" + ",".join(map(str, box))).json()
    expected = server.store.features("hydrant", bbox=box)
    assert {f["id"] for f in doc["features"]} == set(expected["key"])
    assert doc["numberMatched"] == len(expected) > 0


def test_polygon_bbox_is_exact_not_envelope(server: Server) -> None:
    """A box that meets a diagonal line's envelope but not the line is no match (the store alone would say yes)."""
    frame: gpd.GeoDataFrame = server.store.features("pipeline")
    box = None
    for geom in frame.geometry:
        minx, miny, maxx, maxy = geom.bounds
        cand = shapely.box(maxx - (maxx - minx) * 0.02, miny, maxx - 1e-9, miny + (maxy - miny) * 0.02)
        if not geom.intersects(cand):
            box = cand.bounds
            break
    assert box is not None
    envelope_hits = server.store.features("pipeline", bbox=box)
    exact = envelope_hits[envelope_hits.intersects(shapely.box(*box))]
    doc = server.get("/collections/pipeline/items?limit=1000&bbox=" + ",".join(map(repr, box))).json()
    assert {f["id"] for f in doc["features"]} == set(exact["key"])
    assert len(envelope_hits) > len(exact)


def test_bbox_with_heights_and_antimeridian(server: Server) -> None:
    six = server.get("/collections/hydrant/items?limit=1000&bbox=121.42,31.21,-10,121.46,31.26,100").json()
    four = server.get("/collections/hydrant/items?limit=1000&bbox=121.42,31.21,121.46,31.26").json()
    assert [f["id"] for f in six["features"]] == [f["id"] for f in four["features"]]
    # minx > maxx crosses the antimeridian: from 121.45 east to 180 and from -180 to -170.
    cross = server.get("/collections/hydrant/items?limit=1000&bbox=121.45,31.0,-170,31.5").json()
    stored = server.store.features("hydrant")
    assert {f["id"] for f in cross["features"]} == set(stored[stored.geometry.x >= 121.45]["key"])


@pytest.mark.parametrize("bbox", ["1,2,3", "a,b,c,d", "1,2,3,4,5", "nan,1,2,3", "0,50,10,40", "0,-91,1,1",
                                  "1e400,0,1,1", "200,0,210,1", "1,,2,3", ""])
def test_bad_bboxes_are_400(server: Server, bbox: str) -> None:
    r = server.get(f"/collections/hydrant/items?bbox={bbox}")
    assert r.status_code == 400, r.text
    assert "bbox" in r.json()["description"]


def test_datetime_instants_and_intervals(server: Server) -> None:
    frame = server.store.features("hydrant")
    times = frame["updated_at"]

    def ids(q: str) -> set[str]:
        doc = server.get("/collections/hydrant/items", params={"limit": 1000, "datetime": q}).json()
        return {f["id"] for f in doc["features"]}

    assert ids("2021-06-01T00:00:00Z") == set(frame[times == "2021-06-01T00:00:00.000Z"]["key"])
    assert ids("2021-06-01") == set(frame[times.str.startswith("2021-06-01")]["key"])
    assert ids("../2021-12-31T00:00:00Z") == set(frame[times <= "2021-12-31"]["key"])
    assert ids("2022-01-01T00:00:00Z/..") == set(frame[times >= "2022"]["key"])
    assert ids("2021-01-01T00:00:00+08:00/2022-06-01T00:00:00Z") == set(
        frame[(times >= "2020-12-31T16") & (times <= "2022-06-01T00:00:00.000Z")]["key"])
    # an unencoded '+' arrives as a space; it is read as the offset it was meant to be
    assert ids("2021-01-01T00:00:00 08:00/..") == ids("2021-01-01T00:00:00+08:00/..")


@pytest.mark.parametrize("value", ["yesterday", "2021-13-01", "2021-06-01T00:00:00", "../..", "2022-01-01/2021-01-01",
                                   "a/b/c"])
def test_bad_datetimes_are_400(server: Server, value: str) -> None:
    r = server.get(f"/collections/hydrant/items?datetime={value}")
    assert r.status_code == 400
    assert "datetime" in r.json()["description"]


def test_one_item_and_404s(server: Server) -> None:
    key = server.store.features("hydrant", limit=1)["key"][0]
    feat = server.get(f"/collections/hydrant/items/{key}").json()
    assert feat["id"] == key and feat["type"] == "Feature"
    assert {link["rel"] for link in feat["links"]} >= {"self", "collection"}
    for path in ["/collections/nope", "/collections/nope/items", f"/collections/street_light/items/{key}",
                 "/collections/hydrant/items/HY-wtw3zzzz-v", "/collections/hydrant/items/not-a-key",
                 "/collections/hydrant/items/'; DROP TABLE hydrant;--"]:
        r = server.get(path)
        assert r.status_code == 404, path
        assert set(r.json()) == {"code", "description"}


def test_properties_and_sortby(server: Server) -> None:
    doc = server.get("/collections/hydrant/items?limit=1000&properties=kind,pressure&sortby=-pressure,id").json()
    assert all(set(f["properties"]) == {"kind", "pressure"} for f in doc["features"])
    frame = server.store.features("hydrant").sort_values(["pressure", "key"], ascending=[False, True],
                                                         na_position="last")
    assert [f["id"] for f in doc["features"]] == frame["key"].tolist()
    bad = server.get("/collections/hydrant/items?properties=kind,nope")
    assert bad.status_code == 400 and "nope" in bad.json()["description"]
    assert server.get("/collections/hydrant/items?sortby=geometry").status_code == 400
    assert server.get("/collections/hydrant/items?sortby=-x;drop").status_code == 400


def test_personal_fields_are_masked_and_not_queryable(server: Server) -> None:
    doc = server.get("/collections/residential_compound/items?limit=1000").json()
    managers = {f["properties"]["property_manager"] for f in doc["features"]}
    phones = {f["properties"]["contact_phone"] for f in doc["features"]}
    assert all(m.startswith("张") and set(m[1:]) == {"*"} for m in managers)
    assert all(p[:3] == "138" and p[3:7] == "****" for p in phones)
    r = server.get("/collections/residential_compound/items?filter=contact_phone LIKE '138%'")
    assert r.status_code == 403 and "personal" in r.json()["description"]
    assert server.get("/collections/residential_compound/items?sortby=contact_phone").status_code == 403
    props = server.get("/collections/residential_compound/queryables").json()["properties"]
    assert "contact_phone" not in props and "name" in props


def test_bbox_covering_the_layer_counts_exactly(server: Server) -> None:
    doc = server.get("/collections/hydrant/items?limit=3&bbox=121.0,31.0,122.0,32.0").json()
    assert doc["numberMatched"] == COUNTS["hydrant"] and doc["twin:numberMatchedExact"] is True


def test_stored_geometry_round_trips(server: Server) -> None:
    doc = server.get("/collections/heritage_building/items?limit=100").json()
    stored = server.store.features("heritage_building").set_index("key")
    for feat in doc["features"]:
        got = shapely.geometry.shape(feat["geometry"])
        assert got.equals_exact(stored.loc[feat["id"]].geometry, 1e-12)
    assert np.unique([f["geometry"]["type"] for f in doc["features"]]).tolist() == ["Point", "Polygon"]
