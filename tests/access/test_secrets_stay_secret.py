"""A real ``twin serve`` (uvicorn's own logging, access log on) is sent tokens everywhere a token can travel:
the ``Authorization`` header, ``/login?token=``, the sign-in form, one-time codes, the session cookie, wrong
and forged tokens, provider JWTs, tokens where they do not belong. No token, code or session id may appear in
what the server printed, in the audit trail or anywhere in the access database's files; the cookie holds a
session id, not the token, and that session ends with sign-out, revocation and expiry.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.access.test_oidc import AUDIENCE, ISSUER, ROLE_MAP, jwks, keys, sign  # noqa: F401  (fixtures)
from tests.engines import ACCESS_ORDER, access_snapshot, fresh, is_pg
from tests.query.twin_fixture import build_twin
from tests.users import add_user, bearer
from twin.access import AccessSettings, Gate
from twin.access.users import now, split_token, stamp
from twin.catalogue import Catalogue
from twin.store import open_store

TWIN = [sys.executable, "-c", "from twin.cli import main; main()"]
COOKIE = "twin_session"


@dataclass
class Served:
    """A running ``twin serve``: its address, its store, where it printed to, and the secrets it was sent."""

    url: str
    store: str
    printed: Path
    catalogue: Catalogue
    secrets: set[str] = field(default_factory=set)

    def token(self, name: str, role: str = "planner") -> str:
        token = add_user(self.store, name, role)
        self.secrets |= {token, split_token(token)[1]}
        return token

    def gate(self) -> Gate:
        return Gate(open_store(self.store, self.catalogue, create=False), AccessSettings())

    def sign_in(self, token: str) -> httpx.Client:
        """A browser that signed in with the form; its session id is one more secret."""
        client = httpx.Client(base_url=self.url, timeout=30)
        r = client.post("/login", data={"token": token, "next": "/whoami"})
        assert r.status_code == 303, r.text
        self.secrets.add(client.cookies[COOKIE])
        return client

    def sql(self, sql: str, *params: object) -> None:
        """One statement on the store's access tables (named ``{sessions}``, ``{tokens}`` ...), behind the server."""
        gate = self.gate()
        try:
            with gate.db.write() as w:
                w.execute(sql, params)
        finally:
            gate.close()
            gate.store.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, catalogue: Catalogue, jwks: Path) -> Iterator[Served]:  # noqa: F811
    folder = tmp_path_factory.mktemp("secrets")
    with fresh(folder) as target:
        build_twin(target, catalogue).close()
        add_user(target, "first-admin", "admin")
        yield from _serve(target, folder, catalogue, jwks)


