"""OGC API - Features Part 3: CQL2 text and JSON filters, checked against the store's own data."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import geopandas as gpd
import httpx
import pandas as pd
import pytest
import shapely

from tests.api.conftest import Server, add_users, running
from tests.conftest import hydrants
from tests.users import bearer
from twin.catalogue import Catalogue
from twin.geodesy import distance_to_point
from twin.query.cql_checks import MAX_NODES
from twin.store import open_store

Pick = Callable[[gpd.GeoDataFrame], object]


def _ids(server: Server, layer: str, text: str, lang: str = "cql2-text", **extra: object) -> set[str]:
    r = server.get(f"/collections/{layer}/items", params={"limit": 10000, "filter": text, "filter-lang": lang,
                                                          **extra})
    assert r.status_code == 200, r.text[:300]
    doc = r.json()
    assert doc["numberMatched"] == doc["numberReturned"]
    return {f["id"] for f in doc["features"]}


AREA = shapely.box(121.42, 31.22, 121.47, 31.27)
CASES: list[tuple[str, str, Pick]] = [
    ("hydrant", "kind = 'underground'", lambda f: f["kind"] == "underground"),
    ("hydrant", "kind <> 'underground' AND pressure > 0.3",
     lambda f: (f["kind"] != "underground") & (f["pressure"] > 0.3)),
    ("hydrant", "outlet_diameter IN (65, 150)", lambda f: f["outlet_diameter"].isin([65, 150])),
    ("hydrant", "outlet_diameter NOT IN (65, 150)", lambda f: ~f["outlet_diameter"].isin([65, 150])),
    ("hydrant", "pressure BETWEEN 0.1 AND 0.2", lambda f: f["pressure"].between(0.1, 0.2)),
    ("hydrant", "road IS NULL", lambda f: f["road"].isna()),
    ("hydrant", "road IS NOT NULL AND NOT (kind = 'underground')",
     lambda f: f["road"].notna() & (f["kind"] != "underground")),
    ("hydrant", "road LIKE '测试路3%'", lambda f: f["road"].fillna("").str.startswith("测试路3")),
    ("hydrant", "road LIKE '测试路_号'", lambda f: f["road"].fillna("").str.fullmatch("测试路.号")),
    ("hydrant", "owner = '黄浦区 ''water''; co'", lambda f: f["owner"] == "黄浦区 'water'; co"),
    ("hydrant", "CASEI(kind) = casei('UNDERGROUND')", lambda f: f["kind"] == "underground"),
    ("hydrant", "inspected_on >= DATE('2024-05-01')", lambda f: f["inspected_on"] >= "2024-05-01"),
    ("hydrant", "updated_at < TIMESTAMP('2022-01-01T00:00:00Z')", lambda f: f["updated_at"] < "2022"),
    ("hydrant", "status = 'in_service' OR pressure * 2 < 0.2",
     lambda f: (f["status"] == "in_service") | (f["pressure"] * 2 < 0.2)),
    ("hydrant", f"S_INTERSECTS(geometry, {AREA.wkt})", lambda f: f.intersects(AREA)),
    ("hydrant", f"S_WITHIN(geometry, {AREA.wkt})", lambda f: f.within(AREA)),
    ("hydrant", f"NOT S_WITHIN(geometry, {AREA.wkt}) AND kind = 'above_ground'",
     lambda f: ~f.within(AREA) & (f["kind"] == "above_ground")),
    ("hydrant", "S_DWITHIN(geometry, POINT(121.45 31.25), 700)",
     lambda f: distance_to_point(f.geometry.to_numpy(), 121.45, 31.25) <= 700),
    ("pipeline", f"S_INTERSECTS(geometry, {AREA.wkt})", lambda f: f.intersects(AREA)),
    ("pipeline", "S_DWITHIN(geometry, LINESTRING(121.40 31.25, 121.50 31.25), 300)",
     lambda f: f.to_crs(32651).distance(gpd.GeoSeries([shapely.LineString([(121.40, 31.25), (121.50, 31.25)])],
                                                       crs=4326).to_crs(32651).iloc[0]) <= 300),
    ("district", "S_CONTAINS(geometry, POINT(121.40 31.25))", lambda f: f.contains(shapely.Point(121.40, 31.25))),
    ("residential_compound", "S_INTERSECTS(geometry, BBOX(121.42, 31.22, 121.47, 31.27)) AND households > 500",
     lambda f: f.intersects(AREA) & (f["households"] > 500)),
    ("street_light", "INCLUDE", lambda f: f["power"] == f["power"]),
]


@pytest.mark.parametrize(("layer", "text", "pick"), CASES, ids=[c[1][:50] for c in CASES])
def test_cql2_text_matches_pandas(server: Server, layer: str, text: str, pick: Pick) -> None:
    frame = server.store.features(layer)
    mask = pd.Series(pick(frame), index=frame.index).fillna(False).astype(bool)
    expected = set(frame[mask]["key"])
    assert _ids(server, layer, text) == expected
    assert len(expected) > 0 or text.startswith("road IS NULL")


def test_cql2_json(server: Server) -> None:
    filt = {"op": "and", "args": [
        {"op": "=", "args": [{"property": "kind"}, "underground"]},
        {"op": "s_intersects", "args": [{"property": "geometry"}, shapely.geometry.mapping(AREA)]},
        {"op": "s_dwithin", "args": [{"property": "geometry"}, {"type": "Point", "coordinates": [121.45, 31.25]}, 900]},
    ]}
    frame = server.store.features("hydrant")
    near = distance_to_point(frame.geometry.to_numpy(), 121.45, 31.25) <= 900
    expected = set(frame[(frame["kind"] == "underground") & frame.intersects(AREA) & near]["key"])
    got = _ids(server, "hydrant", json.dumps(filt), "cql2-json")
    assert got == expected and expected


def test_filter_crs(server: Server) -> None:
    latlon = shapely.box(31.22, 121.42, 31.27, 121.47)
    a = _ids(server, "hydrant", f"S_INTERSECTS(geometry, {AREA.wkt})")
    b = _ids(server, "hydrant", f"S_INTERSECTS(geometry, {latlon.wkt})", **{"filter-crs": "EPSG:4326"})
    assert a == b and a


def test_filter_combines_with_bbox_and_paging(server: Server) -> None:
    params = {"filter": "kind = 'underground'", "bbox": "121.40,31.20,121.45,31.30", "limit": 5}
    doc = server.get("/collections/hydrant/items", params=params).json()
    frame = server.store.features("hydrant", bbox=(121.40, 31.20, 121.45, 31.30))
    expected = frame[frame["kind"] == "underground"]
    assert doc["numberMatched"] == len(expected)
    assert [f["id"] for f in doc["features"]] == expected["key"].tolist()[:5]


@pytest.mark.parametrize(("text", "lang", "needle"), [
    ("kind = ", "cql2-text", "does not parse"),
    ("kind = 'x'; DROP TABLE hydrant", "cql2-text", "does not parse"),
    ("nope = 1", "cql2-text", "'nope'"),
    ('"kind; DROP TABLE hydrant" = 1', "cql2-text", "unknown property"),
    ("\"kind\" = 'x' OR \"fid\" > 0", "cql2-text", "'fid'"),
    ("geometry = 'x'", "cql2-text", "spatial"),
    ("S_INTERSECTS(geometry, kind)", "cql2-text", "geometry"),
    ("T_AFTER(updated_at, TIMESTAMP('2020-01-01T00:00:00Z'))", "cql2-text", "parse"),
    ("upper(kind) = 'X'", "cql2-text", "function"),
    ("S_DWITHIN(geometry, POINT(121 31), -5)", "cql2-text", "distance"),
    ("{\"op\": \"=\", \"args\": [1]}", "cql2-json", "does not parse"),
    ("[1, 2]", "cql2-json", "bare value"),
    ("{\"op\": \"s_dwithin\", \"args\": [1]}", "cql2-json", "s_dwithin"),
    ("not json", "cql2-json", "does not parse"),
    ("kind = 'x'", "ecql", "filter-lang"),
    ("", "cql2-text", "empty"),
    ("kind = 'x' AND " * 3000 + "kind = 'x'", "cql2-text", "characters long"),
    ("(id='x' AND " * 1500 + "id='x'" + ")" * 1500, "cql2-text", f"at most {MAX_NODES} operators"),
])
def test_bad_filters_are_400(server: Server, text: str, lang: str, needle: str) -> None:
    r = server.get("/collections/hydrant/items", params={"filter": text, "filter-lang": lang})
    assert r.status_code == 400, r.text[:300]
    assert needle in r.json()["description"]


def test_deeply_bracketed_filter_is_fine(server: Server) -> None:
    assert _ids(server, "hydrant", "(" * 3000 + "kind = 'underground'" + ")" * 3000) == \
        _ids(server, "hydrant", "kind = 'underground'")


def test_injection_in_strings_is_only_data(server: Server) -> None:
    for text in ["kind = 'x'' OR ''1''=''1'", "road = ''';DELETE FROM hydrant;--'", "road LIKE '%'' OR 1=1 --'"]:
        assert _ids(server, "hydrant", text) == set()
    assert server.store.count("hydrant") == len(server.store.features("hydrant"))


def test_queryables_schema(server: Server) -> None:
    doc = server.get("/collections/hydrant/queryables").json()
    assert doc["$schema"].startswith("https://json-schema.org/")
    props = doc["properties"]
    assert props["kind"]["enum"] == ["above_ground", "underground"]
    assert props["pressure"]["type"] == "number"
    assert props["inspected_on"] == {"title": "最近巡检", "type": "string", "format": "date"}
    assert props["geometry"]["format"] == "geometry-point"
    assert server.get("/collections/pipeline/queryables").json()["properties"]["geometry"]["format"] == \
        "geometry-multilinestring"


def test_time_budget_stops_an_expensive_filter(target: str, catalogue: Catalogue) -> None:
    """A filter that must test every row is refused quickly with a clear 400; cheap queries still pass."""
    store = open_store(target, catalogue)
    store.upsert("hydrant", hydrants(60_000, seed=5), author="test", source="test")
    store.close()
    auth = bearer(add_users(target, ("planner",))["planner"])
    # a zigzag of 990 vertices (the limit is 1,000) across the box: every row's distance to it takes a while on
    # either engine (0.5 s on PostGIS, 2 s on GeoPackage here), while the cheap query takes a few ms of the budget
    zigzag = ", ".join(f"{121.40 + i * 0.0001:.5f} {31.20 + 0.1 * (i % 2):.1f}" for i in range(990))
    with running(target, query_budget_s=0.2) as url:
        scan = {"filter": f"S_DWITHIN(geometry, LINESTRING({zigzag}), 0.1) OR road = 'no such road'", "limit": 10000}
        started = time.monotonic()
        r = httpx.get(url + "/collections/hydrant/items", params=scan, timeout=60, headers=auth)
        assert r.status_code == 400, r.text[:300]
        assert "too expensive" in r.json()["description"] and "bbox" in r.json()["description"]
        assert time.monotonic() - started < 5
        cheap = httpx.get(url + "/collections/hydrant/items", params={**scan, "bbox": "121.45,31.25,121.451,31.251"},
                          timeout=60, headers=auth)
        assert cheap.status_code == 200


def test_property_query_parameters(server: Server) -> None:
    doc = server.get("/collections/hydrant/items", params={"kind": "underground", "outlet_diameter": "100",
                                                           "limit": 1000}).json()
    frame = server.store.features("hydrant")
    expected = frame[(frame["kind"] == "underground") & (frame["outlet_diameter"] == 100)]
    assert {f["id"] for f in doc["features"]} == set(expected["key"]) and len(expected) > 0
    both = server.get("/collections/hydrant/items", params={"kind": "underground", "filter": "pressure > 0.3",
                                                            "limit": 1000}).json()
    assert {f["id"] for f in both["features"]} == set(frame[(frame["kind"] == "underground")
                                                            & (frame["pressure"] > 0.3)]["key"])
    bad = server.get("/collections/hydrant/items", params={"outlet_diameter": "wide"})
    assert bad.status_code == 400 and "outlet_diameter" in bad.json()["description"]
    api = server.get("/api").json()
    params = {p["name"] for p in api["paths"]["/collections/hydrant/items"]["get"]["parameters"]}
    assert {"kind", "outlet_diameter", "bbox", "filter"} <= params and "contact_phone" not in params
