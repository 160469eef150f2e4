"""The README's client recipes, run as written against a real server: the Python recipe (OWSLib, and GDAL 3.12
through geopandas/pyogrio), the ``ogrinfo``/``ogr2ogr`` lines with the installed GDAL command line, and the
request sequence QGIS makes with an ``Authorization`` header. Without a token, GDAL says what is missing.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pyogrio
import pytest

from tests.api.conftest import Server

README = Path(__file__).resolve().parents[2] / "README.md"
BOX = (121.47, 31.23, 121.48, 31.24)
GDAL_OPTIONS = ("GDAL_HTTP_AUTH", "GDAL_HTTP_BEARER", "GDAL_HTTP_HEADERS", "GDAL_HTTP_HEADER_FILE")


def readme_block(after: str, language: str) -> str:
    """The first ``language`` code block of the README after the line starting with ``after``."""
    text = README.read_text(encoding="utf-8")
    start = text.index("\n" + after)
    m = re.compile(rf"```{language}\n(.*?)```", re.S).search(text, start)
    assert m, f"no {language} block after {after!r} in the README"
    return m.group(1)


@pytest.fixture
def clean_gdal_environment() -> Iterator[None]:
    """The recipes set GDAL's HTTP options in the environment, which is the process's: put it back afterwards."""
    saved = {k: os.environ.pop(k, None) for k in GDAL_OPTIONS}
    yield
    for k, v in saved.items():
        os.environ.pop(k, None)
        if v is not None:
            os.environ[k] = v


def test_the_readme_python_recipe_reads_the_hydrants_in_a_box(server: Server, clean_gdal_environment: None) -> None:
    code = readme_block("Python (OWSLib, or GDAL", "python").replace("http://127.0.0.1:8000", server.url)
    scope: dict[str, object] = {"token": server.tokens["planner"]}
    exec(compile(code, str(README), "exec"), scope)  # the README's own code, as a user runs it
    expected = server.store.features("hydrant", bbox=BOX)
    assert len(expected) > 0
    assert scope["page"]["numberMatched"] == len(expected)  # type: ignore[index]
    assert sorted(scope["gdf"]["id"]) == sorted(expected["key"])  # type: ignore[index]


def test_gdal_http_headers_does_not_reach_the_oapif_driver_of_gdal_3_12(server: Server,
                                                                       clean_gdal_environment: None) -> None:
    """Why the README does not use GDAL_HTTP_HEADERS (this fails when a GDAL release makes it work)."""
    assert pyogrio.__gdal_version__ >= (3, 12, 0)
    os.environ["GDAL_HTTP_HEADERS"] = f"Authorization: Bearer {server.tokens['planner']}"
    with pytest.raises(pyogrio.errors.DataSourceError, match="needs a token"):
        pyogrio.list_layers(f"OAPIF:{server.url}/")


def test_gdal_without_a_token_says_that_a_token_is_needed(server: Server, clean_gdal_environment: None) -> None:
    with pytest.raises(pyogrio.errors.DataSourceError) as refused:
        pyogrio.list_layers(f"OAPIF:{server.url}/")
    assert "401" in str(refused.value) and "Authorization: Bearer <token>" in str(refused.value)
    assert "twin user add" in str(refused.value)


def _gdal_cli_version() -> tuple[int, int]:
    out = subprocess.run(["ogrinfo", "--version"], capture_output=True, text=True, check=True).stdout
    major, minor = re.search(r"GDAL (\d+)\.(\d+)", out).groups()  # type: ignore[union-attr]
    return int(major), int(minor)


@pytest.mark.skipif(shutil.which("ogr2ogr") is None, reason="no GDAL command line (Debian: gdal-bin)")
def test_the_readme_gdal_command_lines_work_with_the_installed_gdal(server: Server, tmp_path: Path) -> None:
    lines = [line for line in readme_block("GDAL on the command line", "bash").splitlines() if line.strip()]
    env = {**os.environ, "B": server.url, "TOKEN": server.tokens["planner"], "HOME": str(tmp_path)}
    env = {k: v for k, v in env.items() if k not in GDAL_OPTIONS}
    runs = [subprocess.run(["bash", "-c", line], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
            for line in lines]
    bearer_line, header_file, copy = runs
    if _gdal_cli_version() >= (3, 9):
        assert bearer_line.returncode == 0 and "hydrant" in bearer_line.stdout, bearer_line.stderr
    else:  # as the README says: the BEARER option needs GDAL 3.9
        assert bearer_line.returncode != 0 and "Unsupported HTTPAUTH value 'BEARER'" in bearer_line.stderr
    assert header_file.returncode == 0 and (tmp_path / ".twin-header").stat().st_mode & 0o077 == 0
    assert copy.returncode == 0, copy.stderr
    copied = pyogrio.read_dataframe(tmp_path / "hydrants.gpkg")
    assert sorted(copied["id"]) == sorted(server.store.features("hydrant", bbox=BOX)["key"])


def test_a_qgis_style_client_sends_the_header_with_every_request(server: Server) -> None:
    client = httpx.Client(headers=server.headers("planner"), timeout=30)
    landing = client.get(server.url + "/").json()
    assert "token" not in landing["description"]
    links = {link["rel"]: link["href"] for link in landing["links"]}
    assert client.get(links["conformance"]).json()["conformsTo"][0].endswith("/conf/core")
    collections = client.get(links["data"]).json()["collections"]
    hydrant = next(c for c in collections if c["id"] == "hydrant")
    items = next(link["href"] for link in hydrant["links"] if link["rel"] == "items")
    url, params, found = items, {"bbox": ",".join(map(str, BOX)), "limit": 7}, []
    while url:
        page = client.get(url, params=params).json()
        found += [f["id"] for f in page["features"]]
        url = next((link["href"] for link in page["links"] if link["rel"] == "next"), None)
        params = {}
    assert sorted(found) == sorted(server.store.features("hydrant", bbox=BOX)["key"])
    anonymous = httpx.get(server.url + "/collections", timeout=30)
    assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"] == 'Bearer realm="twin"'
