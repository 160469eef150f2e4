"""The store engine a test run uses, and fresh stores of it.

``TWIN_TEST_ENGINE=postgis`` runs the suite on PostGIS (``scripts/test`` runs it once per engine); the default is
GeoPackage. A test asks :func:`new_target` (or the ``target`` fixture) for where a new store goes: a file in
``tmp_path``, or a schema of its own in the test database of the project's PostGIS (``scripts/postgis``), dropped
when the test ends. Tests of what only one engine has (a GeoPackage file that GDAL opens, PostgreSQL's own
behaviour) say so with :data:`geopackage_only` / :data:`postgis_only`.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest

ENGINE = os.environ.get("TWIN_TEST_ENGINE", "geopackage").strip().lower()
if ENGINE not in ("geopackage", "postgis"):
    raise RuntimeError(f"TWIN_TEST_ENGINE={ENGINE!r}: use geopackage or postgis")
ROOT = Path(__file__).resolve().parent.parent
TEST_DATABASE = "twin_test"

geopackage_only = pytest.mark.skipif(ENGINE != "geopackage", reason="what this checks exists in a GeoPackage only")
postgis_only = pytest.mark.skipif(ENGINE != "postgis", reason="runs when the suite runs on PostGIS")


def database_url(name: str = TEST_DATABASE) -> str:
    """The URL of a database of the project's PostGIS (the server started, the database created when needed)."""
    started = subprocess.run(["bash", str(ROOT / "scripts" / "postgis", ), "start"], capture_output=True, text=True,
                             check=False)
    if started.returncode != 0:
        raise RuntimeError(f"scripts/postgis start failed: {started.stderr.strip()}")
    twin_url = started.stdout.strip().splitlines()[-1]
    url = twin_url.rsplit("/", 1)[0] + "/" + name
    import psycopg

    try:
        psycopg.connect(url).close()
    except psycopg.OperationalError:
        made = subprocess.run(["bash", str(ROOT / "scripts" / "postgis"), "createdb", name], capture_output=True,
                              text=True, check=False)
        if made.returncode != 0 and "exists already" not in made.stderr:
            raise RuntimeError(f"scripts/postgis createdb {name} failed: {made.stderr.strip()}") from None
    return url


def new_target(tmp_path: Path, name: str = "twin") -> str:
    """Where a new, empty store of this run's engine goes: a GeoPackage path, or a PostGIS URL with a fresh schema."""
    if ENGINE == "geopackage":
        return str(tmp_path / f"{name}.gpkg")
    return f"{_base_url()}?schema=t_{uuid.uuid4().hex[:12]}"


_BASE: list[str] = []


def _base_url() -> str:
    if not _BASE:
        _BASE.append(database_url())
    return _BASE[0]


def drop(target: str) -> None:
    """Remove a PostGIS store's schema (a GeoPackage in tmp_path goes with it)."""
    if not target.startswith("postgresql://"):
        return
    import psycopg

    from twin.store.postgis.connect import parse_url

    parsed = parse_url(target)
    with psycopg.connect(parsed.conninfo, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{parsed.schema}" CASCADE')
