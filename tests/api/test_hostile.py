"""Hostile requests against every operation of the API definition: never a 5xx, always an OGC error body.

The operations and their parameters are read from the app's own OpenAPI document (``/api``), so a new route
is covered as soon as it exists. Requests are sent in-process (FastAPI's TestClient; the 100 KB values, which
no HTTP client library sends, straight to the ASGI app) as an administrator, so the private paths are
reached too.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlencode

import anyio
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.api.conftest import add_users
from tests.users import bearer
from twin.api.app import create_app
from twin.query.cql_checks import MAX_DEPTH, MAX_FILTER_CHARS, MAX_IN_VALUES, MAX_NODES, MAX_VERTICES
from twin.settings import ServiceSettings, TwinSettings

#: Valid values of every path parameter: a new route with a new path parameter must add one here.
PATH_VALUES = {"collectionId": "hydrant", "layer": "hydrant", "layers": "hydrant", "tms": "WebMercatorQuad",
               "z": "14", "x": "13719", "y": "6693", "indicatorId": "faulty_hydrants", "alertId": "1", "orderId": "1"}
#: Operations on a record this twin cannot hold: it has no committees, so no alert or work order is ever raised or
#: opened in it (tests/rules reads real ones); these answer 404.
ABSENT = {"/alerts/{alertId}", "/work-orders/{orderId}"}
#: Valid values of required query parameters.
REQUIRED_VALUES = {"point": "121.45,31.25", "from": "2000-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z"}
#: What else an operation needs to answer 200: alternatives of optional parameters (the first by default, else
#: the one holding the parameter under test).
BASELINE = {"/search": [{"near": "121.45,31.25", "radius": "500"}, {"intersects": "POINT(121.45 31.25)",
                                                                     "distance": "100"}]}
HOSTILE = ["", "-1", "1e400", "NaN", "-" + "9" * 40, "abc", "上海市黄浦区南京东路 \u202e\u0000\x7f🔥",
           "'\"; DROP TABLE hydrant; --", "1,2,3,4,5", "9999-12-31T23:59:59-23:59", '{"op":', "(" * 200,
           "路" * 3_000 + "x" * 10_000]
KB100 = "1," * 50_000  # 100 KB: a list of numbers, as bbox, point or layers are


@dataclass(frozen=True)
class Operation:
    """One GET operation of the API definition."""

    path: str
    query: tuple[str, ...]  # its query parameters
    required: tuple[str, ...]
    generic: bool  # False for the per-collection copies of the items operation

    def url(self, **path_values: str) -> str:
        path = self.path
        for name, value in {**PATH_VALUES, **path_values}.items():
            path = path.replace("{" + name + "}", quote(value, safe=""))
        assert "{" not in path, f"add a valid value for the path parameters of {self.path} to PATH_VALUES"
        return path

    def params(self, **extra: str) -> dict[str, str]:
        """Valid values of what the operation needs, and ``extra``."""
        choices = BASELINE.get(self.path, [{}])
        chosen = next((c for c in choices if set(extra) & set(c)), choices[0])
        return {**{name: REQUIRED_VALUES[name] for name in self.required}, **chosen, **extra}


@dataclass
class Api:
    app: FastAPI
    client: TestClient
    operations: list[Operation]
    token: str

    def own_parameters(self, op: Operation) -> tuple[str, ...]:
        """An operation's query parameters; for a collection's copy of the items operation, only its properties."""
        if op.generic:
            return op.query
        items = next(o for o in self.operations if o.path == "/collections/{collectionId}/items")
        return tuple(name for name in op.query if name not in items.query)

    @property
    def filtering(self) -> list[Operation]:
        """Operations that take a CQL2 filter, on the hydrant layer."""
        return [op for op in self.operations if "filter" in op.query and (op.generic or "/hydrant/" in op.path)]


@pytest.fixture(scope="module")
def api(twin_target: str) -> Iterator[Api]:
    token = add_users(twin_target, ("admin",))["admin"]
    # change streams end after 0.2 s here, so that a valid request to one answers like any other
    app = create_app(TwinSettings(store=twin_target, service=ServiceSettings(stream_max_s=0.2)))
    with TestClient(app, raise_server_exceptions=False, headers=bearer(token)) as client:
        doc = client.get("/api").json()
        key = client.get("/collections/hydrant/items", params={"limit": 1}).json()["features"][0]["id"]
        PATH_VALUES["key"] = key
        operations = []
        for path, ops in doc["paths"].items():
            params = ops.get("get", {}).get("parameters")
            if "get" not in ops:
                continue  # the import (POST) has its own suite with real files
            query = tuple(p["name"] for p in params or () if p["in"] == "query")
            required = tuple(p["name"] for p in params or () if p["in"] == "query" and p.get("required"))
            operations.append(Operation(path, query, required, "{collectionId}" in path or "/items" not in path))
        yield Api(app, client, operations, token)


def problem(status: int, body: bytes) -> str | None:
    """What is wrong with an answer to a hostile request, if anything."""
    if status >= 500:
        return f"answered {status}: {body[:200]!r}"
    if status >= 400:
        try:
            doc = json.loads(body)
        except ValueError:
            return f"answered {status} without a JSON body: {body[:200]!r}"
        if not (isinstance(doc.get("code"), str) and isinstance(doc.get("description"), str)):
            return f"answered {status} without code and description: {body[:200]!r}"
    return None


def tried(api: Api, op: Operation, params: dict[str, str] | list[tuple[str, str]], **path: str) -> str | None:
    r = api.client.get(op.url(**path), params=params if isinstance(params, list) else op.params(**params))
    found = problem(r.status_code, r.content)
    return None if found is None else f"GET {op.url(**path)} {str(params)[:120]}: {found}"


def test_every_operation_is_reached_with_a_token(api: Api) -> None:
    assert len(api.operations) >= 20
    for op in api.operations:
        r = api.client.get(op.url(), params=op.params())
        assert r.status_code == 404 if op.path in ABSENT else r.status_code < 400, (op.path, r.status_code,
                                                                                   r.text[:200])


@pytest.mark.parametrize("value", HOSTILE, ids=[f"{i}:{v[:12]!r}" for i, v in enumerate(HOSTILE)])
def test_a_hostile_value_in_any_parameter_never_answers_5xx(api: Api, value: str) -> None:
    failures = []
    for op in api.operations:
        failures += [tried(api, op, {name: value}) for name in api.own_parameters(op)]
        failures += [tried(api, op, {}, **{name: value}) for name in PATH_VALUES if "{" + name + "}" in op.path]
    failures = [f for f in failures if f]
    assert not failures, "\n".join(failures[:20])


def _asgi_get(app: FastAPI, path: str, query: str, token: str) -> tuple[int, bytes]:
    """GET ``path`` (percent-encoded) straight through the ASGI interface, for URLs longer than HTTP client
    libraries send (httpx stops at 64 KB, as uvicorn does with a 400 of its own)."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": unquote(path), "raw_path": path.encode(), "root_path": "", "query_string": query.encode(),
             "headers": [(b"host", b"testserver"), (b"authorization", f"Bearer {token}".encode())],
             "client": ("127.0.0.1", 50000), "server": ("testserver", 80)}
    out: dict[str, object] = {"body": b""}

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        if message["type"] == "http.response.start":
            out["status"] = message["status"]
        elif message["type"] == "http.response.body":
            out["body"] = out["body"] + message.get("body", b"")  # type: ignore[operator]

    # a thread of its own: an event loop some earlier test left marked running on this thread must not matter
    with ThreadPoolExecutor(1) as pool:
        pool.submit(anyio.run, app, scope, receive, send).result()
    return int(out["status"]), out["body"]  # type: ignore[arg-type, call-overload]


