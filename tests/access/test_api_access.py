"""Issue 7 over HTTP, case by case: every refused request gets the right status, a clear message and an audit
record; masking by role holds in every format; scoped users see their area only.

Decision on another area's export: a download (``f=csv|fgb|gpkg``) whose bbox lies outside the user's area
is an empty file (200, zero features, audited as an export of 0 components), exactly what a bbox with no
data gives: a 404 would say nothing more, and an empty file is what GIS clients expect from a filter.
"""

from __future__ import annotations

import csv
import io
import itertools
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta

import geopandas as gpd
import httpx
import pyogrio
import pytest
import shapely
from fastapi.testclient import TestClient

from tests.engines import fresh
from tests.query.area_fixture import access_catalogue, build_area_twin
from tests.users import bearer
from twin.access import Gate
from twin.access.audit import AuditEvent
from twin.access.users import now, stamp
from twin.api.app import create_app
from twin.settings import TwinSettings
from twin.store import Store

POLICY = """
public_layers: [district]
roles:
  admin:        {read: "*", write: "*", unmask: "*", manage: true}
  gis_editor:   {read: "*", write: "*"}
  planner:      {read: "*"}
  area_officer: {read: "*", scope: required}
  app:          {read: [hydrant, street_light, pipeline], scope: optional}
"""

_serial = itertools.count()


@dataclass
class Service:
    client: TestClient
    gate: Gate
    store: Store
    tokens: dict[tuple[str, str | None], str] = field(default_factory=dict)

    def token(self, role: str, area: str | None = None) -> str:
        if (role, area) not in self.tokens:
            self.tokens[role, area] = self.gate.add_user(f"{role}{next(_serial)}", role, area)
        return self.tokens[role, area]

    def get(self, path: str, role: str | None = None, area: str | None = None, **params: object) -> httpx.Response:
        headers = bearer(self.token(role, area)) if role else {}
        return self.client.get(path, params=params, headers=headers, follow_redirects=False)

    def user(self, role: str, area: str | None = None) -> str:
        return self.gate.users.authenticate(self.token(role, area)).name

    def events(self, **filters: object) -> list[AuditEvent]:
        self.gate.audit.flush()
        return self.gate.audit.query(**filters)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    folder = tmp_path_factory.mktemp("api-access")
    layers = access_catalogue(folder / "layers")
    (folder / "policy.yaml").write_text(POLICY, encoding="utf-8")
    with fresh(folder) as target:
        build_area_twin(target, layers).close()
        app = create_app(TwinSettings(store=target, layers=layers, access_policy=folder / "policy.yaml"))
        with TestClient(app) as client:
            yield Service(client, app.state.gate, app.state.service.store)


@pytest.fixture(scope="module")
def area(svc: Service) -> tuple[str, shapely.Geometry]:
    """A sub-district with hydrants inside and outside it."""
    subs = svc.store.features("subdistrict")
    hydrants = svc.store.features("hydrant").geometry.to_numpy()
    best = max(range(len(subs)), key=lambda i: shapely.intersects(subs.geometry.iloc[i], hydrants).sum())
    return subs["key"].iloc[best], subs.geometry.iloc[best]


def _inside(svc: Service, layer: str, geom: shapely.Geometry) -> gpd.GeoDataFrame:
    frame = svc.store.features(layer)
    return frame[shapely.intersects(geom, frame.geometry.to_numpy())]


def _read_file(content: bytes) -> gpd.GeoDataFrame:
    with warnings.catch_warnings():  # an in-memory GeoPackage has no .gpkg name
        warnings.simplefilter("ignore", RuntimeWarning)
        return pyogrio.read_dataframe(io.BytesIO(content))


# -- 401: no, expired, forged, revoked or malformed token ------------------------------------------------------
def _bad_token(svc: Service, case: str) -> str | None:
    if case == "missing":
        return None
    token = svc.gate.add_user(f"victim-{case}-{next(_serial)}", "planner")
    token_id, secret = token.split("_")[1], token.split("_", 2)[2]
    if case == "expired":
        with svc.gate.db.write() as w:
            w.execute("UPDATE {tokens} SET expires = ? WHERE id = ?", (stamp(now() - timedelta(minutes=1)), token_id))
    elif case == "forged":
        return f"twin_{token_id}_{secret[::-1]}"
    elif case == "revoked":
        svc.gate.revoke_user(svc.gate.users.authenticate(token).name)
    elif case == "malformed":
        return token[:-1]
    return token


