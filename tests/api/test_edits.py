"""Edits over HTTP (OGC API - Features Part 4) against a real server, on the suite's engine.

Writes go as a GIS editor (writes every layer, sees personal fields masked), reads check them as a planner; an
area-bound editor comes from a policy of the test's own. Every refused write must leave the store as it was.
"""

from __future__ import annotations

import re
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import morecantile
import orjson
import pytest
import schemathesis
from schemathesis import GenerationMode

from tests.api.conftest import Server
from tests.api.test_fuzz import fuzz
from tests.api.test_readme_clients import readme_block
from tests.users import bearer

GEOJSON = {"Content-Type": "application/geo+json"}


@pytest.fixture(scope="module")
def city(area_city: Server) -> Server:
    """The module's twin and server (``area_city``): its ``area_editor`` writes hydrants in the West district."""
    return area_city


def send(city: Server, method: str, path: str, role: str | None = "gis_editor", body: object = None,
         headers: dict[str, str] | None = None) -> httpx.Response:
    content = None if body is None else (body if isinstance(body, bytes) else orjson.dumps(body))
    sent = {**(bearer(city.tokens[role]) if role else {}), **(GEOJSON if content is not None else {}),
            **(headers or {})}
    return httpx.request(method, city.url + path, content=content, headers=sent, timeout=30)


def state(city: Server) -> tuple[object, ...]:
    """Everything an edit could change: the last changeset and every hydrant and compound as stored."""
    store = city.store
    hydrants = store.features("hydrant").drop(columns="geometry").to_dict("records")
    compounds = store.features("residential_compound").drop(columns="geometry").to_dict("records")
    return (store.changesets(limit=1)[0].id, store.count("hydrant"), str(hydrants), str(compounds))


def west_hydrant(city: Server, east: bool = False) -> str:
    frame = city.store.features("hydrant")
    side = frame[frame.geometry.x >= 121.46] if east else frame[frame.geometry.x <= 121.44]
    return str(side.key.iloc[0])


def path(key: str) -> str:
    return f"/collections/hydrant/items/{key}"


def test_a_conditional_patch_changes_the_component_and_its_etag(city: Server) -> None:
    key = west_hydrant(city)
    got = city.get(path(key))
    tag = got.headers["ETag"]
    assert tag.startswith('"v') and city.get(path(key), headers={"If-None-Match": tag}).status_code == 304
    r = send(city, "PATCH", path(key), body={"status": "faulty", "pressure": 0.05}, headers={"If-Match": tag})
    assert r.status_code == 200, r.text
    assert r.headers["ETag"] != tag and r.json()["properties"]["status"] == "faulty"
    assert r.headers["Twin-Position"]
    after = city.get(path(key))
    assert after.headers["ETag"] == r.headers["ETag"] and after.json()["properties"]["pressure"] == 0.05
    history = city.store.history(key)
    assert len(history) >= 2 and str(city.store.changesets(limit=1)[0].author).startswith("gis_editor")


def test_a_stale_if_match_is_412_with_the_current_version_and_writes_nothing(city: Server) -> None:
    key = west_hydrant(city)
    old = city.get(path(key)).headers["ETag"]
    assert send(city, "PATCH", path(key), body={"status": "under_repair"}, headers={"If-Match": old}).status_code == 200
    current = city.get(path(key)).headers["ETag"]
    before = state(city)
    for method, body in (("PATCH", {"status": "in_service"}), ("DELETE", None)):
        r = send(city, method, path(key), body=body, headers={"If-Match": old})
        assert r.status_code == 412 and r.headers["ETag"] == current
        assert r.json()["code"] == "PreconditionFailed" and "read it again" in r.json()["description"]
    assert send(city, "PATCH", path(key), body={"status": "faulty"}, headers={"If-Match": 'W/"v1"'}).status_code == 412
    assert state(city) == before


def test_of_many_writers_holding_the_same_etag_exactly_one_wins(city: Server) -> None:
    key = west_hydrant(city)
    tag = city.get(path(key)).headers["ETag"]

    def patch(i: int) -> int:
        return send(city, "PATCH", path(key), body={"road": f"路{i}"}, headers={"If-Match": tag}).status_code

    with ThreadPoolExecutor(8) as pool:
        codes = sorted(pool.map(patch, range(8)))
    assert codes == [200] + [412] * 7


