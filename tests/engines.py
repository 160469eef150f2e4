"""The store engine a test run uses, and fresh stores of it.

``TWIN_TEST_ENGINE=postgis`` runs the suite on PostGIS (``scripts/test`` runs it once per engine); the default is
GeoPackage. A test asks :func:`new_target` (or the ``target`` fixture) for where a new store goes: a file in
``tmp_path``, or a schema of its own in the test database of the project's PostGIS (``scripts/postgis``), dropped
when the test ends. Tests of what only one engine has (a GeoPackage file that GDAL opens, PostgreSQL's own
behaviour) say so with :data:`geopackage_only` / :data:`postgis_only`.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import pytest

from twin.catalogue import Catalogue
from twin.store.gpkg.access import access_db_path

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


def is_pg(target: str | Path) -> bool:
    """Whether ``target`` names a PostGIS store."""
    return str(target).startswith("postgresql://")


def drop(target: str | Path) -> None:
    """Remove a PostGIS store's schema (a GeoPackage in tmp_path goes with it). A store still holding a lock on
    it (a test that failed before closing it) makes this fail after a few seconds rather than wait for ever."""
    if not is_pg(target):
        return
    import psycopg

    from twin.store.postgis.connect import parse_url

    parsed = parse_url(str(target))
    with psycopg.connect(parsed.conninfo, autocommit=True) as conn:
        conn.execute("SET lock_timeout = '10s'")
        conn.execute(f'DROP SCHEMA IF EXISTS "{parsed.schema}" CASCADE')


@contextmanager
def fresh(tmp_path: Path, name: str = "twin") -> Iterator[str]:
    """A new store's target (see :func:`new_target`), dropped when the block ends."""
    target = new_target(tmp_path, name)
    try:
        yield target
    finally:
        drop(target)


def clone(source: str | Path, tmp_path: Path, catalogue: Catalogue, name: str = "copy") -> str:
    """A new store holding what the store at ``source`` holds (users and audit trail included): a copy of the file
    (and its access database) on GeoPackage, a ``twin store copy`` into a fresh schema on PostGIS. The source must
    not be open for writing elsewhere."""
    target = new_target(tmp_path, name)
    if not is_pg(source):
        for suffix in ("", "-wal"):
            if Path(f"{source}{suffix}").exists():
                shutil.copyfile(f"{source}{suffix}", f"{target}{suffix}")
        src_access, dst_access = access_db_path(Path(source)), access_db_path(Path(target))
        if src_access.exists():
            shutil.copyfile(src_access, dst_access)
        return target
    from twin.store import open_store
    from twin.store.copy import copy_store

    with open_store(source, catalogue, create=False) as src, open_store(target, catalogue) as dst:
        copy_store(src, dst)
    return target


def snapshot(target: str | Path) -> dict[str, list[str]]:
    """Every row of every table of the store, and the tables' definitions: what a failed write must leave as it was
    (the SQLite file's tables; every table, column and index of the PostGIS store's schema)."""
    if is_pg(target):
        return _pg_snapshot(str(target))
    conn = sqlite3.connect(target)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                             "AND name NOT LIKE 'rtree_%_node' AND name NOT LIKE 'rtree_%_parent' "
                                             "AND name NOT LIKE 'rtree_%_rowid'")]
        out = {t: sorted(map(repr, conn.execute(f'SELECT * FROM "{t}"'))) for t in tables}
        out["__schema__"] = sorted(map(repr, conn.execute("SELECT type, name, sql FROM sqlite_master")))
    finally:
        conn.close()
    return out


def _pg_snapshot(target: str) -> dict[str, list[str]]:
    import psycopg

    from twin.store.postgis.connect import parse_url

    parsed = parse_url(target)
    schema = parsed.schema
    with psycopg.connect(parsed.conninfo, autocommit=True) as conn:
        tables = [r[0] for r in conn.execute("SELECT table_name FROM information_schema.tables "
                                             "WHERE table_schema = %s", (schema,))]
        out = {t: sorted(map(repr, conn.execute(f'SELECT * FROM "{schema}"."{t}"'))) for t in tables}
        columns = conn.execute("SELECT table_name, column_name, data_type, udt_name, is_nullable, column_default "
                               "FROM information_schema.columns WHERE table_schema = %s", (schema,))
        indexes = conn.execute("SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = %s",
                               (schema,))
        out["__schema__"] = sorted([*map(repr, columns), *map(repr, indexes)])
    return out


