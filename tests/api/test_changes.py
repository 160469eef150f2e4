"""The change feed over HTTP against a real server, on the suite's engine: pages after a cursor, a live stream
(Server-Sent Events) that resumes from ``Last-Event-ID`` without a gap or a duplicate, each bound to the user's
area and masked as the user's role requires."""

from __future__ import annotations

import contextlib
import json
import re
import socket
import subprocess
import threading
import time
from pathlib import Path

import httpx
import orjson
import shapely

from tests.api.conftest import Server, running
from tests.api.test_readme_clients import readme_block
from tests.conftest import hydrants
from tests.engines import fresh
from tests.users import add_user, bearer
from twin.catalogue import Catalogue
from twin.model.changes import Position
from twin.store import open_store


def _get(area_city: Server, path: str, role: str = "planner", **params: object) -> httpx.Response:
    return httpx.get(area_city.url + path, params=params, headers=bearer(area_city.tokens[role]), timeout=30)


def _all(area_city: Server, role: str, since: str = "0", limit: int = 500, layers: str | None = None
         ) -> tuple[list[dict], str]:
    """Every event after ``since``, page by page (following ``next``), and the cursor at the end."""
    events: list[dict] = []
    while True:
        body = _get(area_city, "/changes", role, since=since, limit=limit,
                    **({"layers": layers} if layers else {})).json()
        events += body["changes"]
        since = body["next"]
        if body["caughtUp"]:
            return events, since


def _patch(area_city: Server, key: str, road: str) -> None:
    r = httpx.patch(f"{area_city.url}/collections/hydrant/items/{key}", content=orjson.dumps({"road": road}),
                    headers={**bearer(area_city.tokens["gis_editor"]), "Content-Type": "application/merge-patch+json"},
                    timeout=30)
    assert r.status_code == 200, r.text


def test_paging_the_feed_from_the_start_gives_every_component_once(area_city: Server) -> None:
    events, end = _all(area_city, "planner", limit=97, layers="hydrant")
    stored = area_city.store.features("hydrant")
    assert sorted(e["key"] for e in events if e["op"] == "create") == sorted(stored.key)
    assert len({e["id"] for e in events}) == len(events)
    assert _get(area_city, "/changes", since=end).json() == {
        "changes": [], "next": end, "caughtUp": True, "links": _get(area_city, "/changes", since=end).json()["links"]}
    now = _get(area_city, "/changes").json()  # no cursor: from now on
    assert now["changes"] == [] and now["caughtUp"]


def test_an_area_bound_user_gets_exactly_their_area(area_city: Server) -> None:
    west = area_city.store.features("district").sort_values("name_en").iloc[1].geometry
    events, _ = _all(area_city, "area_officer", layers="hydrant,residential_compound")
    assert events
    for e in events:
        if "feature" in e:
            assert west.intersects(shapely.geometry.shape(e["feature"]["geometry"])), e["key"]
    frame = area_city.store.features("hydrant")
    inside = set(frame.key[frame.intersects(west)])
    assert {e["key"] for e in events if e["layer"] == "hydrant" and e["op"] == "create"} >= inside


def test_personal_fields_come_masked_to_a_planner(area_city: Server) -> None:
    stored = {str(v) for v in area_city.store.features("residential_compound").property_manager}
    events, _ = _all(area_city, "planner", layers="residential_compound")
    sent = {e["feature"]["properties"].get("property_manager") for e in events if "feature" in e}
    assert sent and not sent & stored
    body = orjson.dumps(events).decode()
    assert not any(v in body for v in stored)


def test_bad_and_foreign_cursors_are_refused_with_an_ogc_error(area_city: Server) -> None:
    bad = _get(area_city, "/changes", since="yesterday")
    assert bad.status_code == 400 and "cursor" in bad.json()["description"]
    end = int(_get(area_city, "/changes").json()["next"])
    gone = _get(area_city, "/changes", since=str(end + 1000))
    assert gone.status_code == 410 and "read the layers again" in gone.json()["description"]
    assert _get(area_city, "/changes", layers="no_such_layer").status_code == 404
    assert httpx.get(area_city.url + "/changes", timeout=30).status_code == 401


class _Listener:
    """An SSE client on its own thread, collecting ``(id, data)`` of every event."""

    def __init__(self, area_city: Server, headers: dict[str, str], since: str | None = None) -> None:
        self.events: list[tuple[str, dict]] = []
        self.ids: list[str] = []
        self.status = 0
        self._stop = threading.Event()
        url = area_city.url + "/changes/stream" + (f"?since={since}" if since else "")
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


def test_a_stream_delivers_a_change_live_and_resumes_without_gap_or_duplicate(area_city: Server) -> None:
    keys = sorted(area_city.store.features("hydrant").key)[:4]
    live = _Listener(area_city, bearer(area_city.tokens["planner"]))
    time.sleep(0.5)
    started = time.monotonic()
    _patch(area_city, keys[0], "流路一")
    live.wait_for(1)
    assert time.monotonic() - started < 5
    first_id, first = live.events[0]
    assert live.status == 200 and first["key"] == keys[0] and first["feature"]["properties"]["road"] == "流路一"
    live.close()
    for i, key in enumerate(keys[1:], start=2):
        _patch(area_city, key, f"流路{i}")
    resumed = _Listener(area_city, {**bearer(area_city.tokens["planner"]), "Last-Event-ID": first_id})
    resumed.wait_for(3)
    time.sleep(0.5)
    resumed.close()
    assert [e["key"] for _, e in resumed.events] == keys[1:]
    assert [e["id"] for _, e in resumed.events] == [i for i, _ in resumed.events]


