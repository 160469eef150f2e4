"""What a caller without a token gets: every private resource is a 401 that says how to sign in, never an
empty answer that looks like "no data"; public layers stay readable; the landing page and the collections
tell an anonymous client that a token shows more.

Every GET route of the app is visited, so a route added later without access control fails here.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from starlette.routing import BaseRoute

from tests.engines import fresh
from tests.query.twin_fixture import build_twin
from tests.users import bearer
from twin.access import Gate
from twin.api.app import create_app
from twin.catalogue import Catalogue
from twin.settings import TwinSettings

POLICY = """
public_layers: [district]
roles:
  admin:   {read: "*", write: "*", unmask: "*", manage: true}
  planner: {read: "*"}
  blind:   {read: []}
"""
#: Routes anyone may call, and what they answer without a token (everything else: 401).
PUBLIC = {"/": 200, "/conformance": 200, "/api": 200, "/api/openapi-3.1.json": 200, "/api.html": 200, "/login": 200,
          "/whoami": 200, "/tileMatrixSets": 200, "/tileMatrixSets/{tms}": 200, "/map/basemap/roads.geojson": 200,
          "/map": 303, "/import": 303}
#: Values for the path parameters of the routes, and the query parameters some of them require.
PATH_VALUES = {"collectionId": "hydrant", "layer": "hydrant", "layers": "hydrant,pipeline", "tms": "WebMercatorQuad",
               "z": "14", "x": "13719", "y": "6693", "indicatorId": "faulty_hydrants",
               "alertId": "1", "orderId": "1"}
REQUIRED = {"/collections/{collectionId}/nearest": "?point=121.45,31.25", "/search": "?near=121.45,31.25&radius=500",
            "/changes/diff": "?from=2000-01-01&to=2100-01-01"}


@pytest.fixture(scope="module")
def twin(tmp_path_factory: pytest.TempPathFactory, catalogue: Catalogue) -> Iterator[tuple[str, Path]]:
    """The store (where it is) and the policy that opens the district layer."""
    folder = tmp_path_factory.mktemp("anonymous")
    (folder / "policy.yaml").write_text(POLICY, encoding="utf-8")
    with fresh(folder) as target:
        build_twin(target, catalogue).close()
        yield target, folder / "policy.yaml"


def _client(target: str, policy: Path | None) -> Iterator[TestClient]:
    app = create_app(TwinSettings(store=target, access_policy=policy))
    with TestClient(app) as client:
        yield client


@pytest.fixture(scope="module")
def private(twin: tuple[str, Path]) -> Iterator[TestClient]:
    """The packaged policy: no layer is public."""
    yield from _client(twin[0], None)


@pytest.fixture(scope="module")
def open_district(twin: tuple[str, Path]) -> Iterator[TestClient]:
    """A policy under which the districts are public."""
    yield from _client(*twin)


def _routes(routes: Iterable[BaseRoute]) -> Iterator[BaseRoute]:
    """Every route, including those of included routers (which some FastAPI versions wrap)."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        yield from _routes(inner.routes) if inner is not None else [route]


def _get_paths(client: TestClient) -> list[str]:
    paths = {r.path for r in _routes(client.app.routes) if "GET" in (getattr(r, "methods", None) or ())}
    return sorted(p for p in paths if p != "/static")


def test_every_private_route_is_401_for_an_anonymous_caller(private: TestClient) -> None:
    gate: Gate = private.app.state.gate  # type: ignore[attr-defined]
    key = gate.store.features("hydrant", limit=1)["key"][0]
    answers = {}
    for path in _get_paths(private):
        url = path.format(key=key, **PATH_VALUES) + REQUIRED.get(path, "")
        answers[path] = private.get(url, follow_redirects=False).status_code
    assert answers == {path: PUBLIC.get(path, 401) for path in answers}
    assert {"/collections", "/search", "/keys/{key}", "/collections/{collectionId}/items"} <= set(answers)


@pytest.mark.parametrize("url", ["/collections", "/search?near=121.45,31.25&radius=500",
                                 "/search?intersects=POINT(121.45 31.25)&distance=300"])
def test_an_anonymous_caller_is_told_to_sign_in_not_given_an_empty_answer(private: TestClient, url: str) -> None:
    r = private.get(url)
    assert r.status_code == 401 and r.headers["www-authenticate"] == 'Bearer realm="twin"'
    assert "Authorization: Bearer <token>" in r.json()["description"]
    assert "twin user add" in r.json()["description"]


def test_public_layers_stay_readable_and_the_rest_needs_a_token(open_district: TestClient) -> None:
    doc = open_district.get("/collections")
    assert doc.status_code == 200 and [c["id"] for c in doc.json()["collections"]] == ["district"]
    assert "Authorization: Bearer <token>" in doc.json()["twin:message"]
    assert doc.headers["www-authenticate"] == 'Bearer realm="twin"'
    assert "Authorization: Bearer" in open_district.get("/collections?f=html").text
    found = open_district.get("/search", params={"near": "121.42,31.25", "radius": 5000, "limit": 1000})
    assert found.status_code == 200
    assert {f["properties"]["layer"] for f in found.json()["features"]} == {"district"}
    assert open_district.get("/search", params={"near": "121.42,31.25", "radius": 5000,
                                                "layers": "district,hydrant"}).status_code == 401


def test_a_role_that_reads_nothing_is_403_not_an_empty_answer(open_district: TestClient) -> None:
    gate: Gate = open_district.app.state.gate  # type: ignore[attr-defined]
    headers = bearer(gate.add_user("nobody-reads", "blind"))
    for url in ("/collections", "/search?near=121.45,31.25&radius=500"):
        r = open_district.get(url, headers=headers)
        assert r.status_code == 403 and "may not read any of the layers" in r.json()["description"]


def test_the_landing_page_tells_an_anonymous_caller_how_to_sign_in(private: TestClient) -> None:
    doc = private.get("/")
    assert doc.status_code == 200 and doc.headers["www-authenticate"] == 'Bearer realm="twin"'
    assert "Without a token only public layers are served" in doc.json()["description"]
    assert "Authorization: Bearer &lt;token&gt;" in private.get("/?f=html").text
    gate: Gate = private.app.state.gate  # type: ignore[attr-defined]
    signed_in = private.get("/", headers=bearer(gate.add_user("landing-planner", "planner")))
    assert "token" not in signed_in.json()["description"] and "www-authenticate" not in signed_in.headers
