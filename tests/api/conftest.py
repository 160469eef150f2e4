"""A real twin store and a real uvicorn server on a free port, shared by the API tests of one worker.

Since issue 7 every non-public layer needs a token: users are created on the store's access database
(``twin.access.Gate(store).add_user``) before the server starts, and the tests send their tokens.
"""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx
import pytest

from tests.engines import fresh
from tests.query.twin_fixture import build_twin
from tests.users import add_user, bearer
from twin.catalogue import Catalogue
from twin.settings import DEFAULT_LAYERS_DIR
from twin.store import Store, open_store

#: The users the API tests act as: reads as a planner (masked), imports as a GIS editor, /audit as an admin.
ROLES = ("planner", "gis_editor", "admin")
_serial = itertools.count()


def add_users(target: str, roles: tuple[str, ...] = ROLES, area: str | None = None) -> dict[str, str]:
    """Create one user per role in the access tables of the store at ``target``; their tokens by role."""
    return {role: add_user(target, f"{role}-{os.getpid()}-{next(_serial)}", role, area) for role in roles}


@dataclass
class Server:
    """A running service: its base URL, the store it serves (to check answers against) and tokens by role."""

    url: str
    store: Store
    target: str
    tokens: dict[str, str] = field(default_factory=dict)

    def headers(self, role: str = "planner") -> dict[str, str]:
        return bearer(self.tokens[role])

    def get(self, path: str, *, role: str | None = "planner", **kwargs: object) -> httpx.Response:
        """GET ``path`` as ``role`` (``None``: without a token)."""
        headers = {**(self.headers(role) if role else {}), **dict(kwargs.pop("headers", None) or {})}  # type: ignore[call-overload]
        return httpx.get(self.url + path, timeout=30, headers=headers, **kwargs)  # type: ignore[arg-type]


@contextmanager
def running(target: str, **settings: object) -> Iterator[str]:
    """Serve the store at ``target`` with uvicorn in a child process (GDAL holds the GIL while it reads, so the server
    cannot share the test's process); yields the base URL and stops the server afterwards."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    env = {**os.environ, "TWIN_STORE": str(target), "TWIN_LAYERS": str(DEFAULT_LAYERS_DIR),
           **{f"TWIN_{k.upper()}": str(v) for k, v in settings.items()}}
    cmd = [sys.executable, "-m", "uvicorn", "twin.api.app:create_app", "--factory", "--fd", str(sock.fileno()),
           "--log-level", "warning"]
    proc = subprocess.Popen(cmd, env=env, pass_fds=(sock.fileno(),))
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, proc)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        sock.close()


def _wait_until_up(url: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the test server exited with {proc.returncode}")
        try:
            if httpx.get(url + "/conformance", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise RuntimeError("the test server did not start within 30 s")


@pytest.fixture(scope="session")
def server(twin_target: str, catalogue: Catalogue) -> Iterator[Server]:
    tokens = add_users(twin_target)
    store = open_store(twin_target, catalogue, create=False)
    with running(twin_target, stream_max_s=0.2) as url:  # a change stream ends like any answer (the fuzz waits)
        yield Server(url, store, twin_target, tokens)
    store.close()


POLICY = """
area_layers: [district]
roles:
  admin:        {read: "*", write: "*", unmask: "*", manage: true}
  gis_editor:   {read: "*", write: "*"}
  planner:      {read: "*"}
  area_officer: {read: "*", unmask: "*", scope: required}
  area_editor:  {read: "*", write: [hydrant], scope: required}
"""


#: A policy whose area_officer sees one district (West) only, with its personal fields unmasked.
@pytest.fixture(scope="module")
def area_city(tmp_path_factory: pytest.TempPathFactory, catalogue: Catalogue) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("area_city")
    policy = folder / "policy.yaml"
    policy.write_text(POLICY, encoding="utf-8")
    with fresh(folder) as target:
        build_twin(target, catalogue).close()
        tokens = add_users(target)
        store = open_store(target, catalogue, create=False)
        west = store.features("district").sort_values("name_en").iloc[1]
        tokens["area_officer"] = add_user(target, "west-officer", "area_officer", str(west.key), policy=policy)
        tokens["area_editor"] = add_user(target, "west-editor", "area_editor", str(west.key), policy=policy)
        with running(target, access_policy=str(policy), stream_max_s=3) as url:
            yield Server(url, store, target, tokens)
        store.close()