def test_a_stream_shows_an_area_bound_user_only_their_area(area_city: Server) -> None:
    frame = area_city.store.features("hydrant")
    west = area_city.store.features("district").sort_values("name_en").iloc[1].geometry
    inside, outside = frame[frame.intersects(west)].key.iloc[0], frame[~frame.intersects(west)].key.iloc[0]
    officer = _Listener(area_city, bearer(area_city.tokens["area_officer"]))
    time.sleep(0.5)
    _patch(area_city, outside, "外面")
    _patch(area_city, inside, "里面")
    officer.wait_for(1)
    time.sleep(0.5)
    officer.close()
    assert [e["key"] for _, e in officer.events] == [inside]
    # the cursor moved past the event outside the area without showing it
    assert Position.parse(officer.ids[-1]) >= Position.parse(officer.events[-1][0])


def test_the_api_definition_declares_the_feed(area_city: Server) -> None:
    paths = _get(area_city, "/api").json()["paths"]
    assert "/changes" in paths and "/changes/stream" in paths


def test_a_stream_ends_after_its_longest_life_and_the_next_resumes_where_it_ended(area_city: Server) -> None:
    keys = sorted(area_city.store.features("hydrant").key)[5:7]
    first = _Listener(area_city, bearer(area_city.tokens["planner"]))
    time.sleep(0.3)
    _patch(area_city, keys[0], "寿路一")
    first.wait_for(1)
    first._thread.join(6)  # stream_max_s=3 on this server
    assert not first._thread.is_alive()
    _patch(area_city, keys[1], "寿路二")
    second = _Listener(area_city, {**bearer(area_city.tokens["planner"]), "Last-Event-ID": first.ids[-1]})
    second.wait_for(1)
    second.close()
    assert [e["key"] for _, e in first.events] == keys[:1] and [e["key"] for _, e in second.events] == keys[1:]


def test_the_readme_feed_recipe_runs_as_written(area_city: Server) -> None:
    recipe = readme_block("### 变更订阅 · The change feed", "bash")
    recipe = re.sub(r"(?m)^export TOKEN=.*$", f"export TOKEN={area_city.tokens['planner']}", recipe)
    done = subprocess.run(["bash", "-c", f"B={area_city.url}\n{recipe}"], capture_output=True, text=True, timeout=60)
    docs, at, decoder = [], 0, json.JSONDecoder()  # curl prints the three answers back to back
    for _ in range(3):
        doc, at = decoder.raw_decode(done.stdout, at)
        docs.append(doc)
    first, start, after = docs
    assert first["changes"] == [] and first["caughtUp"]
    assert [c["op"] for c in start["changes"]] == ["create", "create"] and not start["caughtUp"]
    assert after["changes"] == [] and after["next"] == first["next"]
    assert done.stdout[at:].startswith("retry: 2000\n\n") and f"id: {first['next']}\n" in done.stdout[at:]


def _server_rss(target: str) -> int:
    """Resident bytes of the test server serving ``target`` (found by its environment in /proc)."""
    for environ in Path("/proc").glob("[0-9]*/environ"):
        with contextlib.suppress(OSError):
            if f"TWIN_STORE={target}\0".encode() in environ.read_bytes():
                status = (environ.parent / "status").read_text()
                return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) * 1024  # type: ignore[union-attr]
    raise LookupError(f"no server serves {target}")


def test_stream_clients_that_never_read_cost_the_server_no_memory_and_no_answers(tmp_path: Path,
                                                                                   catalogue: Catalogue) -> None:
    with fresh(tmp_path) as target:
        store = open_store(target, catalogue)
        for seed in range(4):  # a feed of 40,000 events, about 16 MB of SSE
            store.upsert("hydrant", hydrants(10_000, seed=seed), author="t", source="t")
        store.close()
        token = add_user(target, "reader", "admin")
        with running(target) as url:
            host, port = url.removeprefix("http://").split(":")
            request = f"GET /changes/stream?since=0 HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\r\n"
            httpx.get(url + "/changes", params={"since": 0, "limit": 10}, headers=bearer(token), timeout=30)
            before = _server_rss(target)
            stuck = []
            for _ in range(8):  # each asks for the whole feed, then reads nothing
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                s.connect((host, int(port)))
                s.sendall(request.encode())
                stuck.append(s)
            try:
                time.sleep(3)
                started = time.monotonic()
                assert httpx.get(url + "/collections/hydrant/items", params={"limit": 5}, headers=bearer(token),
                                 timeout=30).status_code == 200
                assert time.monotonic() - started < 2  # the others are answered meanwhile
                grown = _server_rss(target) - before
                assert grown < 64 << 20, grown  # a page each (~30 MB for 8); 8 whole feeds would be 130 MB and more
            finally:
                for s in stuck:
                    s.close()
