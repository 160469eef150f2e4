"""Several servers over one store (several ``twin serve`` processes, or workers, or machines on one PostGIS): a write
through one is seen by the others' queries and cached tiles at once."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path

import mapbox_vector_tile
import morecantile
import pytest
import shapely
from fastapi.testclient import TestClient

from tests.conftest import hydrants
from tests.engines import drop, new_target
from tests.users import add_user, bearer
from twin.api.app import create_app
from twin.catalogue import Catalogue
from twin.settings import TwinSettings
from twin.store import open_store

POINT = (121.4512, 31.2511)


@pytest.fixture
def target(tmp_path: Path, catalogue: Catalogue) -> Iterator[str]:
    made = new_target(tmp_path, "shared")
    with open_store(made, catalogue) as st:
        st.upsert("hydrant", hydrants(500), author="t", source="t")
    yield made
    drop(made)


def _server(target: str) -> TestClient:
    return TestClient(create_app(TwinSettings(store=target)))


def _tile_keys(client: TestClient, path: str, headers: dict[str, str]) -> set[str]:
    r = client.get(path, headers=headers)
    assert r.status_code in (200, 204), r.text
    data = r.content
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    layers = mapbox_vector_tile.decode(data) if data else {}
    return {f["properties"]["key"] for f in layers.get("hydrant", {}).get("features", [])}


def test_a_write_through_one_server_is_seen_by_another_at_once(target: str) -> None:
    h = bearer(add_user(target, "editor", "admin"))  # type: ignore[arg-type]
    tile = morecantile.tms.get("WebMercatorQuad").tile(*POINT, 16)
    path = f"/tiles/hydrant/16/{tile.x}/{tile.y}.mvt"
    box = f"{POINT[0] - 0.004},{POINT[1] - 0.004},{POINT[0] + 0.004},{POINT[1] + 0.004}"
    with _server(target) as one, _server(target) as other:
        before = _tile_keys(other, path, h)  # drawn and cached by the other server
        counted = other.get(f"/collections/hydrant/items?bbox={box}", headers=h).json()["numberMatched"]
        new = hydrants(1, box=(POINT[0] - 1e-5, POINT[1] - 1e-5, POINT[0] + 1e-5, POINT[1] + 1e-5), kind="underground")
        done = one.post("/collections/hydrant/import", headers=h, data={"dry_run": "false"},
                        files={"file": ("one.geojson", new.to_json().encode(), "application/geo+json")})
        assert done.status_code == 200 and done.json()["report"]["inserted"] == 1, done.text
        key = done.json()["preview"]["features"][0]["properties"]["key"]
        after = _tile_keys(other, path, h)
        assert after == before | {key}
        assert other.get(f"/collections/hydrant/items?bbox={box}", headers=h).json()["numberMatched"] == counted + 1
        nearest = other.get(f"/collections/hydrant/nearest?point={POINT[0]},{POINT[1]}&k=1", headers=h).json()
        assert nearest["features"][0]["id"] == key
        assert shapely.Point(POINT).distance(shapely.geometry.shape(nearest["features"][0]["geometry"])) < 1e-4