def test_a_new_component_is_201_at_its_location_and_a_second_there_is_409(city: Server) -> None:
    feature = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [121.4012345, 31.2012345]},
               "properties": {"kind": "underground", "outlet_diameter": 100, "road": "新路"}}
    count = city.store.count("hydrant")
    r = send(city, "POST", "/collections/hydrant/items", body=feature)
    assert r.status_code == 201, r.text
    location = r.headers["Location"]
    key = location.rsplit("/", 1)[1]
    assert key.startswith("HY-") and r.json()["properties"]["road"] == "新路"
    got = httpx.get(location, headers=bearer(city.tokens["planner"]))
    assert got.status_code == 200 and got.headers["ETag"] == r.headers["ETag"]
    assert city.store.count("hydrant") == count + 1
    before = state(city)
    again = send(city, "POST", "/collections/hydrant/items", body=feature)
    assert again.status_code == 409 and key in again.json()["description"]
    assert state(city) == before


def test_put_replaces_every_property_and_the_place(city: Server) -> None:
    key = west_hydrant(city)
    feature = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [121.4100001, 31.2500001]},
               "properties": {"kind": "above_ground", "status": "in_service"}}
    r = send(city, "PUT", path(key), body=feature, headers={"If-Match": city.get(path(key)).headers["ETag"]})
    assert r.status_code == 200, r.text
    stored = city.store.get(key).iloc[0]
    assert stored.kind == "above_ground" and stored.road is None and stored.outlet_diameter is None
    assert (round(stored.geometry.x, 7), round(stored.geometry.y, 7)) == (121.4100001, 31.2500001)


def test_delete_retires_the_component_and_keeps_its_history(city: Server) -> None:
    key = west_hydrant(city)
    r = send(city, "DELETE", path(key), headers={"If-Match": city.get(path(key)).headers["ETag"]})
    assert r.status_code == 204 and not r.content
    assert city.get(path(key)).status_code == 404
    assert len(city.store.history(key)) >= 1


@pytest.mark.parametrize(("role", "method", "body", "headers", "status", "words"), [
    (None, "PATCH", {"status": "faulty"}, {}, 401, "token"),
    ("planner", "PATCH", {"status": "faulty"}, {}, 403, "may not write"),
    ("gis_editor", "PATCH", {"colour": "red"}, {}, 422, "no field 'colour'"),
    ("gis_editor", "PATCH", {"status": "on_fire"}, {}, 422, "status"),
    ("gis_editor", "PATCH", {"outlet_diameter": "wide"}, {}, 422, "outlet_diameter"),
    ("gis_editor", "PATCH", {"road": "a\x00b"}, {}, 422, "NUL"),
    ("gis_editor", "PUT", {"type": "Feature", "geometry": {"type": "LineString", "coordinates": [[121.4, 31.2],
                                                          [121.41, 31.21]]}, "properties": {"kind": "underground"}},
     {}, 422, "LineString"),
    ("gis_editor", "PUT", {"type": "Feature", "geometry": {"type": "Point", "coordinates": ["x"]},
                           "properties": {}}, {}, 400, "geometry"),
    ("gis_editor", "PUT", {"type": "FeatureCollection", "features": []}, {}, 400, "one GeoJSON Feature"),
    ("gis_editor", "PATCH", b"{not json", {}, 400, "not valid JSON"),
    ("gis_editor", "PATCH", {"status": "faulty"}, {"Content-Type": "text/plain"}, 415, "send the feature"),
    ("gis_editor", "PATCH", {"status": "faulty"}, {"If-Match": '"v1", "v2"'}, 400, "one ETag"),
])
def test_a_refused_write_says_why_and_changes_nothing(city: Server, role: str | None, method: str, body: object,
                                                      headers: dict[str, str], status: int, words: str) -> None:
    key = west_hydrant(city)
    before = state(city)
    r = send(city, method, path(key), role=role, body=body, headers=headers)
    assert r.status_code == status, r.text
    assert words in r.json()["description"]
    assert state(city) == before


def test_a_personal_field_seen_masked_cannot_be_written(city: Server) -> None:
    key = str(city.store.features("residential_compound").key.iloc[0])
    phone = city.store.get(key).contact_phone.iloc[0]
    before = state(city)
    r = send(city, "PATCH", f"/collections/residential_compound/items/{key}", body={"contact_phone": "138****0000"})
    assert r.status_code == 403 and "masked" in r.json()["description"]
    assert state(city) == before
    ok = send(city, "PATCH", f"/collections/residential_compound/items/{key}", body={"households": 1234})
    assert ok.status_code == 200 and ok.json()["properties"].get("contact_phone") != phone
    assert city.store.get(key).contact_phone.iloc[0] == phone


