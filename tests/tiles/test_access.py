"""Who sees what in tiles, over HTTP with real tokens: 401 without one on non-public layers, masked attributes by
role, fields dropped by masking left out of TileJSON, and a scoped user's tiles and metadata bound to their area
(a tile elsewhere is a 404, written to the audit log)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import mapbox_vector_tile
import pytest
import yaml

from tests.serving import serving
from tests.tiles.conftest import admin_areas, compounds, tile_app
from tests.users import bearer
from tiles import TileEngine, TileSettings
from tiles.grid import TileID, buffered_mercator, lonlat_box, tiles_in
from twin.access import AccessSettings, Gate
from twin.access.policy import DEFAULT_POLICY
from twin.catalogue import load_catalogue
from twin.settings import DEFAULT_LAYERS_DIR
from twin.store import Store, open_store

CENTRE = (121.45, 31.25)
VARY = "Accept-Encoding, Authorization, Cookie"


def _tile(z: int, where: tuple[float, float] = CENTRE) -> TileID:
    return tiles_in((*where, *where), z)[0]


def _mvt(layer: str, t: TileID) -> str:
    return f"/collections/{layer}/tiles/WebMercatorQuad/{t.z}/{t.y}/{t.x}"


@pytest.fixture
def served(engine: TileEngine, gate: Gate) -> Iterator[str]:
    with serving(tile_app(engine, gate)) as url:
        yield url


def test_anonymous_callers_get_401_on_non_public_layers_and_shared_tiles_of_public_ones(
        city: Store, engine: TileEngine, tmp_path: Path) -> None:
    policy = yaml.safe_load(DEFAULT_POLICY.read_text(encoding="utf-8"))
    policy["public_layers"] = ["hydrant"]
    (tmp_path / "policy.yaml").write_text(yaml.safe_dump(policy), encoding="utf-8")
    gate = Gate(city, AccessSettings(policy=tmp_path / "policy.yaml"))
    t = _tile(14)
    try:
        with serving(tile_app(engine, gate)) as url, httpx.Client(base_url=url, timeout=30) as anonymous:
            for path in (_mvt("pipeline", t), f"/tiles/hydrant,pipeline/{t.z}/{t.x}/{t.y}.mvt",
                         "/collections/pipeline/tiles/WebMercatorQuad/tilejson.json", "/collections/pipeline/tiles"):
                r = anonymous.get(path)
                assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer"), path
                assert "needs a token" in r.json()["description"]
            public = anonymous.get(_mvt("hydrant", t))
            assert public.status_code == 200 and mapbox_vector_tile.decode(public.content)["hydrant"]["features"]
            assert public.headers["cache-control"] == "no-cache" and public.headers["vary"] == VARY
            planner = anonymous.get(_mvt("pipeline", t), headers=bearer(gate.add_user("planner1", "planner")))
            assert planner.status_code == 200 and planner.headers["cache-control"] == "private, no-cache"
        denied = gate.audit.query(action="denied")
        assert {(e.status, e.layer) for e in denied} >= {(401, "pipeline")}
        assert any(e.path == f"/tiles/hydrant,pipeline/{t.z}/{t.x}/{t.y}.mvt" for e in denied)
    finally:
        gate.close()


def test_planner_sees_masked_attributes_and_admin_sees_them_as_stored(served: str, gate: Gate) -> None:
    t = _tile(16)
    planner, admin = (bearer(gate.add_user(role, role)) for role in ("planner", "admin"))
    with httpx.Client(base_url=served, timeout=30) as client:
        seen = {}
        for name, headers in (("planner", planner), ("admin", admin)):
            r = client.get(_mvt("residential_compound", t), headers=headers)
            assert r.status_code == 200 and r.headers["cache-control"] == "private, no-cache"
            features = mapbox_vector_tile.decode(r.content)["residential_compound"]["features"]
            seen[name] = ({(f["properties"]["property_manager"], f["properties"]["contact_phone"]) for f in features},
                          r.headers["etag"])
        assert seen["planner"][0] == {("张**", "138****1234")}
        assert seen["admin"][0] == {("张三丰", "13812341234")}
        assert seen["planner"][1] != seen["admin"][1]
        # filtering on a masked field would leak it: refused for the planner, fine for the admin
        params = {"filter": "contact_phone LIKE '138%'"}
        refused = client.get(_mvt("residential_compound", t), headers=planner, params=params)
        assert refused.status_code == 403 and "contact_phone" in refused.json()["description"]
        assert client.get(_mvt("residential_compound", t), headers=admin, params=params).status_code == 200


def test_fields_dropped_by_masking_are_left_out_of_tilejson_and_tiles(tmp_path: Path, target: str) -> None:
    layers = tmp_path / "layers"
    shutil.copytree(DEFAULT_LAYERS_DIR, layers)
    spec = layers / "residential_compound.yaml"
    spec.write_text(spec.read_text(encoding="utf-8").replace("sensitive: phone", "sensitive: drop"), encoding="utf-8")
    store = open_store(target, load_catalogue(layers))
    store.upsert("residential_compound", compounds(150, seed=3), author="test", source="test")
    gate, engine = Gate(store), TileEngine(store, TileSettings(warm=False))
    t = _tile(16)
    try:
        with serving(tile_app(engine, gate)) as url, httpx.Client(base_url=url, timeout=30) as client:
            for role, shown in (("planner", False), ("admin", True)):
                headers = bearer(gate.add_user(role, role))
                tj = client.get("/collections/residential_compound/tiles/WebMercatorQuad/tilejson.json",
                                headers=headers).json()
                assert ("contact_phone" in tj["vector_layers"][0]["fields"]) is shown
                tileset = client.get("/collections/residential_compound/tiles/WebMercatorQuad", headers=headers)
                assert ("contact_phone" in tileset.json()["layers"][0]["propertiesSchema"]["properties"]) is shown
                r = client.get(_mvt("residential_compound", t), headers=headers)
                props = [f["properties"] for f in mapbox_vector_tile.decode(r.content)["residential_compound"]
                         ["features"]]
                assert props and all(("contact_phone" in p) is shown for p in props)
    finally:
        engine.close()
        gate.close()
        store.close()


def test_a_scoped_users_tiles_and_metadata_keep_to_their_area_and_a_tile_elsewhere_is_an_audited_404(
        city: Store, tmp_path: Path) -> None:
    admin_areas(city)
    committees, hydrants = city.features("committee"), city.features("hydrant")
    committee = committees.iloc[int(committees.geometry.apply(lambda g: hydrants.intersects(g).sum()).argmax())]
    gate, engine = Gate(city), TileEngine(city, TileSettings(cache_dir=tmp_path / "cache", warm=False))
    area = gate.areas.get(committee.key)
    officer = bearer(gate.add_user("officer", "area_officer", committee.key))
    inside = hydrants.geometry[hydrants.intersects(committee.geometry)].iloc[0]
    far = _tile(14, (121.0, 31.0))
    try:
        with serving(tile_app(engine, gate)) as url, httpx.Client(base_url=url, timeout=30, headers=officer) as client:
            r = client.get(_mvt("hydrant", _tile(15, (inside.x, inside.y))))
            assert r.status_code == 200 and r.headers["cache-control"] == "private, no-cache"
            keys = [f["properties"]["key"] for f in mapbox_vector_tile.decode(r.content)["hydrant"]["features"]]
            assert keys and city.features("hydrant", keys=keys).intersects(area.geometry).all()
            elsewhere = (_mvt("hydrant", far), f"/tiles/hydrant,pipeline/{far.z}/{far.x}/{far.y}.mvt")
            for path in elsewhere:
                refused = client.get(path)
                assert refused.status_code == 404 and "does not meet your area" in refused.json()["description"]
            tj = client.get("/collections/hydrant/tiles/WebMercatorQuad/tilejson.json").json()
            data = city.extent("hydrant")
            expected = [max(area.bounds[0], data[0]), max(area.bounds[1], data[1]), min(area.bounds[2], data[2]),
                        min(area.bounds[3], data[3])]
            assert tj["bounds"] == pytest.approx(expected)
            box = client.get("/collections/hydrant/tiles/WebMercatorQuad").json()["boundingBox"]
            assert [*box["lowerLeft"], *box["upperRight"]] == pytest.approx(expected)
        denied = [e for e in gate.audit.query(action="denied") if e.status == 404]
        assert {e.path for e in denied} == set(elsewhere)
        assert {e.user for e in denied} == {"officer"}
        # the far tile really has no part in the area (so a 404 leaks nothing)
        assert not area.meets_box(lonlat_box(buffered_mercator(far, engine.settings.buffer)))
    finally:
        engine.close()
        gate.close()
