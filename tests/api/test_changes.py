"""The change feed over HTTP against a real server, on the suite's engine: pages after a cursor, a live stream
(Server-Sent Events) that resumes from ``Last-Event-ID`` without a gap or a duplicate, each bound to the user's
area and masked as the user's role requires."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

import httpx
import orjson
import pytest
import shapely

from tests.api.conftest import Server, add_users, running
from tests.engines import fresh
from tests.query.twin_fixture import build_twin
from tests.users import add_user, bearer
from twin.catalogue import Catalogue
from twin.model.changes import Position
from twin.store import open_store

POLICY = """
area_layers: [district]
roles:
  admin:        {read: "*", write: "*", unmask: "*", manage: true}
  gis_editor:   {read: "*", write: "*"}
  planner:      {read: "*"}
  area_officer: {read: "*", unmask: "*", scope: required}
"""


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory, catalogue: Catalogue) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("changes")
    policy = folder / "policy.yaml"
    policy.write_text(POLICY, encoding="utf-8")
    with fresh(folder) as target:
        build_twin(target, catalogue).close()
        tokens = add_users(target)
        store = open_store(target, catalogue, create=False)
        west = store.features("district").sort_values("name_en").iloc[1]
        tokens["area_officer"] = add_user(target, "west-officer", "area_officer", str(west.key), policy=policy)
        with running(target, access_policy=str(policy), stream_max_s=3) as url:
            yield Server(url, store, target, tokens)
        store.close()


def _get(city: Server, path: str, role: str = "planner", **params: object) -> httpx.Response:
    return httpx.get(city.url + path, params=params, headers=bearer(city.tokens[role]), timeout=30)


def _all(city: Server, role: str, since: str = "0", limit: int = 500, layers: str | None = None
         ) -> tuple[list[dict], str]:
    """Every event after ``since``, page by page (following ``next``), and the cursor at the end."""
    events: list[dict] = []
    while True:
        body = _get(city, "/changes", role, since=since, limit=limit,
                    **({"layers": layers} if layers else {})).json()
        events += body["changes"]
        since = body["next"]
        if body["caughtUp"]:
            return events, since


def _patch(city: Server, key: str, road: str) -> None:
    r = httpx.patch(f"{city.url}/collections/hydrant/items/{key}", content=orjson.dumps({"road": road}),
                    headers={**bearer(city.tokens["gis_editor"]), "Content-Type": "application/merge-patch+json"},
                    timeout=30)
    assert r.status_code == 200, r.text


def test_paging_the_feed_from_the_start_gives_every_component_once(city: Server) -> None:
    events, end = _all(city, "planner", limit=97, layers="hydrant")
    stored = city.store.features("hydrant")
    assert sorted(e["key"] for e in events if e["op"] == "create") == sorted(stored.key)
    assert len({e["id"] for e in events}) == len(events)
    assert _get(city, "/changes", since=end).json() == {
        "changes": [], "next": end, "caughtUp": True, "links": _get(city, "/changes", since=end).json()["links"]}
    now = _get(city, "/changes").json()  # no cursor: from now on
    assert now["changes"] == [] and now["caughtUp"]


def test_an_area_bound_user_gets_exactly_their_area(city: Server) -> None:
    west = city.store.features("district").sort_values("name_en").iloc[1].geometry
    events, _ = _all(city, "area_officer", layers="hydrant,residential_compound")
    assert events
    for e in events:
        if "feature" in e:
            assert west.intersects(shapely.geometry.shape(e["feature"]["geometry"])), e["key"]
    frame = city.store.features("hydrant")
    inside = set(frame.key[frame.intersects(west)])
    assert {e["key"] for e in events if e["layer"] == "hydrant" and e["op"] == "create"} >= inside


def test_personal_fields_come_masked_to_a_planner(city: Server) -> None:
    stored = {str(v) for v in city.store.features("residential_compound").property_manager}
    events, _ = _all(city, "planner", layers="residential_compound")
    sent = {e["feature"]["properties"].get("property_manager") for e in events if "feature" in e}
    assert sent and not sent & stored
    body = orjson.dumps(events).decode()
    assert not any(v in body for v in stored)


def test_bad_and_foreign_cursors_are_refused_with_an_ogc_error(city: Server) -> None:
    bad = _get(city, "/changes", since="yesterday")
    assert bad.status_code == 400 and "cursor" in bad.json()["description"]
    end = int(_get(city, "/changes").json()["next"])
    gone = _get(city, "/changes", since=str(end + 1000))
    assert gone.status_code == 410 and "read the layers again" in gone.json()["description"]
    assert _get(city, "/changes", layers="no_such_layer").status_code == 404
    assert httpx.get(city.url + "/changes", timeout=30).status_code == 401


class _Listener:
    """An SSE client on its own thread, collecting ``(id, data)`` of every event."""

    def __init__(self, city: Server, headers: dict[str, str], since: str | None = None) -> None:
        self.events: list[tuple[str, dict]] = []
        self.ids: list[str] = []
        self.status = 0
        self._stop = threading.Event()
        url = city.url + "/changes/stream" + (f"?since={since}" if since else "")
        self._thread = threading.Thread(target=self._run, args=(url, headers), daemon=True)
        self._thread.start()

    def _run(self, url: str, headers: dict[str, str]) -> None:
        with contextlib.suppress(httpx.TransportError):  # the server stops at the end of the module
            self._read(url, headers)

    def _read(self, url: str, headers: dict[str, str]) -> None:
        with httpx.stream("GET", url, headers=headers, timeout=httpx.Timeout(30, read=60)) as r:
            self.status = r.status_code
            block: dict[str, str] = {}
            for line in r.iter_lines():
                if self._stop.is_set():
                    return
                if line == "":
                    if "id" in block:
                        self.ids.append(block["id"])
                    if "data" in block:
                        self.events.append((block["id"], orjson.loads(block["data"])))
                    block = {}
                elif not line.startswith(":"):
                    name, _, value = line.partition(": ")
                    block[name] = value

    def wait_for(self, n: int, timeout_s: float = 10) -> None:
        deadline = time.monotonic() + timeout_s
        while len(self.events) < n and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(self.events) >= n, self.events

    def close(self) -> None:
        self._stop.set()


def test_a_stream_delivers_a_change_live_and_resumes_without_gap_or_duplicate(city: Server) -> None:
    keys = sorted(city.store.features("hydrant").key)[:4]
    live = _Listener(city, bearer(city.tokens["planner"]))
    time.sleep(0.5)
    started = time.monotonic()
    _patch(city, keys[0], "流路一")
    live.wait_for(1)
    assert time.monotonic() - started < 5
    first_id, first = live.events[0]
    assert live.status == 200 and first["key"] == keys[0] and first["feature"]["properties"]["road"] == "流路一"
    live.close()
    for i, key in enumerate(keys[1:], start=2):
        _patch(city, key, f"流路{i}")
    resumed = _Listener(city, {**bearer(city.tokens["planner"]), "Last-Event-ID": first_id})
    resumed.wait_for(3)
    time.sleep(0.5)
    resumed.close()
    assert [e["key"] for _, e in resumed.events] == keys[1:]
    assert [e["id"] for _, e in resumed.events] == [i for i, _ in resumed.events]


def test_a_stream_shows_an_area_bound_user_only_their_area(city: Server) -> None:
    frame = city.store.features("hydrant")
    west = city.store.features("district").sort_values("name_en").iloc[1].geometry
    inside, outside = frame[frame.intersects(west)].key.iloc[0], frame[~frame.intersects(west)].key.iloc[0]
    officer = _Listener(city, bearer(city.tokens["area_officer"]))
    time.sleep(0.5)
    _patch(city, outside, "外面")
    _patch(city, inside, "里面")
    officer.wait_for(1)
    time.sleep(0.5)
    officer.close()
    assert [e["key"] for _, e in officer.events] == [inside]
    # the cursor moved past the event outside the area without showing it
    assert Position.parse(officer.ids[-1]) >= Position.parse(officer.events[-1][0])


def test_the_api_definition_declares_the_feed(city: Server) -> None:
    paths = _get(city, "/api").json()["paths"]
    assert "/changes" in paths and "/changes/stream" in paths


def test_a_stream_ends_after_its_longest_life_and_the_next_resumes_where_it_ended(city: Server) -> None:
    keys = sorted(city.store.features("hydrant").key)[5:7]
    first = _Listener(city, bearer(city.tokens["planner"]))
    time.sleep(0.3)
    _patch(city, keys[0], "寿路一")
    first.wait_for(1)
    first._thread.join(6)  # stream_max_s=3 on this server
    assert not first._thread.is_alive()
    _patch(city, keys[1], "寿路二")
    second = _Listener(city, {**bearer(city.tokens["planner"]), "Last-Event-ID": first.ids[-1]})
    second.wait_for(1)
    second.close()
    assert [e["key"] for _, e in first.events] == keys[:1] and [e["key"] for _, e in second.events] == keys[1:]