def test_a_100_kb_value_in_any_parameter_never_answers_5xx(api: Api) -> None:
    failures = []
    for op in api.operations:
        for name in api.own_parameters(op):
            status, body = _asgi_get(api.app, op.url(), urlencode(op.params(**{name: KB100}), safe=","), api.token)
            failures.append(problem(status, body) and f"{op.path} ?{name}=<100 KB>: {problem(status, body)}")
        for name in PATH_VALUES:
            if "{" + name + "}" in op.path:
                status, body = _asgi_get(api.app, op.url(**{name: KB100}), urlencode(op.params(), safe=","),
                                         api.token)
                failures.append(problem(status, body) and f"{op.path} {name}=<100 KB>: {problem(status, body)}")
    failures = [f for f in failures if f]
    assert not failures, "\n".join(failures[:20])


def test_a_repeated_parameter_is_a_400_naming_it(api: Api) -> None:
    for op in api.operations:
        for name in op.query:
            valid = [(k, v) for k, v in op.params().items() if k != name]
            r = api.client.get(op.url(), params=[*valid, (name, "1"), (name, "1")])
            assert r.status_code == 400, (op.path, name, r.status_code, r.text[:200])
            assert f"{name!r} is given 2 times" in r.json()["description"], (op.path, r.text[:200])


def test_an_unknown_parameter_is_a_400_listing_the_known_ones(api: Api) -> None:
    for op in api.operations:
        r = api.client.get(op.url(), params=op.params(ooga="booga"))
        assert r.status_code == 400, (op.path, r.status_code, r.text[:200])
        description = r.json()["description"]
        assert "unknown query parameter 'ooga'" in description, (op.path, description)
        assert all(name in description for name in op.query), (op.path, description)


