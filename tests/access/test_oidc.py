"""OIDC/JWT mode: tokens signed by the city's identity provider (a real RSA key and JWKS file here) are
accepted, their claims mapped to a twin role and area; anything not exactly right is a 401 (or a 403 for a
role/area that does not fit), each one audited."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
import shapely
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient

from tests.engines import fresh
from tests.query.area_fixture import build_area_twin
from tests.users import bearer
from twin.access import AccessSettings
from twin.api.app import create_app
from twin.errors import AccessConfigError
from twin.settings import DEFAULT_LAYERS_DIR, OidcProviderSettings, TwinSettings
from twin.store import Store

ISSUER, AUDIENCE = "https://idp.city.example/realms/gov", "twin"
ROLE_MAP = {"planners": "planner", "street-staff": "area_officer", "gis-admins": "admin"}


@pytest.fixture(scope="module")
def keys() -> dict[str, rsa.RSAPrivateKey]:
    return {name: rsa.generate_private_key(public_exponent=65537, key_size=2048) for name in ("idp", "other")}


@pytest.fixture(scope="module")
def jwks(tmp_path_factory: pytest.TempPathFactory, keys: dict[str, rsa.RSAPrivateKey]) -> Path:
    """The provider's published keys: only the ``idp`` key, as ``kid`` k1."""
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(keys["idp"].public_key()))
    path = tmp_path_factory.mktemp("idp") / "jwks.json"
    path.write_text(json.dumps({"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]}), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, jwks: Path) -> Iterator[tuple[TestClient, Store]]:
    with fresh(tmp_path_factory.mktemp("oidc")) as target:
        build_area_twin(target, DEFAULT_LAYERS_DIR).close()
        settings = TwinSettings(store=target,
                                oidc=OidcProviderSettings(jwks=str(jwks), issuer=ISSUER, audience=AUDIENCE,
                                                          role_map=ROLE_MAP))
        app = create_app(settings)
        with TestClient(app) as client:
            yield client, app.state.service.store


def sign(keys: dict[str, rsa.RSAPrivateKey], *, key: str = "idp", kid: str | None = "k1", **claims: object) -> str:
    body = {"iss": ISSUER, "aud": AUDIENCE, "iat": int(time.time()), "exp": int(time.time()) + 600,
            "sub": "u-1", "preferred_username": "alice", "twin_role": "planners", **claims}
    body = {k: v for k, v in body.items() if v is not None}
    return jwt.encode(body, keys[key], algorithm="RS256", headers={"kid": kid} if kid else None)


def _last_denial(client: TestClient):  # type: ignore[no-untyped-def]
    audit = client.app.state.gate.audit  # type: ignore[attr-defined]
    audit.flush()
    return audit.query(action="denied", limit=1)[0]


def test_a_provider_role_maps_to_a_twin_role(service, keys) -> None:  # type: ignore[no-untyped-def]
    client, _ = service
    me = client.get("/whoami", headers=bearer(sign(keys))).json()
    assert (me["name"], me["role"], me["via"], me["area"]) == ("oidc:alice", "planner", "oidc", None)
    page = client.get("/collections/residential_compound/items", params={"limit": 5}, headers=bearer(sign(keys)))
    assert page.status_code == 200
    assert all(f["properties"]["contact_phone"][3:7] == "****" for f in page.json()["features"])


def test_the_first_known_role_of_a_list_wins(service, keys) -> None:  # type: ignore[no-untyped-def]
    client, _ = service
    token = sign(keys, twin_role=["visitors", "gis-admins", "planners"])
    assert client.get("/whoami", headers=bearer(token)).json()["role"] == "admin"


def test_with_a_role_map_only_mapped_roles_count(service, keys) -> None:  # type: ignore[no-untyped-def]
    client, _ = service  # "admin" is a twin role, but this provider's "admin" is not mapped to it
    response = client.get("/whoami", headers=bearer(sign(keys, twin_role=["admin", "visitors"])))
    assert response.status_code == 401 and _last_denial(client).status == 401


def test_the_area_claim_scopes_the_user(service, keys) -> None:  # type: ignore[no-untyped-def]
    client, store = service
    committee = store.features("committee").iloc[3]
    token = sign(keys, twin_role="street-staff", twin_area=committee["key"], preferred_username="li")
    me = client.get("/whoami", headers=bearer(token)).json()
    assert (me["role"], me["area"]["key"], me["area"]["layer"]) == ("area_officer", committee["key"], "committee")
    hydrants = store.features("hydrant")
    inside = set(hydrants[shapely.intersects(committee.geometry, hydrants.geometry.to_numpy())]["key"])
    doc = client.get("/collections/hydrant/items", params={"limit": 1000}, headers=bearer(token)).json()
    assert {f["id"] for f in doc["features"]} == inside and doc["numberMatched"] == len(inside)
    outside = next(k for k in hydrants["key"] if k not in inside)
    assert client.get(f"/collections/hydrant/items/{outside}", headers=bearer(token)).status_code == 404


def test_twin_tokens_still_work_beside_oidc(service) -> None:  # type: ignore[no-untyped-def]
    client, _ = service
    token = client.app.state.gate.add_user("local-planner", "planner")  # type: ignore[attr-defined]
    assert client.get("/whoami", headers=bearer(token)).json()["via"] == "token"


def _forged(keys: dict[str, rsa.RSAPrivateKey], case: str) -> str:
    if case == "alg none":
        return jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 600, "twin_role": "gis-admins"},
                          None, algorithm="none", headers={"kid": "k1"})
    if case == "HS256 keyed with the public key":
        pem = keys["idp"].public_key().public_bytes(serialization.Encoding.PEM,
                                                    serialization.PublicFormat.SubjectPublicKeyInfo)
        header = jwt.utils.base64url_encode(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "k1"}).encode())
        payload = jwt.utils.base64url_encode(json.dumps({"iss": ISSUER, "aud": AUDIENCE, "twin_role": "gis-admins",
                                                         "exp": int(time.time()) + 600}).encode())
        sig = jwt.utils.base64url_encode(hmac.new(pem, header + b"." + payload, hashlib.sha256).digest())
        return (header + b"." + payload + b"." + sig).decode()
    return "eyJhbGciOiJSUzI1NiJ9.bm90IGpzb24.c2ln"


