"""The sharded layout of the README's design note, tried with two local clusters: a layer table partitioned by
location-key range, one partition local and one a ``postgres_fdw`` foreign table on another server. twin's reads
must give exactly what they give on the same layer unsharded (writes through the layout are not tried here)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import hydrants
from tests.engines import postgis_only
from twin.catalogue import Catalogue
from twin.model.query import BBox, FeatureQuery, Near
from twin.query.cql import parse_filter
from twin.query.crs import CRS84
from twin.query.filters import check_filter
from twin.store import open_store
from twin.store.copy import copy_store

psycopg = pytest.importorskip("psycopg")
pytestmark = postgis_only
SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "postgis"
SPLIT = "HY-wtw3e"  # keys below it stay on the primary, the rest live on the shard


def _server(folder: Path, port: int) -> tuple[str, dict[str, str]]:
    env = {**os.environ, "TWIN_POSTGIS_DIR": str(folder), "TWIN_POSTGIS_PORT": str(port)}
    done = subprocess.run(["bash", str(SCRIPT), "start"], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1], env


@pytest.fixture(scope="module")
def stores(catalogue: Catalogue) -> Iterator[tuple[str, str]]:
    """(plain, sharded): the same hydrants in an ordinary store and in one whose hydrant table is sharded."""
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
    folder = Path(tempfile.mkdtemp(prefix="twin-shards-"))
    folder.chmod(0o755)
    primary, env_a = _server(folder / "a", 28432 + 20 * worker)
    shard, env_b = _server(folder / "b", 28442 + 20 * worker)
    plain, sharded = f"{primary}?schema=plain", f"{primary}?schema=sharded"
    try:
        with open_store(plain, catalogue) as st:
            st.upsert("hydrant", hydrants(2000), author="t", source="t")
            with open_store(sharded, catalogue) as copy:
                copy_store(st, copy)
        columns = _columns(primary)
        with psycopg.connect(shard, autocommit=True) as b:
            b.execute("CREATE SCHEMA shard")
            b.execute(f"CREATE TABLE shard.hydrant_far ({columns})")
            b.execute("CREATE INDEX ON shard.hydrant_far USING gist (geom)")
        port = shard.split(":")[-1].split("/")[0]
        with psycopg.connect(primary, autocommit=True) as a:
            a.execute("CREATE EXTENSION IF NOT EXISTS postgres_fdw")
            a.execute(f"CREATE SERVER shard_b FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host '127.0.0.1', "
                      f"port '{port}', dbname 'twin', extensions 'postgis')")
            a.execute("CREATE USER MAPPING FOR CURRENT_USER SERVER shard_b OPTIONS (user 'postgres')")
            a.execute("ALTER TABLE sharded.hydrant RENAME TO hydrant_whole")
            a.execute(f'CREATE TABLE sharded.hydrant ({columns}) PARTITION BY RANGE ("key")')
            a.execute(f"CREATE TABLE sharded.hydrant_near PARTITION OF sharded.hydrant FOR VALUES FROM (MINVALUE) "
                      f"TO ('{SPLIT}')")
            a.execute("CREATE INDEX ON sharded.hydrant_near USING gist (geom)")
            a.execute(f"CREATE FOREIGN TABLE sharded.hydrant_far PARTITION OF sharded.hydrant FOR VALUES FROM "
                      f"('{SPLIT}') TO (MAXVALUE) SERVER shard_b OPTIONS (schema_name 'shard', table_name "
                      "'hydrant_far')")
            a.execute("INSERT INTO sharded.hydrant SELECT * FROM sharded.hydrant_whole")
            a.execute("DROP TABLE sharded.hydrant_whole")
            far = a.execute("SELECT count(*) FROM sharded.hydrant_far").fetchone()[0]
        with psycopg.connect(shard, autocommit=True) as b:
            assert b.execute("SELECT count(*) FROM shard.hydrant_far").fetchone()[0] == far > 0
        yield plain, sharded
    finally:
        for env in (env_a, env_b):
            subprocess.run(["bash", str(SCRIPT), "stop"], env=env, capture_output=True, timeout=120)
        shutil.rmtree(folder, ignore_errors=True)


def _columns(url: str) -> str:
    """The hydrant table's columns, as a CREATE TABLE column list."""
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT a.attname, format_type(a.atttypid, a.atttypmod), c.collname "
                            "FROM pg_attribute a LEFT JOIN pg_collation c ON c.oid = a.attcollation "
                            "AND c.collname <> 'default' WHERE a.attrelid = 'plain.hydrant'::regclass "
                            "AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum").fetchall()
    return ", ".join(f'"{n}" {t}' + (f' COLLATE "{c}"' if c else "") for n, t, c in rows)


QUERIES = [
    FeatureQuery("hydrant", limit=2000),
    FeatureQuery("hydrant", bbox=BBox(121.42, 31.22, 121.46, 31.27), limit=500),
    FeatureQuery("hydrant", near=Near(121.45, 31.25, 1500), limit=100),
]


@pytest.mark.parametrize("query", QUERIES, ids=["all", "bbox", "radius"])
def test_reads_over_the_sharded_layout_answer_as_the_plain_table(stores: tuple[str, str], catalogue: Catalogue,
                                                                 query: FeatureQuery) -> None:
    answers = []
    for target in stores:
        with open_store(target, catalogue, create=False) as st, st.read() as snap:
            answers.append((snap.select(query).rows, snap.count(query)))
    assert answers[0] == answers[1] and answers[0][1][0] > 0


def test_filters_keys_and_nearest_over_the_sharded_layout(stores: tuple[str, str], catalogue: Catalogue) -> None:
    flt = check_filter(parse_filter("outlet_diameter >= 100 AND S_DWITHIN(geometry, POINT(121.45 31.25), 2000)",
                                    None), catalogue["hydrant"], CRS84)
    out = []
    for target in stores:
        with open_store(target, catalogue, create=False) as st, st.read() as snap:
            rows = snap.select(FeatureQuery("hydrant", filter=flt, limit=1000)).rows
            keys = [r[1] for r in rows[:: max(1, len(rows) // 20)]]
            near = snap.nearest("hydrant", 121.45, 31.25, 12)
            out.append((rows, snap.by_keys("hydrant", keys).rows, near.fids.tolist(), near.distances.tolist()))
    assert out[0] == out[1] and out[0][0]
