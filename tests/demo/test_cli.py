"""``twin demo`` and ``twin up`` on the command line, with a real server for ``up``."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from typer.testing import CliRunner

from twin.cli import app


def test_demo_and_up_are_commands() -> None:
    out = CliRunner().invoke(app, ["--help"]).output
    assert "demo" in out and "up" in out
    assert "small" in CliRunner().invoke(app, ["demo", "--help"]).output


def test_unknown_scale_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["demo", "--scale", "huge", "--store", str(tmp_path / "x.gpkg")])
    assert result.exit_code == 2 and "choose one of small, full" in result.output
    assert not (tmp_path / "x.gpkg").exists()


def test_a_different_seed_on_a_demo_store_fails_with_one_clear_line(tmp_path: Path, tiny_path: Path) -> None:
    path = tmp_path / "copy.gpkg"
    path.write_bytes(tiny_path.read_bytes())
    result = CliRunner().invoke(app, ["demo", "--scale", "tiny", "--seed", "99", "--store", str(path)])
    assert result.exit_code == 1 and "pass --force" in result.output and "Traceback" not in result.output


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(path: Path) -> tuple[subprocess.Popen, int]:
    """Start ``twin up`` on a free port; retried when another process grabbed the port first."""
    for _ in range(3):
        port = _free_port()
        proc = subprocess.Popen([sys.executable, "-c", "from twin.cli import main; main()", "up", "--store",
                                 str(path), "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 90
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
                return proc, port
            except httpx.TransportError:
                time.sleep(0.3)
        proc.kill()
        output = proc.communicate()[0].decode()
        if "address already in use" not in output:
            raise AssertionError(f"twin up did not serve:\n{output}")
    raise AssertionError("no free port for twin up")


def test_up_serves_an_existing_store_without_rebuilding_it(tmp_path: Path, tiny_path: Path) -> None:
    path = tmp_path / "served.gpkg"
    path.write_bytes(tiny_path.read_bytes())
    proc, port = _serve(path)
    try:
        r = httpx.get(f"http://127.0.0.1:{port}/collections/hydrant/items?limit=3&f=json", timeout=10)
        assert r.status_code == 200 and len(r.json()["features"]) == 3
        assert r.json()["features"][0]["id"].startswith("HY-")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert not (tmp_path / "files").exists()  # nothing was built