BAD_TOKENS = {"missing": "needs a token", "expired": "token expired at", "forged": "unknown token",
              "revoked": "token revoked", "malformed": "malformed token"}
PATHS = ["/collections/hydrant/items", "/collections/hydrant/items/{key}", "/keys/{key}",
         "/collections/hydrant/nearest?point=121.45,31.25", "/search?near=121.45,31.25&radius=500&layers=hydrant",
         "/collections/hydrant/items?f=csv", "/collections/residential_compound/items?f=gpkg"]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("case", list(BAD_TOKENS))
def test_bad_tokens_are_401_with_a_challenge_and_audited(svc: Service, case: str, path: str) -> None:
    key = svc.store.features("hydrant", limit=1)["key"][0]
    token = _bad_token(svc, case)
    headers = bearer(token) if token else {}
    r = svc.client.get(path.format(key=key), headers=headers)
    assert r.status_code == 401, r.text
    assert r.headers["www-authenticate"] == 'Bearer realm="twin"'
    assert BAD_TOKENS[case] in r.json()["description"] and key not in r.text
    event = svc.events(action="denied", limit=1)[0]
    assert (event.status, event.outcome, event.user, event.path) == (401, "denied", None, path.split("?")[0].format(
        key=key))
    assert BAD_TOKENS[case] in (event.detail or "")


def test_a_public_layer_is_open_and_the_rest_is_not(svc: Service) -> None:
    assert svc.get("/collections/district/items").status_code == 200
    assert [c["id"] for c in svc.get("/collections").json()["collections"]] == ["district"]
    assert svc.get("/collections/hydrant").status_code == 401


# -- 403: an area that is gone, a layer the role may not read, a masked field ----------------------------------
def test_a_user_whose_area_is_gone_is_403_and_audited(svc: Service) -> None:
    spare = gpd.GeoDataFrame({"name": ["临时居委"], "subdistrict": ["SD-wtw3zzzz-0"], "status": ["in_service"]},
                             geometry=[shapely.box(121.41, 31.21, 121.42, 31.22)], crs="EPSG:4326")
    svc.store.upsert("committee", spare, author="test", source="test")
    key = svc.store.features("committee").set_index("name").at["临时居委", "key"]
    assert svc.get("/collections/hydrant/items", "area_officer", key).status_code == 200
    svc.store.delete("committee", [key], author="test")
    r = svc.get("/collections/hydrant/items", "area_officer", key)
    assert r.status_code == 403, r.text
    assert f"area is not usable: area {key!r} does not exist" in r.json()["description"]
    event = svc.events(action="denied", limit=1)[0]
    assert event.status == 403 and "does not exist" in (event.detail or "")


def test_a_user_whose_area_is_not_an_area_is_403(svc: Service) -> None:
    token = svc.token("area_officer", svc.store.features("committee")["key"][0])
    hydrant = svc.store.features("hydrant", limit=1)["key"][0]
    name = svc.gate.users.authenticate(token).name
    with svc.gate.db.write() as w:
        w.execute("UPDATE {users} SET area = ? WHERE name = ?", (hydrant, name))
    try:
        r = svc.client.get("/collections/hydrant/items", headers=bearer(token))
        assert r.status_code == 403 and "is a hydrant component" in r.json()["description"]
        assert svc.events(action="denied", limit=1)[0].status == 403
    finally:
        svc.tokens.pop(("area_officer", svc.store.features("committee")["key"][0]))


def test_a_layer_the_role_may_not_read_is_403_and_audited(svc: Service) -> None:
    r = svc.get("/collections/residential_compound/items", "app")
    assert r.status_code == 403 and "role 'app' may not read layer 'residential_compound'" in r.json()["description"]
    event = svc.events(action="denied", limit=1)[0]
    assert (event.status, event.layer, event.role) == (403, "residential_compound", "app")
    assert svc.get("/search", "app", intersects="POINT(121.45 31.25)", layers="residential_compound").status_code == 403


MASKED_FIELD = [
    ("residential_compound", {"filter": "contact_phone LIKE '139%'"}),
    ("residential_compound", {"filter": "households > 10 OR NOT property_manager = 'x'"}),
    ("residential_compound", {"filter": '{"op": "=", "args": [{"property": "address"}, "x"]}',
                              "filter-lang": "cql2-json"}),
    ("residential_compound", {"sortby": "-contact_phone"}),
    ("residential_compound", {"contact_phone": "13912345678"}),
    ("construction_site", {"filter": "manager_phone IS NOT NULL"}),  # a dropped field
    ("construction_site", {"sortby": "site_manager"}),
    ("committee", {"secretary": "王建国"}),
]