BAD_TOKENS = {
    "wrong audience": ({"aud": "another-app"}, "Audience doesn't match"),
    "wrong issuer": ({"iss": "https://evil.example"}, "Invalid issuer"),
    "expired": ({"exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200}, "token expired"),
    "no expiry": ({"exp": None}, 'missing the "exp" claim'),
    "unknown kid": ({"kid": "k9"}, "unknown key id 'k9'"),
    "signed by another key": ({"key": "other"}, "Signature verification failed"),
    "unknown role": ({"twin_role": "visitors"}, "none of the token's roles (visitors) is a twin role"),
    "no role": ({"twin_role": None}, "no 'twin_role' claim"),
}


@pytest.mark.parametrize("case", list(BAD_TOKENS))
def test_bad_provider_tokens_are_401_and_audited(service, keys, case: str) -> None:  # type: ignore[no-untyped-def]
    client, _ = service
    claims, words = BAD_TOKENS[case]
    r = client.get("/collections/hydrant/items", headers=bearer(sign(keys, **claims)))  # type: ignore[arg-type]
    assert r.status_code == 401, r.text
    assert r.headers["www-authenticate"] == 'Bearer realm="twin"'
    assert words in r.json()["description"]
    event = _last_denial(client)
    assert (event.status, event.path, event.user) == (401, "/collections/hydrant/items", None)
    assert words in event.detail


@pytest.mark.parametrize("case", ["alg none", "HS256 keyed with the public key", "garbage"])
def test_forged_provider_tokens_are_401(service, keys, case: str) -> None:  # type: ignore[no-untyped-def]
    client, _ = service
    r = client.get("/collections/residential_compound/items", headers=bearer(_forged(keys, case)))
    assert r.status_code == 401, r.text
    assert r.headers["www-authenticate"] == 'Bearer realm="twin"'
    assert _last_denial(client).status == 401


@pytest.mark.parametrize(("claims", "words"), [
    ({"twin_role": "street-staff"}, "role 'area_officer' needs an area"),
    ({"twin_role": "street-staff", "twin_area": "NC-wtw3zzzz-9"}, "does not exist"),
    ({"twin_role": "street-staff", "twin_area": "HY-wtw3zzzz-9"}, "is a hydrant component"),
    ({"twin_role": "planners", "twin_area": "NC-wtw3zzzz-9"}, "role 'planner' cannot be scoped to an area"),
])
def test_roles_and_areas_that_do_not_fit_are_403(service, keys, claims, words) -> None:  # type: ignore[no-untyped-def]
    client, _ = service
    r = client.get("/collections/hydrant/items", headers=bearer(sign(keys, **claims)))
    assert r.status_code == 403, r.text
    assert words in r.json()["description"]
    event = _last_denial(client)
    assert event.status == 403 and words in event.detail


def test_oidc_settings_must_come_together(tmp_path: Path, jwks: Path) -> None:
    with pytest.raises(AccessConfigError, match="TWIN_OIDC_JWKS, TWIN_OIDC_ISSUER and TWIN_OIDC_AUDIENCE together"):
        AccessSettings.of(TwinSettings(store=tmp_path / "x.gpkg", oidc=OidcProviderSettings(jwks=str(jwks))))


def test_an_unreadable_jwks_stops_the_service_at_start(tmp_path: Path, target: str) -> None:
    build_area_twin(target, DEFAULT_LAYERS_DIR).close()
    (tmp_path / "jwks.json").write_text('{"keys": "nope"}', encoding="utf-8")
    for jwks in (tmp_path / "missing.json", tmp_path / "jwks.json"):
        with pytest.raises(AccessConfigError, match=f"OIDC JWKS {jwks}"):
            create_app(TwinSettings(store=target,
                                    oidc=OidcProviderSettings(jwks=str(jwks), issuer=ISSUER, audience=AUDIENCE)))
