"""Start and stop the peers as subprocesses on loopback ports (after ``setup.sh`` and ``load.sh``).

Each peer runs as one uvicorn worker with httptools and uvloop (FACTS.md: plain h11 keep-alive adds a
~40 ms stall), access log off, from its own venv under ``$PEERS`` (default ``~/.cache/twin/peers``):

- tipg on the PostGIS copy; ``TIPG_MAX_FEATURES_PER_TILE`` raised so no tile silently drops features,
  each layer's id set to ``key`` and its properties to twin's (``store_layers.py``).
- pygeoapi's Starlette app on the config ``load.sh`` wrote (OGR or SQLiteGPKG provider).

``running_peers`` is the entry point for benchmarks: it yields ``{name: url builder}`` with base URLs;
given a ``store`` it first runs ``setup.sh`` and, unless that store is already loaded, ``load.sh``.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml

from peers.store_layers import last_changeset, store_layers
from peers.urls import PeerUrls, PygeoapiUrls, TipgUrls

HERE = Path(__file__).resolve().parent
PEERS = Path(os.environ.get("PEERS", Path.home() / ".cache" / "twin" / "peers"))
PGPORT = int(os.environ.get("PGPORT", "55432"))
TIPG_PORT = 55001
#: Holds every component of a layer in one tile, so tipg's tiles compare with twin's (FACTS.md).
MAX_FEATURES_PER_TILE = 100_000_000
UVICORN = ["--host", "127.0.0.1", "--workers", "1", "--http", "httptools", "--loop", "uvloop",
           "--no-access-log", "--log-level", "warning"]


@dataclass
class Server:
    """A running peer: its process, base URL and log file."""

    name: str
    base: str
    process: subprocess.Popen[bytes]
    log: Path


def loaded() -> tuple[Path, int]:
    """The store ``load.sh`` last loaded into the peers, and its last changeset id then."""
    marker = PEERS / "loaded-store.txt"
    if not marker.exists():
        raise SystemExit(f"no {marker}: run bench/peers/setup.sh and bench/peers/load.sh STORE.gpkg first")
    path, changeset = marker.read_text(encoding="utf-8").split("\n")[:2]
    return Path(path), int(changeset)


def loaded_store() -> Path:
    return loaded()[0]


def prepare(store: Path, *, with_sqlite: bool = False) -> None:
    """Install and start what is missing (``setup.sh``), then load ``store`` unless the peers hold it as it is."""
    subprocess.run(["bash", str(HERE / "setup.sh")], check=True, stdout=subprocess.DEVNULL)
    store = Path(store).resolve()
    current = (store, last_changeset(store))
    sqlite_ok = not with_sqlite or (PEERS / "pygeoapi-sqlite.yml").exists()
    if not ((PEERS / "loaded-store.txt").exists() and loaded() == current and sqlite_ok):
        subprocess.run(["bash", str(HERE / "load.sh"), str(store), *(["--with-sqlite"] if with_sqlite else [])],
                       check=True)


def tipg_settings(database_url: str, schema: str, properties: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """tipg's settings for twin's layers in ``schema`` of ``database_url``: those tables only (not their history),
    the tile feature cap, and per layer ``pk=key`` with the ``properties`` twin returns."""
    env = {"DATABASE_URL": database_url, "TIPG_MAX_FEATURES_PER_TILE": str(MAX_FEATURES_PER_TILE),
           "TIPG_DB_SCHEMAS": json.dumps([schema]), "TIPG_DB_TABLES": json.dumps([f"{schema}.{t}" for t in properties]),
           "TIPG_DB_EXCLUDE_FUNCTION_SCHEMAS": json.dumps(sorted({"public", schema}))}
    for layer, columns in properties.items():
        prefix = f"TIPG_TABLE_CONFIG__{schema}_{layer}__"
        env[prefix + "PK"] = "key"
        env[prefix + "PROPERTIES"] = json.dumps(list(columns))
    return env


def tipg_env(store: Path) -> dict[str, str]:
    """tipg's settings for the copy ``load.sh`` made of ``store`` (schema ``public`` of the bench cluster)."""
    return tipg_settings(f"postgresql://postgres@127.0.0.1:{PGPORT}/twin", "public",
                         {layer.name: layer.properties for layer in store_layers(store)})


def start(name: str, argv: list[str], env: dict[str, str], base: str, timeout_s: float = 90,
          headers: dict[str, str] | None = None) -> Server:
    """Run ``argv`` with ``env`` added, logging to ``$PEERS/logs/<name>.log``; return once it answers
    ``/collections`` (with ``headers``: twin serves nothing without a token)."""
    logs = PEERS / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(argv, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT,
                                   cwd=PEERS, start_new_session=True)
    server = Server(name, base, process, log)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}; see {log}:\n{log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{base}/collections", timeout=5, headers=headers).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    stop(server)
    raise RuntimeError(f"{name} did not answer on {base} within {timeout_s:.0f} s; see {log}")


def stop(server: Server) -> None:
    """Terminate the peer (a single uvicorn process), then kill it if it lingers."""
    if server.process.poll() is None:
        server.process.terminate()
        try:
            server.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


def start_tipg(store: Path, port: int = TIPG_PORT, *, env: dict[str, str] | None = None,
               timeout_s: float = 90) -> Server:
    """tipg on the copy of ``store`` that ``load.sh`` made, or with ``env`` as its settings (``tipg_settings``)."""
    argv = [str(PEERS / "tipg" / "bin" / "uvicorn"), "tipg.main:app", "--port", str(port), *UVICORN]
    return start("tipg", argv, tipg_env(store) if env is None else env, f"http://127.0.0.1:{port}", timeout_s)


def start_pygeoapi(provider: str = "ogr") -> Server:
    """pygeoapi on ``$PEERS/pygeoapi-<provider>.yml``, on the port written into that config."""
    config = PEERS / f"pygeoapi-{provider}.yml"
    if not config.exists():
        extra = " --with-sqlite" if provider == "sqlite" else ""
        raise SystemExit(f"no {config}: run bench/peers/load.sh STORE.gpkg{extra} first")
    port = yaml.safe_load(config.read_text(encoding="utf-8"))["server"]["bind"]["port"]
    env = {"PYGEOAPI_CONFIG": str(config), "PYGEOAPI_OPENAPI": str(PEERS / f"pygeoapi-{provider}-openapi.yml")}
    argv = [str(PEERS / "pygeoapi" / "bin" / "uvicorn"), "pygeoapi.starlette_app:APP", "--port", str(port), *UVICORN]
    return start(f"pygeoapi-{provider}", argv, env, f"http://127.0.0.1:{port}")


@contextmanager
def running_peers(names: tuple[str, ...] = ("tipg", "pygeoapi"), *, store: Path | None = None,
                  pygeoapi_provider: str = "ogr") -> Iterator[dict[str, PeerUrls]]:
    """Start the named peers, yield their URL builders by name, stop them on exit.

    With ``store``, the peers are first set up and loaded with it (see ``prepare``); without, they serve
    whatever ``load.sh`` loaded last.
    """
    if store is not None:
        prepare(store)
    store = loaded_store()
    builders: dict[str, PeerUrls] = {}
    with ExitStack() as stack:
        if "tipg" in names:
            server = start_tipg(store)
            stack.callback(stop, server)
            builders["tipg"] = TipgUrls(server.base)
        if "pygeoapi" in names:
            server = start_pygeoapi(pygeoapi_provider)
            stack.callback(stop, server)
            builders["pygeoapi"] = PygeoapiUrls(server.base, name=f"pygeoapi-{pygeoapi_provider}")
        yield builders
