"""``twin demo`` and ``twin up`` on the command line, with a real server for ``up``."""

from __future__ import annotations

import getpass
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from typer.testing import CliRunner

from tests.users import bearer
from twin.cli import app
from twin.store import exists


def test_demo_and_up_are_commands() -> None:
    out = CliRunner().invoke(app, ["--help"]).output
    assert "demo" in out and "up" in out
    assert "small" in CliRunner().invoke(app, ["demo", "--help"]).output


def test_unknown_scale_is_refused_before_anything_is_written(tmp_path: Path, target: str) -> None:
    result = CliRunner().invoke(app, ["demo", "--scale", "huge", "--store", target])
    assert result.exit_code == 2 and "choose one of small, full" in result.output
    assert not exists(target) and list(tmp_path.iterdir()) == []


def test_a_different_seed_on_a_demo_store_fails_with_one_clear_line(own_tiny: str) -> None:
    result = CliRunner().invoke(app, ["demo", "--scale", "tiny", "--seed", "99", "--store", own_tiny])
    assert result.exit_code == 1 and "pass --force" in result.output and "Traceback" not in result.output


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(target: str, log: Path) -> tuple[subprocess.Popen, int]:
    """Start ``twin up`` on a free port, its output going to ``log``; retried when another process grabbed the
    port first."""
    for _ in range(3):
        port = _free_port()
        with log.open("wb") as out:
            proc = subprocess.Popen([sys.executable, "-c", "from twin.cli import main; main()", "up", "--store",
                                     target, "--port", str(port)], stdout=out, stderr=subprocess.STDOUT,
                                    env={**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "80"})
        deadline = time.monotonic() + 90
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
                return proc, port
            except httpx.TransportError:
                time.sleep(0.3)
        proc.kill()
        proc.wait()
        output = log.read_text()
        if "address already in use" not in output:
            raise AssertionError(f"twin up did not serve:\n{output}")
    raise AssertionError("no free port for twin up")


def test_up_serves_an_existing_store_without_rebuilding_it(tmp_path: Path, own_tiny: str) -> None:
    proc, port = _serve(own_tiny, tmp_path / "up.log")
    try:
        log = (tmp_path / "up.log").read_text()
        link = re.search(rf"http://127\.0\.0\.1:{port}/login\?code=\S+&next=/map", log)  # a one-time sign-in code
        token = re.search(r"Authorization: Bearer (twin_\S+)", log)
        assert link is not None and token is not None, log
        url = f"http://127.0.0.1:{port}/collections/hydrant/items?limit=3&f=json"
        assert httpx.get(url, timeout=10).status_code == 401  # no default access
        r = httpx.get(url, headers=bearer(token.group(1)), timeout=10)
        assert r.status_code == 200 and len(r.json()["features"]) == 3
        assert r.json()["features"][0]["id"].startswith("HY-")
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as browser:
            signed_in = browser.get(link.group(0), follow_redirects=True)  # the one-click link: cookie, then /map
            assert signed_in.status_code == 200 and signed_in.url.path == "/map"
            assert browser.get("/whoami").json()["name"] == "twin-up"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert not (tmp_path / "files").exists()  # nothing was built


def test_demo_build_is_in_the_audit_trail(tiny_target: str) -> None:
    result = CliRunner().invoke(app, ["audit", "--action", "import", "--json", "--store", tiny_target])
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in result.stdout.splitlines()]
    build = [e for e in events if "twin demo --scale tiny" in (e["detail"] or "")]
    assert build and build[-1]["outcome"] == "ok" and build[-1]["user"] == f"local:{getpass.getuser()}"
    assert build[-1]["count"] > 0