def test_an_area_bound_editor_edits_inside_the_area_only(city: Server) -> None:
    inside, outside = west_hydrant(city), west_hydrant(city, east=True)
    ok = send(city, "PATCH", path(inside), role="area_editor", body={"status": "faulty"})
    assert ok.status_code == 200, ok.text
    before = state(city)
    hidden = send(city, "PATCH", path(outside), role="area_editor", body={"status": "faulty"})
    assert hidden.status_code == 404
    moved = send(city, "PATCH", path(inside), role="area_editor",
                 body={"type": "Feature", "geometry": {"type": "Point", "coordinates": [121.50, 31.25]}})
    assert moved.status_code == 403 and "outside your area" in moved.json()["description"]
    light = str(city.store.features("street_light").key.iloc[0])
    assert send(city, "PATCH", f"/collections/street_light/items/{light}", role="area_editor",
                body={"status": "faulty"}).status_code == 403
    assert state(city) == before


def test_every_write_and_refusal_is_audited(city: Server) -> None:
    key = west_hydrant(city)
    assert send(city, "PATCH", path(key), body={"road": "审计路"}).status_code == 200
    assert send(city, "PATCH", path(key), body={"colour": "red"}).status_code == 422
    deadline = time.monotonic() + 10
    while True:  # the trail is written by a background thread
        events = httpx.get(city.url + "/audit?action=edit&limit=100", headers=city.headers("admin")).json()["events"]
        seen = {(e["outcome"], e["status"]) for e in events if e["path"] == path(key)}
        if {("ok", 200), ("rejected", 422)} <= seen or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert {("ok", 200), ("rejected", 422)} <= seen


def test_the_api_definition_declares_the_writes(city: Server) -> None:
    doc = city.get("/api").json()
    item = doc["paths"]["/collections/{collectionId}/items/{key}"]
    assert {"put", "patch", "delete"} <= set(item) and "post" in doc["paths"]["/collections/{collectionId}/items"]
    assert any("ogcapi-features-4" in c for c in city.get("/conformance").json()["conformsTo"])


def test_no_write_answers_5xx_whatever_it_is_sent(city: Server) -> None:
    """schemathesis sends valid and invalid bodies, keys and headers to every write operation, as an editor."""
    schema = schemathesis.openapi.from_url(city.url + "/api")
    writes = [op for op in (result.ok() for result in schema.get_all_operations())
              if op.label.split()[0] in ("POST", "PUT", "PATCH", "DELETE") and "/items" in op.label
              and "{collectionId}" in op.label]
    assert len(writes) == 4
    for operation in writes:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            fuzz(operation, mode, bearer(city.tokens["gis_editor"]))


def test_head_answers_what_get_would_without_the_body(city: Server) -> None:
    key = west_hydrant(city)
    point = city.store.get(key).geometry.iloc[0]
    t = morecantile.tms.get("WebMercatorQuad").tile(point.x, point.y, 16)
    tile = f"/collections/hydrant/tiles/WebMercatorQuad/16/{t.y}/{t.x}"
    for where in (path(key), "/collections/hydrant/items?limit=3", tile):
        got = city.get(where)
        head = httpx.head(city.url + where, headers=city.headers())
        assert head.status_code == got.status_code and not head.content
        assert head.headers.get("ETag") == got.headers.get("ETag")
        assert got.content and head.headers["content-type"] == got.headers["content-type"]


def test_the_readme_edit_recipe_runs_as_written(city: Server) -> None:
    """The README's curl lines, run by bash with its alias, on one of this twin's hydrants instead of the demo's."""
    recipe = readme_block("### 编辑 · Edits over HTTP", "bash")
    recipe = re.sub(r"(?m)^K=HY-\w+-\d+;", f"K={west_hydrant(city)};", recipe)
    recipe = re.sub(r"(?m)^export TOKEN=.*$", f"export TOKEN={city.tokens['gis_editor']}", recipe)
    script = ("shopt -s expand_aliases\n"
              f"B={city.url}\n"
              """alias curl='curl -s -o /dev/null -w "%{http_code}\\n" -H "Authorization: Bearer $TOKEN"'\n""")
    # the recipe's own alias line lives in the Examples block; its HEAD reads need the header only, so they
    # keep their -sI and the status alias is not applied to them
    script += recipe.replace('curl -sI "$U"', 'command curl -sI -H "Authorization: Bearer $TOKEN" "$U"')
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.split() == ["200", "412", "200", "204", "201"], done.stdout + done.stderr