def _serve(target: str, folder: Path, catalogue: Catalogue, jwks: Path) -> Iterator[Served]:  # noqa: F811
    """``twin serve`` of the store at ``target`` in a child process, as an operator starts it."""
    port = _free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TWIN_OIDC_JWKS": str(jwks),
           "TWIN_OIDC_ISSUER": ISSUER, "TWIN_OIDC_AUDIENCE": AUDIENCE, "TWIN_OIDC_ROLE_MAP": json.dumps(ROLE_MAP)}
    printed = folder / "serve.log"
    with printed.open("wb") as out:
        proc = subprocess.Popen([*TWIN, "serve", "--store", target, "--port", str(port)], stdout=out,
                                stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, printed.read_text()
            try:
                httpx.get(url + "/conformance", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "twin serve did not start"
                time.sleep(0.1)
        yield Served(url, target, printed, catalogue)
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _send_tokens_everywhere(served: Served, keys: dict[str, rsa.RSAPrivateKey]) -> None:  # noqa: F811
    """Every way a token reaches the service, accepted and refused."""
    good = served.token("wang")
    token_id, secret = split_token(good)
    forged, malformed = f"twin_{token_id}_{secret[::-1]}", f"twin_{token_id}_{secret[:20]}"
    provider, expired = sign(keys), sign(keys, exp=int(time.time()) - 60)
    served.secrets |= {forged, secret[::-1], malformed, secret[:20], provider, expired}
    gate = served.gate()
    try:
        code = gate.sign_in_code(good)
    finally:
        gate.close()
        gate.store.close()
    served.secrets.add(code)
    get = lambda path, **kw: httpx.get(served.url + path, timeout=30, follow_redirects=False, **kw)  # noqa: E731
    statuses = [
        get("/collections/hydrant/items?limit=1", headers=bearer(good)).status_code,
        get("/collections/hydrant/items?limit=1", headers=bearer(forged)).status_code,
        get("/collections/hydrant/items?limit=1", headers=bearer(malformed)).status_code,
        get("/whoami", headers=bearer(provider)).status_code,
        get("/whoami", headers=bearer(expired)).status_code,
        get(f"/login?token={good}&next=/map").status_code,
        get(f"/login?next=/map&token={forged}").status_code,
        get(f"/login?tok%65n={good}").status_code,
        get(f"/login?token={provider}").status_code,
        get(f"/login?code={code}&next=/map").status_code,
        get(f"/login?code={code}&next=/map").status_code,  # spent
        httpx.post(served.url + "/login", data={"token": good}, timeout=30).status_code,
        httpx.post(served.url + "/login", data={"token": forged}, timeout=30).status_code,
    ]
    assert statuses == [200, 401, 401, 200, 401, 303, 401, 303, 303, 303, 401, 303, 401]
    misplaced = [get(f"/collections/hydrant/items?access_token={good}"),  # not how a token is sent: refused
                 get(f"/search?near=121.45,31.25&radius=100&token={good}"), get(f"/keys/{good}")]
    assert [400 <= r.status_code < 500 and secret not in r.text for r in misplaced] == [True] * 3
    browser = served.sign_in(good)
    assert browser.get("/collections/hydrant/items?limit=1").status_code == 200
    browser.post("/logout")


def test_no_token_code_or_session_id_reaches_the_log_or_the_audit_trail(
        served: Served, keys: dict[str, rsa.RSAPrivateKey]) -> None:  # noqa: F811
    _send_tokens_everywhere(served, keys)
    admin = served.token("auditor", "admin")
    trail = httpx.get(served.url + "/audit?limit=10000", headers=bearer(admin), timeout=30)  # flushes the trail
    assert trail.status_code == 200 and len(trail.json()["events"]) >= 10
    time.sleep(0.5)
    printed = served.printed.read_text(encoding="utf-8", errors="replace")
    assert '"GET /login?token=[redacted]&next=/map HTTP/1.1" 303' in printed  # the access log is on, redacted
    assert '"GET /login?code=[redacted]&next=/map HTTP/1.1" 401' in printed
    stored = repr(access_snapshot(served.store, tuple(ACCESS_ORDER)))
    on_disk = b"" if is_pg(served.store) else b"".join(  # the access database's files, write-ahead log included
        p.read_bytes() for p in Path(served.store).parent.glob(Path(served.store).stem + ".access.db*"))
    for secret in served.secrets:
        assert secret not in printed, f"{secret[:12]}… is in the server's log"
        assert secret not in trail.text, f"{secret[:12]}… is in the audit trail"
        assert secret not in stored, f"{secret[:12]}… is in the access tables"
        assert secret.encode() not in on_disk, f"{secret[:12]}… is in the access database's files"


def test_the_cookie_holds_a_session_id_that_ends_with_sign_out(served: Served) -> None:
    token = served.token("zhou")
    browser = served.sign_in(token)
    sid = browser.cookies[COOKIE]
    assert sid != token and split_token(token)[1] not in sid
    assert browser.get("/whoami").json()["name"] == "zhou"
    assert browser.post("/logout").status_code == 303
    replayed = httpx.get(served.url + "/collections/hydrant/items", cookies={COOKIE: sid}, timeout=30)
    assert replayed.status_code == 401  # ended on the server, not only forgotten by this browser


def test_a_revoked_users_session_stops_working(served: Served) -> None:
    browser = served.sign_in(served.token("sun"))
    assert browser.get("/collections/hydrant/items?limit=1").status_code == 200
    gate = served.gate()
    try:
        gate.revoke_user("sun")
    finally:
        gate.close()
        gate.store.close()
    assert browser.get("/collections/hydrant/items?limit=1").status_code == 401
    page = browser.get("/map", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"].startswith("/login")


def test_an_expired_session_stops_working(served: Served) -> None:
    browser = served.sign_in(served.token("qian"))
    assert browser.get("/whoami").json()["name"] == "qian"
    served.sql('UPDATE {sessions} SET expires = ? WHERE "user" = ?', stamp(now() - timedelta(seconds=1)), "qian")
    assert browser.get("/whoami").json()["name"] is None
    assert browser.get("/collections/hydrant/items?limit=1").status_code == 401


def test_a_provider_tokens_session_ends_when_the_token_does(served: Served,
                                                            keys: dict[str, rsa.RSAPrivateKey]) -> None:  # noqa: F811
    provider = sign(keys, exp=int(time.time()) + 120)
    r = httpx.post(served.url + "/login", data={"token": provider, "next": "/whoami"}, timeout=30)
    assert r.status_code == 303 and r.cookies[COOKIE] != provider
    assert 0 < int(r.headers["set-cookie"].split("Max-Age=")[1].split(";")[0]) <= 120
