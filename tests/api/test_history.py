"""A component's past over HTTP against a real server, on the suite's engine: its versions (who, when, what
changed) and the item as of an instant, bound to the user's area and masked as the user's role requires."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
import pyogrio
import pytest
import shapely

from tests.api.conftest import Server
from tests.api.test_readme_clients import readme_block
from tests.users import bearer


@pytest.fixture
def city(area_city: Server) -> Server:
    """The module's server: one district's officer, personal fields of a compound to mask."""
    return area_city


def _get(city: Server, path: str, role: str = "planner", **params: object) -> httpx.Response:
    return httpx.get(city.url + path, params=params, headers=bearer(city.tokens[role]), timeout=30)


def _write(city: Server, method: str, key: str, body: dict) -> None:
    r = httpx.request(method, f"{city.url}/collections/{key_layer(key)}/items/{key}", content=orjson.dumps(body),
                      headers={**bearer(city.tokens["gis_editor"]), "Content-Type": "application/merge-patch+json"},
                      timeout=30)
    assert r.status_code in (200, 204), r.text


def key_layer(key: str) -> str:
    return {"HY": "hydrant", "RC": "residential_compound"}.get(key.split("-")[0], "hydrant")


def _west(city: Server) -> shapely.Geometry:
    return city.store.features("district").sort_values("name_en").iloc[1].geometry


def test_versions_say_who_wrote_each_when_it_was_current_and_what_it_changed(city: Server) -> None:
    frame = city.store.features("hydrant")
    key = str(frame.key.iloc[-1])
    _write(city, "PATCH", key, {"road": "史路"})
    _write(city, "PATCH", key, {"status": "faulty"})
    body = _get(city, f"/collections/hydrant/items/{key}/versions").json()
    versions = body["versions"]
    assert [v["version"] for v in versions] == [1, 2, 3]
    assert versions[1]["changed"] == ["road"] and versions[2]["changed"] == ["status"]
    assert versions[0]["validTo"] == versions[1]["validFrom"] and versions[2]["validTo"] is None
    assert [v["ended"] for v in versions] == ["update", "update", None]
    assert versions[1]["author"].startswith("gis_editor") and versions[1]["feature"]["properties"]["road"] == "史路"
    assert _get(city, f"/collections/hydrant/items/{key}/versions", role="area_officer").status_code in (200, 404)


def test_as_of_gives_the_version_current_then_and_404_before_it_existed(city: Server) -> None:
    key = str(city.store.features("hydrant").key.iloc[-2])
    before = _get(city, f"/collections/hydrant/items/{key}").json()["properties"]["road"]
    time.sleep(0.01)
    _write(city, "PATCH", key, {"road": "今路"})
    versions = _get(city, f"/collections/hydrant/items/{key}/versions").json()["versions"]
    changed_at = versions[-1]["validFrom"]
    old = _get(city, f"/collections/hydrant/items/{key}", as_of=versions[0]["validFrom"])
    assert old.status_code == 200 and old.json()["properties"]["road"] == before and old.json()["version"] == 1
    assert old.headers["Twin-As-Of"].startswith(versions[0]["validFrom"][:23])
    now = _get(city, f"/collections/hydrant/items/{key}", as_of=changed_at).json()
    assert now["properties"]["road"] == "今路"
    assert _get(city, f"/collections/hydrant/items/{key}", as_of="2001-01-01T00:00:00Z").status_code == 404
    bad = _get(city, f"/collections/hydrant/items/{key}", as_of="yesterday")
    assert bad.status_code == 400 and "as_of" in bad.json()["description"]
    assert _get(city, f"/collections/hydrant/items/{key}", as_of="2001-01-01T00:00:00").status_code == 400


def test_a_deleted_component_keeps_its_versions_and_its_past(city: Server) -> None:
    key = str(city.store.features("hydrant").key.iloc[-3])
    r = httpx.delete(f"{city.url}/collections/hydrant/items/{key}", headers=bearer(city.tokens["gis_editor"]),
                     timeout=30)
    assert r.status_code == 204
    assert _get(city, f"/collections/hydrant/items/{key}").status_code == 404
    versions = _get(city, f"/collections/hydrant/items/{key}/versions").json()["versions"]
    assert versions[-1]["ended"] == "delete"
    past = _get(city, f"/collections/hydrant/items/{key}", as_of=versions[-1]["validFrom"])
    assert past.status_code == 200 and past.json()["id"] == key


def test_an_area_bound_user_sees_only_the_versions_inside_their_area(city: Server) -> None:
    frame = city.store.features("hydrant")
    west = _west(city)
    outside = str(frame.key[~frame.intersects(west)].iloc[0])
    assert _get(city, f"/collections/hydrant/items/{outside}/versions", role="area_officer").status_code == 404
    assert _get(city, f"/collections/hydrant/items/{outside}", role="area_officer",
                as_of="2100-01-01T00:00:00Z").status_code == 404
    inside = str(frame.key[frame.intersects(west)].iloc[-1])
    x = float(shapely.get_x(frame.set_index("key").geometry[inside]))
    _write(city, "PATCH", inside, {"road": "进出路"})
    moved = {"type": "Point", "coordinates": [x + 0.5, 31.23]}
    r = httpx.patch(f"{city.url}/collections/hydrant/items/{inside}",
                    content=orjson.dumps({"type": "Feature", "geometry": moved, "properties": {}}),
                    headers={**bearer(city.tokens["gis_editor"]), "Content-Type": "application/geo+json"}, timeout=30)
    assert r.status_code == 200, r.text
    seen = _get(city, f"/collections/hydrant/items/{inside}/versions", role="area_officer").json()["versions"]
    everyone = _get(city, f"/collections/hydrant/items/{inside}/versions").json()["versions"]
    assert len(everyone) == len(seen) + 1
    assert all(west.intersects(shapely.geometry.shape(v["feature"]["geometry"])) for v in seen)


def test_versions_come_masked_as_the_role_requires(city: Server) -> None:
    frame = city.store.features("residential_compound")
    key, stored = str(frame.key.iloc[0]), str(frame.property_manager.iloc[0])
    body = _get(city, f"/collections/residential_compound/items/{key}/versions").text
    assert stored not in body
    assert stored in _get(city, f"/collections/residential_compound/items/{key}/versions", role="admin").text


def test_the_readme_history_recipe_runs_as_written(city: Server) -> None:
    key = str(city.store.features("hydrant").key.iloc[3])
    recipe = readme_block("### 历史 · A component's past", "bash")
    script = f"B={city.url}; K={key}; export TOKEN={city.tokens['planner']}\n{recipe}"
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60, check=True)
    versions, at = json.JSONDecoder().raw_decode(done.stdout)
    now = json.loads(done.stdout[at:])
    assert versions["key"] == key and versions["versions"][-1]["validTo"] is None
    assert now["id"] == key and now["version"] == versions["versions"][-1]["version"]


def test_the_readme_as_of_recipe_runs_as_written(city: Server, tmp_path: Path) -> None:
    recipe = readme_block("The same `as_of` reaches every read", "bash")
    recipe = recipe.replace("'10 minutes ago'", "'1 second ago'")  # the test's twin is younger than ten minutes
    time.sleep(1.5)
    script = f"B={city.url}; export TOKEN={city.tokens['planner']}\ncd {tmp_path}\n{recipe}"
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "TWIN_STORE": city.target}
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    answers = []
    rest = done.stdout
    while rest.lstrip().startswith("{"):
        answer, at = json.JSONDecoder().raw_decode(rest.lstrip())
        answers.append(answer)
        rest = rest.lstrip()[at:]
    assert [a["type"] for a in answers] == ["FeatureCollection"] * 3 and all(a["twin:asOf"] for a in answers)
    assert len(answers[1]["features"]) == 5 and answers[2]["features"]
    assert len(pyogrio.read_dataframe(tmp_path / "then.gpkg")) > 0
    exported = len(pyogrio.read_dataframe(tmp_path / "hydrants-then.gpkg"))
    assert exported > 0 and f"exported {exported} component(s) of hydrant" in rest


def test_the_http_diff_lists_what_changed_between_two_instants(city: Server) -> None:
    keys = sorted(city.store.features("hydrant").key)[10:12]
    start = _get(city, f"/collections/hydrant/items/{keys[0]}/versions").json()["versions"][-1]["validFrom"]
    time.sleep(0.01)
    _write(city, "PATCH", keys[0], {"road": "差路"})
    _write(city, "PATCH", keys[1], {"road": "差路二"})
    end = _get(city, f"/collections/hydrant/items/{keys[1]}/versions").json()["versions"][-1]["validFrom"]
    body = _get(city, "/changes/diff", **{"from": start, "to": end, "layers": "hydrant"}).json()
    assert {(e["key"], e["change"]) for e in body["changes"]} >= {(keys[0], "changed"), (keys[1], "changed")}
    assert not body["truncated"]
    bad = _get(city, "/changes/diff", **{"from": end, "to": start})
    assert bad.status_code == 400 and "before it starts" in bad.json()["description"]
    assert _get(city, "/changes/diff", **{"from": "x", "to": end}).status_code == 400


def _page_all(city: Server, role: str = "planner", **params: object) -> dict[str, dict]:
    """Every feature of the hydrant items answer, page by page, by key."""
    out: dict[str, dict] = {}
    offset = 0
    while True:
        body = _get(city, "/collections/hydrant/items", role, limit=7, offset=offset, **params).json()
        out.update({f["id"]: f for f in body["features"]})
        if body["numberReturned"] < 7:
            return out
        offset += 7


def test_items_as_of_an_instant_are_the_layer_as_it_was(city: Server) -> None:
    west = _west(city)
    box = west.buffer(-0.01).bounds if not west.buffer(-0.01).is_empty else west.bounds
    bbox = ",".join(f"{v:.6f}" for v in box)
    before = _page_all(city, bbox=bbox)
    assert len(before) >= 4
    time.sleep(0.01)
    moment = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    time.sleep(0.01)
    keys = sorted(before)
    _write(city, "PATCH", keys[0], {"road": "过去路"})
    r = httpx.delete(f"{city.url}/collections/hydrant/items/{keys[1]}", headers=bearer(city.tokens["gis_editor"]),
                     timeout=30)
    assert r.status_code == 204
    moved = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [box[0] - 0.05, box[1] - 0.05]},
             "properties": {}}
    r = httpx.patch(f"{city.url}/collections/hydrant/items/{keys[2]}", content=orjson.dumps(moved),
                    headers={**bearer(city.tokens["gis_editor"]), "Content-Type": "application/geo+json"}, timeout=30)
    assert r.status_code == 200, r.text
    now = _page_all(city, bbox=bbox)
    assert keys[1] not in now and keys[2] not in now and now[keys[0]]["properties"]["road"] == "过去路"
    past = _page_all(city, bbox=bbox, as_of=moment)
    assert set(past) == set(before)
    assert {k: f["properties"] for k, f in past.items()} == {k: f["properties"] for k, f in before.items()}
    answer = _get(city, "/collections/hydrant/items", bbox=bbox, as_of=moment)
    assert answer.headers["Twin-As-Of"].startswith(moment[:23]) and answer.json()["twin:asOf"]
    officer = _page_all(city, "area_officer", as_of=moment)
    assert officer and all(west.intersects(shapely.geometry.shape(f["geometry"])) for f in officer.values())
    assert answer.json()["numberMatched"] == len(before)
    # the filter, sortby and formats of /items apply to the past as it was
    kept = _page_all(city, bbox=bbox, as_of=moment, filter="road IS NULL OR road <> '过去路'", sortby="-id")
    assert set(kept) == set(before)
    assert keys[0] not in _page_all(city, bbox=bbox, filter="road IS NULL OR road <> '过去路'")
    csv = _get(city, "/collections/hydrant/items", bbox=bbox, as_of=moment, f="csv", limit=1000).text
    assert all(k in csv for k in keys[:3])
    # nearest-k and search, as of then: the moved and the deleted hydrant are where they were
    lon, lat = before[keys[2]]["geometry"]["coordinates"]
    near = _get(city, "/collections/hydrant/nearest", point=f"{lon},{lat}", k=1, as_of=moment)
    assert near.headers["Twin-As-Of"] and near.json()["features"][0]["id"] == keys[2]
    assert _get(city, "/collections/hydrant/nearest", point=f"{lon},{lat}", k=1).json()["features"][0]["id"] != keys[2]
    lon, lat = before[keys[1]]["geometry"]["coordinates"]
    found = _get(city, "/search", near=f"{lon},{lat}", radius=0.5, layers="hydrant", as_of=moment).json()
    assert [f["id"] for f in found["features"]] == [keys[1]] and found["twin:asOf"]
    assert _get(city, "/search", near=f"{lon},{lat}", radius=0.5, layers="hydrant").json()["features"] == []
    assert _get(city, "/collections/hydrant/items", as_of="2001-01-01").json()["features"] == []
    assert _get(city, "/collections/hydrant/items", as_of="then").status_code == 400
