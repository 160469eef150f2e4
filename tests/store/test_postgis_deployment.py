"""twin on PostGIS as a city deploys it: behind pgbouncer, with a hot standby, through a database restart, and
refusing what it cannot use with a clear message. Each module runs its own cluster (``scripts/postgis`` in a
private folder), which these tests restart and reconfigure."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.conftest import hydrants
from tests.engines import postgis_only
from tests.users import add_user, bearer
from twin.api.app import create_app
from twin.catalogue import Catalogue
from twin.errors import StoreError, StoreUnavailableError, StoreVersionError
from twin.settings import ServiceSettings, TwinSettings
from twin.store import open_store

psycopg = pytest.importorskip("psycopg")
pytestmark = postgis_only
SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "postgis"


@dataclass
class Cluster:
    folder: Path
    env: dict[str, str]

    def run(self, *args: str) -> str:
        done = subprocess.run(["bash", str(SCRIPT), *args], env=self.env, capture_output=True, text=True,
                              timeout=600)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
    folder = Path(tempfile.mkdtemp(prefix="twin-deploy-"))
    folder.chmod(0o755)  # the server runs as `postgres` when the tests run as root: it must reach the folder
    made = Cluster(folder / "pg", {**os.environ, "TWIN_POSTGIS_DIR": str(folder / "pg"),
                                   "TWIN_POSTGIS_PORT": str(27432 + 20 * worker)})
    made.run("start")
    try:
        yield made
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop"], env=made.env, capture_output=True, timeout=120)
        shutil.rmtree(folder, ignore_errors=True)


def _url(cluster: Cluster, schema: str, via: str | None = None) -> str:
    return f"{via or cluster.run('url')}?schema={schema}"


def _app(store: str, read: str | None = None) -> TestClient:
    return TestClient(create_app(TwinSettings(store=store, store_read=read, service=ServiceSettings(threads=4))))


def _admin(store: str) -> str:
    return add_user(store, "admin", "admin")  # type: ignore[arg-type]


def test_twin_works_behind_pgbouncer_in_transaction_mode(cluster: Cluster, catalogue: Catalogue) -> None:
    bouncer = cluster.run("pgbouncer")
    store = _url(cluster, "bounced", via=bouncer)
    with open_store(store, catalogue) as st:
        st.upsert("hydrant", hydrants(300), author="t", source="t")
        with st.read() as snap:
            assert snap.layer_count("hydrant") == 300 and len(snap.nearest("hydrant", 121.45, 31.25, 5).fids) == 5
    token = _admin(store)
    with _app(store) as client:
        h = bearer(token)
        assert client.get("/collections/hydrant/items?limit=5", headers=h).json()["numberMatched"] == 300
        assert client.get("/tiles/hydrant/14/13720/6693.mvt", headers=h).status_code in (200, 204)


def test_a_standby_serves_reads_and_a_writer_still_reads_its_own_writes(cluster: Cluster,
                                                                      catalogue: Catalogue) -> None:
    primary = _url(cluster, "replicated")
    with open_store(primary, catalogue) as st:
        st.upsert("hydrant", hydrants(50), author="t", source="t")
    token = _admin(primary)
    standby = cluster.run("standby")
    pause = psycopg.connect(standby, autocommit=True)
    for _ in range(100):  # the standby has caught up with the store's creation
        if pause.execute("SELECT to_regclass('replicated.hydrant') IS NOT NULL").fetchone()[0]:
            break
        time.sleep(0.1)
    pause.execute("SELECT pg_wal_replay_pause()")
    try:
        with _app(primary, read=f"{standby}?schema=replicated") as client:
            h = bearer(token)
            body = hydrants(3, seed=7).to_json().encode()
            done = client.post("/collections/hydrant/import", headers=h,
                               files={"file": ("h.geojson", body, "application/geo+json")}, data={"dry_run": "false"})
            assert done.status_code == 200, done.text
            position = done.headers["Twin-Position"]
            # the writer, known to this server, reads its write from the primary (the standby is paused behind it)
            assert client.get("/collections/hydrant/items?limit=1", headers=h).json()["numberMatched"] == 53
            # a client naming an older position (or none, on another server) may be served by the standby
            other = TestClient(client.app)
            assert other.get("/collections/hydrant/items?limit=1", headers={**h, "Twin-After": "0/0"}
                             ).json()["numberMatched"] == 50
            assert other.get("/collections/hydrant/items?limit=1", headers={**h, "Twin-After": position}
                             ).json()["numberMatched"] == 53
    finally:
        pause.execute("SELECT pg_wal_replay_resume()")
        pause.close()


def test_the_database_restarting_gives_a_clear_503_and_the_service_comes_back(cluster: Cluster,
                                                                            catalogue: Catalogue) -> None:
    store = _url(cluster, "restarted")
    with open_store(store, catalogue) as st:
        st.upsert("hydrant", hydrants(20), author="t", source="t")
    token = _admin(store)
    with _app(store) as client:
        h = bearer(token)
        assert client.get("/collections/hydrant/items", headers=h).status_code == 200
        cluster.run("stop")
        try:
            down = client.get("/collections/hydrant/items", headers=h)
            assert down.status_code == 503 and down.json()["code"] == "StoreUnavailable"
            assert "Traceback" not in down.text and "psycopg" not in down.text
            assert "retry shortly" in down.text and down.headers["Retry-After"]
            assert str(cluster.env["TWIN_POSTGIS_PORT"]) not in down.text and "restarted" not in down.json()[
                "description"].split("(")[0]  # nothing of the database's address reaches the client
        finally:
            cluster.run("start")
        for _ in range(50):  # the pool replaces the connections that died with the old server
            back = client.get("/collections/hydrant/items", headers=h)
            if back.status_code == 200:
                break
            time.sleep(0.2)
        assert back.status_code == 200 and back.json()["numberMatched"] == 20


def test_what_cannot_be_used_is_refused_clearly(cluster: Cluster, catalogue: Catalogue) -> None:
    base = cluster.run("url").rsplit("/", 1)[0]
    with pytest.raises(StoreUnavailableError, match="no PostgreSQL server answers there"):
        open_store("postgresql://postgres@127.0.0.1:1/twin", catalogue)
    with pytest.raises(StoreUnavailableError, match="no such database"):
        open_store(f"{base}/nothing_here", catalogue)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as admin:
        admin.execute("DROP DATABASE IF EXISTS plain")
        admin.execute("CREATE DATABASE plain TEMPLATE template0")
        admin.execute("DROP ROLE IF EXISTS reader")
        admin.execute("CREATE ROLE reader LOGIN")
    with pytest.raises(StoreError, match="no PostGIS extension"):
        open_store(f"{base}/plain", catalogue, create=False)
    with pytest.raises(StoreError, match="may not add it"):
        open_store(f"postgresql://reader@{base.split('@')[1]}/plain", catalogue)
    store = f"{base}/twin?schema=newer"
    with open_store(store, catalogue) as st:
        st.upsert("hydrant", hydrants(5), author="t", source="t")
    with psycopg.connect(f"{base}/twin", autocommit=True) as conn:
        conn.execute("UPDATE newer.twin_meta SET value = '99' WHERE key = 'schema_version'")
        before = conn.execute("SELECT count(*) FROM newer.hydrant").fetchone()
    with pytest.raises(StoreVersionError, match="newer twin"):
        open_store(store, catalogue)
    with psycopg.connect(f"{base}/twin", autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM newer.hydrant").fetchone() == before
        conn.execute("CREATE SCHEMA IF NOT EXISTS foreign_tables")
        conn.execute("CREATE TABLE IF NOT EXISTS foreign_tables.roads (id int)")
    with pytest.raises(StoreError, match="not a twin store"):
        open_store(f"{base}/twin?schema=foreign_tables", catalogue)
