"""``scripts/postgis``: a local PostGIS server started the way a user starts it, on loopback only.

Each test worker runs its own cluster in a private directory (``TWIN_POSTGIS_DIR``) on its own preferred port, so
the tests never touch the project's ``.postgis/`` server nor each other's; the cluster is stopped and deleted at
the end.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

psycopg = pytest.importorskip("psycopg")

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "postgis"
PGBIN = Path("/usr/lib/postgresql/15/bin")
POSTGIS_CONTROL = Path("/usr/share/postgresql/15/extension/postgis.control")
URL = re.compile(r"postgresql://postgres@127\.0\.0\.1:(\d+)/twin")


def _why_it_cannot_run() -> str | None:
    if not shutil.which("bash") or not shutil.which("flock"):
        return "scripts/postgis needs bash and flock (util-linux)"
    if (PGBIN / "initdb").exists() and POSTGIS_CONTROL.exists():
        return None
    if not shutil.which("apt-get"):
        return "PostgreSQL 15 with PostGIS 3 is not installed and there is no apt-get to install it"
    if os.geteuid() != 0 and subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode != 0:
        return "PostgreSQL 15 with PostGIS 3 is not installed and apt-get needs root (no password-less sudo)"
    return None


REASON = _why_it_cannot_run()
pytestmark = pytest.mark.skipif(REASON is not None, reason=REASON or "")


@dataclass
class Cluster:
    """A cluster under ``folder`` as scripts/postgis made it."""

    folder: Path
    env: dict[str, str]

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(["bash", str(SCRIPT), *args], env=self.env, capture_output=True, text=True,
                              timeout=600)
        if check:
            assert done.returncode == 0, done.stderr
        return done

    def connect(self, url: str) -> psycopg.Connection:
        return psycopg.connect(url, connect_timeout=10, autocommit=True)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
    folder = Path(tempfile.mkdtemp(prefix="twin-postgis-"))
    folder.chmod(0o755)  # the server runs as `postgres` when the tests run as root: it must reach the folder
    made = Cluster(folder / "pg", {**os.environ, "TWIN_POSTGIS_DIR": str(folder / "pg"),
                                   "TWIN_POSTGIS_PORT": str(26432 + 10 * worker)})
    try:
        yield made
    finally:
        made.run("stop", check=False)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def url(cluster: Cluster) -> str:
    return cluster.run("start").stdout.strip()


def test_start_twice_gives_the_same_running_server_and_url(cluster: Cluster, url: str) -> None:
    assert URL.fullmatch(url), url
    again = cluster.run("start")
    assert again.stdout.strip() == url and again.stderr == ""
    assert (cluster.folder / "url").read_text().strip() == url
    assert cluster.run("url").stdout.strip() == url
    status = cluster.run("status")
    assert status.stdout.splitlines() == [f"running on 127.0.0.1:{URL.fullmatch(url).group(1)}, data in "
                                          f"{cluster.folder / 'data'}", url]


def test_the_twin_database_has_postgis(cluster: Cluster, url: str) -> None:
    with cluster.connect(url) as conn:
        (version,) = conn.execute("SELECT postgis_full_version()").fetchone()
        assert version.startswith('POSTGIS="3.') and "GEOS=" in version and "PROJ=" in version
        (wkt,) = conn.execute("SELECT ST_AsText(ST_Transform(ST_SetSRID(ST_MakePoint(121.4737, 31.2304), 4326),"
                              " 4549))").fetchone()
        assert wkt.startswith("POINT(")


def test_the_server_listens_on_loopback_and_its_own_socket_only(cluster: Cluster, url: str) -> None:
    port = int(URL.fullmatch(url).group(1))
    listening = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hexport = local.split(":")
            if state == "0A" and int(hexport, 16) == port:
                listening.append(address)
    assert listening == ["0100007F"]  # 127.0.0.1 in the kernel's byte order, and no IPv6 socket
    with cluster.connect(url) as conn:
        assert conn.execute("SHOW listen_addresses").fetchone() == ("127.0.0.1",)
        assert conn.execute("SHOW unix_socket_directories").fetchone() == (str(cluster.folder / "run"),)
        rules = conn.execute("SELECT type, address, auth_method FROM pg_hba_file_rules ORDER BY line_number").fetchall()
    assert rules == [("local", None, "trust"), ("host", "127.0.0.1", "trust")] * 2  # the second pair: replication
    with psycopg.connect(host=str(cluster.folder / "run"), port=port, user="postgres", dbname="twin") as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_the_server_is_tuned_for_bulk_loads_on_this_machine(cluster: Cluster, url: str) -> None:
    with cluster.connect(url) as conn:
        shown = {name: conn.execute(f"SHOW {name}").fetchone()[0] for name in (
            "shared_buffers", "maintenance_work_mem", "max_wal_size", "jit", "fsync", "wal_level", "hot_standby")}
    assert shown == {"shared_buffers": "2GB", "maintenance_work_mem": "1GB", "max_wal_size": "8GB", "jit": "off",
                     "fsync": "off", "wal_level": "replica", "hot_standby": "on"}  # a standby can follow


def test_createdb_makes_a_fresh_postgis_database_and_dropdb_removes_it(cluster: Cluster, url: str) -> None:
    name = f"t_{uuid.uuid4().hex[:12]}"
    own = cluster.run("createdb", name).stdout.strip()
    assert own == url.removesuffix("/twin") + f"/{name}"
    with cluster.connect(own) as conn:
        assert conn.execute("SELECT postgis_lib_version()").fetchone()[0].startswith("3.")
        conn.execute("CREATE TABLE mine (id int)")
    with cluster.connect(url) as conn:
        assert conn.execute("SELECT to_regclass('mine')").fetchone() == (None,)  # twin is untouched
    again = cluster.run("createdb", name, check=False)
    assert again.returncode == 1 and f"database '{name}' exists already" in again.stderr
    cluster.run("dropdb", name)
    with cluster.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (name,)).fetchone() == (0,)


@pytest.mark.parametrize("name", ["x;drop", "Upper", "9lives", "postgres", "template_postgis"])
def test_createdb_and_dropdb_refuse_a_bad_or_reserved_name(cluster: Cluster, url: str, name: str) -> None:
    with cluster.connect(url) as conn:
        before = conn.execute("SELECT array_agg(datname ORDER BY datname) FROM pg_database").fetchone()
    for command in ("createdb", "dropdb"):
        done = cluster.run(command, name, check=False)
        assert done.returncode == 1 and f"'{name}'" in done.stderr and done.stdout == ""
    with cluster.connect(url) as conn:
        assert conn.execute("SELECT array_agg(datname ORDER BY datname) FROM pg_database").fetchone() == before


def test_stop_then_start_keeps_the_data_and_the_url(cluster: Cluster, url: str) -> None:
    name = f"t_{uuid.uuid4().hex[:12]}"
    cluster.run("createdb", name)
    assert cluster.run("stop").stdout.strip() == "stopped"
    stopped = cluster.run("status", check=False)
    assert (stopped.returncode, stopped.stdout.strip()) == (3, "stopped")
    gone = cluster.run("url", check=False)
    assert gone.returncode == 1 and "not running" in gone.stderr
    assert cluster.run("start").stdout.strip() == url
    with cluster.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (name,)).fetchone() == (1,)
    cluster.run("dropdb", name)


def test_a_port_held_by_a_client_connection_is_passed_over(cluster: Cluster, url: str) -> None:
    """The kernel gives client connections local ports in 32768-60999: one may hold the preferred port without
    listening on it, which a probe by connecting does not see (a fresh-clone CI run lost its cluster to it)."""
    cluster.run("stop")
    preferred = int(cluster.env["TWIN_POSTGIS_PORT"]) + 5  # a port this server has not used: no TIME_WAIT on it
    held = Cluster(cluster.folder, {**cluster.env, "TWIN_POSTGIS_PORT": str(preferred)})
    with socket.create_server(("127.0.0.1", 0)) as peer, socket.socket() as client:
        client.bind(("127.0.0.1", preferred))
        client.connect(peer.getsockname())
        moved = held.run("start").stdout.strip()
        assert URL.fullmatch(moved) and int(URL.fullmatch(moved).group(1)) > preferred
        with cluster.connect(moved) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        held.run("stop")
    assert cluster.run("start").stdout.strip() == url  # the preferred port again, past its closed connections
