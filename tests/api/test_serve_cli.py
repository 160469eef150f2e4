"""``twin serve`` starts the service on the port asked for, and refuses a missing store clearly."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import httpx

from tests.api.conftest import add_users
from tests.query.twin_fixture import COUNTS
from tests.users import bearer

TWIN = [sys.executable, "-c", "from twin.cli import main; main()"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_twin_serve_answers(twin_target: str) -> None:
    token = add_users(twin_target, ("planner",))["planner"]
    port = _free_port()
    proc = subprocess.Popen([*TWIN, "serve", "--store", twin_target, "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/collections/hydrant/items?limit=1", timeout=5,
                              headers=bearer(token))
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "twin serve did not start"
                time.sleep(0.1)
        assert r.json()["numberMatched"] == COUNTS["hydrant"]
        anonymous = httpx.get(f"http://127.0.0.1:{port}/collections/hydrant/items?limit=1", timeout=5)
        assert anonymous.status_code == 401
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_twin_serve_refuses_a_missing_store(target: str) -> None:
    out = subprocess.run([*TWIN, "serve", "--store", target],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and "no store here" in out.stderr


def test_workers_default_to_one_per_core_and_may_start_slowly(twin_target: str, monkeypatch) -> None:
    import os

    import uvicorn

    from twin.cli import serve as serve_cli
    from twin.settings import ServiceSettings

    assert ServiceSettings().workers == (os.cpu_count() or 1)
    monkeypatch.setenv("TWIN_WORKERS", "3")
    assert ServiceSettings().workers == 3
    calls: list[dict] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: calls.append({"app": app, **kwargs}))
    serve_cli.serve(store=twin_target, layers=None, host=None, port=None, workers=None)
    # each worker builds its app from the environment; one busy importing on a loaded machine is not taken for dead
    assert calls[0]["workers"] == 3 and calls[0]["factory"] is True
    assert calls[0]["timeout_worker_healthcheck"] >= 60
