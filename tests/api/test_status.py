"""Status reports over HTTP against a real server, on the suite's engine: JSON and streamed NDJSON, refusals by
line, a 422 that changes nothing, the user's area and role, the audit trail, and the README recipe as written."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
import pytest

from tests.api.conftest import Server
from tests.api.test_readme_clients import readme_block
from tests.engines import execute
from tests.users import bearer


@pytest.fixture
def city(area_city: Server) -> Server:
    return area_city


def _at(seconds: float) -> str:
    t = datetime.now(UTC) + timedelta(seconds=seconds)
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _post(city: Server, body: bytes | Iterator[bytes], media: str = "application/json", role: str = "gis_editor",
          **params: str) -> httpx.Response:
    return httpx.post(city.url + "/status", content=body, params=params, timeout=60,
                      headers={**bearer(city.tokens[role]), "Content-Type": media})


def _state(city: Server) -> tuple:
    return (city.store.changesets(limit=1)[0].id, str(city.store.features("hydrant").drop(columns="geometry")
                                                      .to_dict("records")))


def test_a_json_batch_keeps_the_good_reports_and_lists_the_bad_by_line(city: Server) -> None:
    keys = sorted(city.store.features("hydrant").key)[20:23]
    r = _post(city, orjson.dumps([
        {"key": keys[0], "status": "faulty", "values": {"pressure": 0.02}, "observed_at": _at(0)},
        {"key": keys[1], "status": "melted", "observed_at": _at(0)},
        {"key": keys[2], "values": {"pressure": "high"}, "observed_at": _at(0)}]))
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["kept"], body["applied"], body["late"]) == (1, 1, 0) and len(body["changesets"]) == 1
    assert [(x["line"], x["key"]) for x in body["rejected"]] == [(2, keys[1]), (3, keys[2])]
    item = httpx.get(f"{city.url}/collections/hydrant/items/{keys[0]}", headers=bearer(city.tokens["planner"]),
                     timeout=30).json()
    assert item["properties"]["status"] == "faulty" and item["properties"]["pressure"] == 0.02


def test_streamed_ndjson_is_kept_batch_by_batch(city: Server) -> None:
    keys = sorted(city.store.features("hydrant").key)[30:90]
    lines = [orjson.dumps({"key": k, "status": "under_repair", "observed_at": _at(0), "source": "泵站"})
             for k in keys]

    def chunks() -> Iterator[bytes]:  # no Content-Length: sent chunked, as a stream
        for i in range(0, len(lines), 7):
            yield b"\n".join(lines[i:i + 7]) + b"\n"

    r = _post(city, chunks(), "application/x-ndjson")
    assert r.status_code == 200 and r.json()["kept"] == len(keys), r.text
    stored = city.store.features("hydrant", keys=keys)
    assert set(stored.status) == {"under_repair"}
    kept = execute(city.target, "SELECT count(*) FROM twin_reports WHERE source = '泵站'")
    assert kept == [(len(keys),)]


def test_a_batch_of_only_refusals_is_422_and_changes_nothing(city: Server) -> None:
    before = _state(city)
    r = _post(city, b'{"key": "HY-xxxxxxxx-0", "status": "faulty", "observed_at": "2026-01-01T00:00:00Z"}\nnope\n',
              "application/x-ndjson")
    assert r.status_code == 422 and r.json()["code"] == "ReportsRejected" and len(r.json()["rejected"]) == 2
    assert _state(city) == before


def test_who_may_report_and_where(city: Server) -> None:
    frame = city.store.features("hydrant")
    west = city.store.features("district").sort_values("name_en").iloc[1].geometry
    outside = str(frame.key[~frame.intersects(west)].iloc[5])
    report = orjson.dumps([{"key": outside, "status": "faulty", "observed_at": _at(0)}])
    assert httpx.post(city.url + "/status", content=report, timeout=30,
                      headers={"Content-Type": "application/json"}).status_code == 401
    planner = _post(city, report, role="planner")
    assert planner.status_code == 422 and "may not report" in planner.json()["rejected"][0]["error"]
    officer = _post(city, report, role="area_editor")
    assert officer.status_code == 422 and officer.json()["rejected"][0]["error"] == "outside your area"
    assert _post(city, report, "text/csv").status_code == 415
    assert _post(city, b"{not json", "application/json").status_code == 400


def test_a_components_reports_list_both_times_in_observed_order_within_the_users_area(city: Server) -> None:
    frame = city.store.features("hydrant")
    west = city.store.features("district").sort_values("name_en").iloc[1].geometry
    key, outside = str(frame.key[frame.intersects(west)].iloc[3]), str(frame.key[~frame.intersects(west)].iloc[3])
    first, late, newest = _at(5), _at(10), _at(15)  # after the component was created, within the clock margin
    for at, status in ((first, "faulty"), (newest, "in_service"), (late, "under_repair")):  # the late one last
        body = orjson.dumps([{"key": key, "status": status, "values": {"pressure": 0.1}, "observed_at": at,
                              "source": "压力传感器 P-9"}])
        assert _post(city, body).status_code == 200

    def reports(role: str = "planner", k: str = key, **params: object) -> httpx.Response:
        return httpx.get(f"{city.url}/collections/hydrant/items/{k}/reports", params=params, timeout=30,
                         headers=bearer(city.tokens[role]))

    body = reports().json()
    listed = [(r["observedAt"][:23], r["status"], r["applied"]) for r in body["reports"]]
    assert listed == [(newest[:23], "in_service", True), (late[:23], "under_repair", False),
                      (first[:23], "faulty", True)]
    assert all(r["recordedAt"] and r["values"] == {"pressure": 0.1} and r["source"] == "压力传感器 P-9"
               for r in body["reports"])
    assert body["reports"][1]["recordedAt"] > body["reports"][0]["recordedAt"]  # recorded last, observed before
    # what was true at a moment, by all that is known now (valid time): the last report observed by then
    then = reports(datetime=f"../{late}", limit=1).json()["reports"]
    assert [r["status"] for r in then] == ["under_repair"]
    assert [r["status"] for r in reports(datetime=f"{first}/{late}").json()["reports"]] == ["under_repair", "faulty"]
    assert reports("area_officer").status_code == 200 and reports("area_officer", outside).status_code == 404
    assert reports(datetime="yesterday").status_code == 400 and reports(limit=0).status_code == 400


def test_every_batch_is_audited(city: Server) -> None:
    key = sorted(city.store.features("hydrant").key)[95]
    assert _post(city, orjson.dumps([{"key": key, "status": "retired", "observed_at": _at(0)}])).status_code == 200
    audit = httpx.get(city.url + "/audit", params={"action": "status"}, headers=bearer(city.tokens["admin"]),
                      timeout=30).json()
    assert any("1 kept" in (e.get("detail") or "") for e in audit["events"])


def test_the_readme_status_recipe_runs_as_written(city: Server, tmp_path) -> None:
    key = sorted(city.store.features("hydrant").key)[100]
    recipe = readme_block("### 状态上报 · Status reports", "bash")
    recipe = re.sub(r"(?m)^export TOKEN=.*$", f"export TOKEN={city.tokens['gis_editor']}", recipe)
    recipe = re.sub(r"HY-wtw3sjq4-0", key, recipe)
    done = subprocess.run(["bash", "-c", f"B={city.url}\ncd {tmp_path}\n{recipe}"], capture_output=True, text=True,
                          timeout=60, env={"PATH": "/usr/bin:/bin", "TWIN_STORE": city.target})
    assert '"kept":1' in done.stdout.replace(" ", ""), done.stdout + done.stderr


def test_the_readme_reports_recipe_runs_as_written(city: Server, tmp_path) -> None:
    key = sorted(city.store.features("hydrant").key)[101]
    assert _post(city, orjson.dumps([{"key": key, "status": "faulty", "observed_at": _at(1)}])).status_code == 200
    recipe = readme_block("A component's reports are read back", "bash").replace("HY-wtw3sjq4-0", key)
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "TWIN_STORE": city.target}
    done = subprocess.run(["bash", "-c", f"B={city.url}; export TOKEN={city.tokens['planner']}\n{recipe}"],
                          capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    listed, at = json.JSONDecoder().raw_decode(done.stdout)
    assert listed["key"] == key and listed["reports"][0]["status"] == "faulty"
    before_2026 = json.JSONDecoder().raw_decode(done.stdout[at:].lstrip())[0]
    assert before_2026["reports"] == []  # nothing was observed before the recipe's instant
    assert "faulty" in done.stdout[at:] and "1 report(s)" in done.stdout


HOSTILE = [b"", b"[", b"{}", b"[1, 2, 3]", b'[{"key": 5}]', b'[{"key": null, "status": []}]',
           b'[{"key": "HY-wtw3sjq4-0", "status": "faulty", "observed_at": "9999-12-31T23:59:59-23:59"}]',
           b'[{"key": "HY-wtw3sjq4-0", "values": {"pressure": 1e400}, "observed_at": "2026-01-01T00:00:00Z"}]',
           b'[{"key": "HY-wtw3sjq4-0", "values": {"pressure": NaN}, "observed_at": "2026-01-01T00:00:00Z"}]',
           b'[{"key": "' + b"x" * 100_000 + b'", "status": "faulty", "observed_at": "2026-01-01T00:00:00Z"}]',
           b"[" * 10_000 + b"]" * 10_000, b'\xff\xfe[{"key": "\xff"}]', "[{\"key\": \"HY-\u202e\"}]".encode()]


@pytest.mark.parametrize("body", HOSTILE, ids=range(len(HOSTILE)))
def test_a_hostile_batch_gets_a_clear_4xx_and_changes_nothing(city: Server, body: bytes) -> None:
    before = _state(city)
    for media in ("application/json", "application/x-ndjson"):
        r = _post(city, body, media)
        assert 400 <= r.status_code < 500, (media, r.status_code, r.text[:300])
        assert r.json().get("code") or r.json().get("rejected") is not None
    assert _state(city) == before