def test_declared_property_parameters_and_the_maps_own_parameters_keep_working(api: Api) -> None:
    doc = api.client.get("/collections/hydrant/items", params={"status": "in_service", "kind": "underground"}).json()
    assert doc["features"] and {(f["properties"]["status"], f["properties"]["kind"]) for f in doc["features"]} == \
        {("in_service", "underground")}
    config = api.client.get("/map/config.json").json()  # the URLs the map itself builds
    tile = config["tiles"].replace("{layers}", "hydrant").replace("{z}", "14").replace("{x}", "13719") \
        .replace("{y}", "6693")
    assert "?v=" in tile and api.client.get(tile).status_code in (200, 204)
    for path, params in [("/collections/hydrant/items", {"bbox": "121.40,31.20,121.50,31.30", "limit": "5000"}),
                         ("/collections/hydrant/items", {"filter": "road LIKE '%测试%' OR owner LIKE '%测试%'",
                                                         "limit": "8"}),
                         ("/collections/hydrant/nearest", {"point": "121.4500000,31.2500000", "k": "3"}),
                         (f"/collections/hydrant/items/{PATH_VALUES['key']}", {"f": "json"}),
                         (f"/collections/hydrant/items/{PATH_VALUES['key']}", {"f": "html"}),
                         ("/map", {}), ("/login", {"next": "/map"})]:
        assert api.client.get(path, params=params, follow_redirects=False).status_code < 400, (path, params)


# -- filters ------------------------------------------------------------------------------------------------


def _nested(depth: int) -> str:
    text = "kind = 'underground'"
    for level in range(depth - 1):
        text = f"(pressure > 0.1 {'AND' if level % 2 else 'OR'} {text})"
    return text


def _json_nots(depth: int) -> str:
    node: dict = {"op": "=", "args": [{"property": "kind"}, "underground"]}
    for _ in range(depth - 1):
        node = {"op": "not", "args": [node]}
    return json.dumps(node)


def _circle(vertices: int) -> str:
    ring = [(121.45 + 0.3 * math.cos(2 * math.pi * i / (vertices - 1)),
             31.25 + 0.3 * math.sin(2 * math.pi * i / (vertices - 1))) for i in range(vertices - 1)]
    return "POLYGON((" + ", ".join(f"{x:.3f} {y:.3f}" for x, y in [*ring, ring[0]]) + "))"


HOSTILE_FILTERS = [
    (_nested(30), "cql2-text", f"at most {MAX_DEPTH} levels"),
    (" OR ".join(["kind = 'x'"] * 30), "cql2-text", None),  # flat: fine
    ("(kind = 'x' OR " * 30 + "kind = 'y'" + ")" * 30, "cql2-text", None),  # one chain, however bracketed
    (_json_nots(45), "cql2-json", "nested too deeply"),
    ("[" * 1000 + "]" * 1000, "cql2-json", "nested too deeply"),
    (" OR ".join(["outlet_diameter = 65"] * 300), "cql2-text", f"at most {MAX_NODES} operators"),
    (f"outlet_diameter IN ({', '.join(['65'] * (MAX_IN_VALUES + 1))})", "cql2-text", f"{MAX_IN_VALUES}"),
    (f"S_INTERSECTS(geometry, {_circle(MAX_VERTICES + 1)})", "cql2-text", f"limit is {MAX_VERTICES}"),
    ("kind = '" + "x" * MAX_FILTER_CHARS + "'", "cql2-text", f"limit is {MAX_FILTER_CHARS}"),
    ("outlet_diameter > 'abc'", "cql2-text", "'outlet_diameter' (of type integer) cannot be compared with 'abc'"),
    ("outlet_diameter BETWEEN 'a' AND 'b'", "cql2-text", "'outlet_diameter' (of type integer)"),
    ("inspected_on < 'soon'", "cql2-text", "'inspected_on' (of type date)"),
    ("pressure = 1e400", "cql2-text", "finite"),
    ("outlet_diameter = 123456789012345678901234567890", "cql2-text", "too large"),
    ("updated_at > TIMESTAMP('9999-12-31T23:59:59-01:00')", "cql2-text", "years 1 to 9999"),
]


@pytest.mark.parametrize(("text", "lang", "message"), HOSTILE_FILTERS, ids=lambda v: str(v)[:16])
def test_a_hostile_filter_is_a_400_naming_its_limit_wherever_filters_are_taken(api: Api, text: str, lang: str,
                                                                                 message: str | None) -> None:
    assert len(api.filtering) >= 4  # items, a collection's items, and both tile routes
    for op in api.filtering:
        r = api.client.get(op.url(), params={"filter": text, "filter-lang": lang})
        if message is None:
            assert r.status_code in (200, 204), (op.path, r.status_code, r.text[:300])
        else:
            assert r.status_code == 400, (op.path, r.status_code, r.text[:300])
            assert message in r.json()["description"], (op.path, r.json()["description"])


def test_filters_at_every_limit_are_answered_wherever_filters_are_taken(api: Api) -> None:
    at_limits = [_nested(MAX_DEPTH), _json_nots(MAX_DEPTH), " OR ".join(["outlet_diameter = 65"] * 125),
                 f"outlet_diameter IN ({', '.join(['65'] * MAX_IN_VALUES)})",
                 f"S_INTERSECTS(geometry, {_circle(MAX_VERTICES)})"]
    for op in api.filtering:
        for text in at_limits:
            lang = "cql2-json" if text.startswith("{") else "cql2-text"
            for extra in ({}, {"datetime": "2000-01-01T00:00:00Z/.."}):
                r = api.client.get(op.url(), params={"filter": text, "filter-lang": lang, **extra})
                assert r.status_code in (200, 204), (op.path, text[:60], r.status_code, r.text[:300])