@pytest.mark.parametrize(("layer", "params"), MASKED_FIELD)
def test_filters_and_sorts_on_masked_fields_are_403_and_audited(svc: Service, layer: str,
                                                                params: dict[str, str]) -> None:
    r = svc.get(f"/collections/{layer}/items", "planner", **params)
    assert r.status_code == 403, r.text
    assert "personal data" in r.json()["description"] and "masked" in r.json()["description"]
    event = svc.events(action="denied", limit=1)[0]
    assert (event.status, event.role, event.layer) == (403, "planner", layer)
    assert svc.get(f"/collections/{layer}/items", "admin", **params).status_code == 200


# -- 404: another area's component, by key, is one that does not exist -----------------------------------------
@pytest.mark.parametrize("route", ["/collections/hydrant/items/{}", "/keys/{}", "/collections/hydrant/items/{}?f=html"])
def test_another_areas_component_is_a_404_like_a_missing_one(svc: Service, area, route: str) -> None:  # type: ignore[no-untyped-def]
    key_area, geom = area
    inside = set(_inside(svc, "hydrant", geom)["key"])
    outside = next(k for k in svc.store.features("hydrant")["key"] if k not in inside)
    missing = outside.rsplit("-", 1)[0] + "-zzzz"
    mine = svc.get(route.format(next(iter(inside))), "area_officer", key_area)
    assert mine.status_code in (200, 307)
    theirs = svc.get(route.format(outside), "area_officer", key_area)
    nobody = svc.get(route.format(missing), "area_officer", key_area)
    assert theirs.status_code == nobody.status_code == 404
    assert theirs.content.replace(outside.encode(), b"K") == nobody.content.replace(missing.encode(), b"K")
    assert dict(theirs.headers) == {**dict(nobody.headers), "content-length": theirs.headers["content-length"]}
    event = next(e for e in svc.events(action="denied", limit=5) if e.status == 404)
    assert outside in (event.detail or "") and event.user == svc.user("area_officer", key_area)


@pytest.mark.parametrize("fmt", ["csv", "fgb", "gpkg"])
def test_another_areas_export_is_an_empty_file_and_audited(svc: Service, area, fmt: str) -> None:  # type: ignore[no-untyped-def]
    key_area, geom = area
    far = svc.store.features("hydrant")
    far = far[~shapely.intersects(shapely.box(*geom.bounds), far.geometry.to_numpy())]
    box = far.geometry.iloc[:20].total_bounds
    assert not shapely.intersects(geom, shapely.box(*box)) and len(svc.store.features("hydrant", bbox=tuple(box)))
    r = svc.get("/collections/hydrant/items", "area_officer", key_area, f=fmt, bbox=",".join(map(str, box)))
    assert r.status_code == 200, r.text
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig")))) if fmt == "csv" else \
        _read_file(r.content)
    assert len(rows) == 0
    event = svc.events(action="export", limit=1)[0]
    assert (event.count, event.layer, event.user) == (0, "hydrant", svc.user("area_officer", key_area))
    whole = svc.get("/collections/hydrant/items", "area_officer", key_area, f=fmt, limit=1000)
    ids = [row["id"] for row in csv.DictReader(io.StringIO(whole.content.decode("utf-8-sig")))] if fmt == "csv" \
        else _read_file(whole.content)["id"].tolist()
    assert sorted(ids) == sorted(_inside(svc, "hydrant", geom)["key"])
    assert svc.events(action="export", limit=1)[0].count == len(ids) > 0


def test_scoped_users_cannot_import(svc: Service, area) -> None:  # type: ignore[no-untyped-def]
    r = svc.client.post("/collections/hydrant/import", files=[("file", ("h.csv", b"kind,lon,lat\n"))],
                        headers=bearer(svc.token('area_officer', area[0])))
    assert r.status_code == 403 and "may not write" in r.json()["description"]


# -- masking by role, in every format ---------------------------------------------------------------------------
def _expected(role: str, frame: gpd.GeoDataFrame, key: str) -> dict[str, object]:
    row = frame.set_index("key").loc[key]
    if role == "admin":
        return {n: row[n] for n in ("property_manager", "contact_phone", "address")}
    return {"property_manager": row["property_manager"][0] + "*" * (len(row["property_manager"]) - 1),
            "contact_phone": row["contact_phone"][:3] + "****" + row["contact_phone"][-4:],
            "address": row["address"][: row["address"].index("号") + 1]}