def execute(target: str | Path, *statements: str) -> list[tuple]:
    """Run SQL on the store's own tables behind twin's back (tables named without a schema), in one transaction:
    how a test looks into a store, or breaks it the way another program or an older twin might. Returns the rows of
    the last statement."""
    rows: list[tuple] = []
    if not is_pg(target):
        with closing(sqlite3.connect(target)) as conn, conn:
            for statement in statements:
                rows = conn.execute(statement).fetchall()
        return rows
    import psycopg

    from twin.store.postgis.connect import parse_url

    parsed = parse_url(str(target))
    with psycopg.connect(parsed.conninfo) as conn:
        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{parsed.schema}"')
        conn.execute(f'SET search_path TO "{parsed.schema}", public')
        for statement in statements:
            cur = conn.execute(statement)
            rows = cur.fetchall() if cur.description else []
    return rows


@contextmanager
def failing_inserts(target: str | Path, layer: str, message: str = "database or disk is full") -> Iterator[None]:
    """Make every insert into ``layer`` fail inside the database with ``message``, as a full disk or a broken
    constraint would, for the duration of the block (a trigger: SQLite's ``RAISE(ABORT)``, PL/pgSQL's
    ``RAISE EXCEPTION``)."""
    if is_pg(target):
        execute(target, "CREATE FUNCTION test_disk_full() RETURNS trigger LANGUAGE plpgsql AS "
                        f"$$ BEGIN RAISE EXCEPTION '{message}'; END $$",
                f'CREATE TRIGGER test_disk_full BEFORE INSERT ON "{layer}" FOR EACH ROW '
                "EXECUTE FUNCTION test_disk_full()")
        undo = (f'DROP TRIGGER test_disk_full ON "{layer}"', "DROP FUNCTION test_disk_full()")
    else:
        execute(target, f'CREATE TRIGGER test_disk_full BEFORE INSERT ON "{layer}" '
                        f"BEGIN SELECT RAISE(ABORT, '{message}'); END")
        undo = ("DROP TRIGGER test_disk_full",)
    try:
        yield
    finally:
        execute(target, *undo)


#: The access tables of a store, and the order their rows were written in.
ACCESS_ORDER = {"users": "created, name", "tokens": "created, id", "audit": "id", "sessions": "created, hash",
                "sign_in_codes": "created, hash"}


def access_snapshot(target: str | Path, tables: tuple[str, ...] = ("users", "tokens", "audit")
                    ) -> dict[str, list[tuple]] | None:
    """The rows of the store's access tables, oldest first: its own schema's ``twin_*`` tables on PostGIS, the
    access database beside a GeoPackage (``None`` while there is none)."""
    if is_pg(target):
        import psycopg

        from twin.store.postgis.connect import parse_url

        parsed = parse_url(str(target))
        with psycopg.connect(parsed.conninfo, autocommit=True) as conn:
            return {t: conn.execute(f'SELECT * FROM "{parsed.schema}".twin_{t} ORDER BY {ACCESS_ORDER[t]}').fetchall()
                    for t in tables}
    db = access_db_path(Path(target))
    if not db.exists():
        return None
    with closing(sqlite3.connect(db)) as conn:
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY rowid").fetchall() for t in tables}


def nothing_at(target: str | Path) -> bool:
    """Whether nothing at all is at ``target``: no file (nor its write-ahead log or access database) for a
    GeoPackage, no schema for PostGIS, as before a store was ever made there."""
    if is_pg(target):
        import psycopg

        from twin.store.postgis.connect import parse_url

        parsed = parse_url(str(target))
        with psycopg.connect(parsed.conninfo, autocommit=True) as conn:
            return conn.execute("SELECT 1 FROM information_schema.schemata WHERE schema_name = %s",
                                (parsed.schema,)).fetchone() is None
    path = Path(target)
    return not any(p.exists() for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm"), access_db_path(path)))