@pytest.mark.parametrize("fmt", ["json", "html", "csv", "fgb", "gpkg"])
@pytest.mark.parametrize("role", ["planner", "admin"])
def test_personal_fields_are_masked_by_role_in_every_format(svc: Service, role: str, fmt: str) -> None:
    compounds, sites = svc.store.features("residential_compound"), svc.store.features("construction_site")
    r = svc.get("/collections/residential_compound/items", role, f=fmt, limit=1000)
    s = svc.get("/collections/construction_site/items", role, f=fmt, limit=1000)
    assert r.status_code == s.status_code == 200
    stored = [*compounds["property_manager"], *compounds["contact_phone"], *compounds["address"],
              *sites["site_manager"], *sites["manager_phone"]]
    shown = [v for v in stored if v.encode() in r.content + s.content]
    assert shown == ([] if role == "planner" else stored)
    if fmt == "html":
        some = compounds["key"].iloc[0]
        for value in _expected(role, compounds, some).values():
            assert str(value) in r.text
        return
    if fmt == "json":
        got = {f["id"]: f["properties"] for f in r.json()["features"]}
        kept = any("manager_phone" in f["properties"] for f in s.json()["features"])
    elif fmt == "csv":
        got = {row["id"]: row for row in csv.DictReader(io.StringIO(r.content.decode("utf-8-sig")))}
        kept = "manager_phone" in s.content.decode("utf-8-sig").splitlines()[0]
    else:
        got = _read_file(r.content).set_index("id").to_dict("index")
        kept = "manager_phone" in _read_file(s.content).columns
    assert len(got) == len(compounds)
    for key, props in got.items():
        assert {n: props[n] for n in ("property_manager", "contact_phone", "address")} == _expected(role, compounds,
                                                                                                   key)
    assert kept is (role == "admin")  # construction_site.manager_phone: dropped unless unmasked


@pytest.mark.parametrize("role", ["planner", "admin"])
def test_one_item_nearest_and_search_are_masked_too(svc: Service, role: str) -> None:
    compounds = svc.store.features("residential_compound")
    key = compounds["key"].iloc[5]
    item = svc.get(f"/collections/residential_compound/items/{key}", role).json()["properties"]
    assert {n: item[n] for n in ("property_manager", "contact_phone", "address")} == _expected(role, compounds, key)
    page = svc.get(f"/collections/residential_compound/items/{key}", role, f="html").text
    assert (compounds.set_index("key").at[key, "contact_phone"] in page) is (role == "admin")
    point = compounds.geometry.iloc[5].representative_point()
    near = svc.get("/collections/residential_compound/nearest", role, point=f"{point.x},{point.y}", k=3).json()
    found = svc.get("/search", role, near=f"{point.x},{point.y}", radius=800, layers="residential_compound").json()
    for feat in near["features"] + found["features"]:
        assert feat["properties"]["contact_phone"] == _expected(role, compounds, feat["id"])["contact_phone"]


# -- the browser's session cookie ----------------------------------------------------------------------------------
def test_login_sets_a_session_cookie_and_a_bad_login_is_audited(svc: Service) -> None:
    token = svc.token("planner")
    client = TestClient(svc.client.app)
    bad = client.post("/login", data={"token": token[:-2], "next": "/map"}, follow_redirects=False)
    assert bad.status_code == 401 and "malformed token" in bad.text
    assert svc.events(action="login", limit=1)[0].outcome == "denied"
    ok = client.post("/login", data={"token": token, "next": "https://evil.example/"}, follow_redirects=False)
    assert ok.status_code == 303 and ok.headers["location"] == "/map"
    cookie = ok.headers["set-cookie"]
    assert "twin_session=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert client.get("/whoami").json()["role"] == "planner"
    assert client.get("/collections/hydrant/items", params={"limit": 1}).status_code == 200
    assert svc.events(action="login", limit=1)[0].user == svc.user("planner")
    client.post("/logout", follow_redirects=False)
    client.cookies.clear()
    assert client.get("/collections/hydrant/items").status_code == 401


def test_whoami_tells_the_role_area_and_layers(svc: Service, area) -> None:  # type: ignore[no-untyped-def]
    me = svc.get("/whoami", "app", area[0]).json()
    assert (me["role"], me["area"]["key"], me["area"]["layer"]) == ("app", area[0], "subdistrict")
    assert me["layers"] == ["hydrant", "pipeline", "street_light"]
    assert svc.get("/whoami").json() == {"name": None, "role": "anonymous", "via": "anonymous", "area": None,
                                         "layers": ["district"]}
