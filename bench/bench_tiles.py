"""Benchmark vector tiles: twin's dynamic tiles at z10, z12, z14 and z16 over central Shanghai, cold and warm,
against tipg on PostGIS serving the same data.

For each peer, layer set and zoom it prints p50/p95 latency of uncached (cold) and cached (warm) tiles, the
features and bytes per tile (MVT, and gzip as sent). The store is given by ``--store``; by default a
synthetic store of 1 million points (street lights and hydrants, dense in the centre like the city) is built
once and cached in ``~/.cache/twin``.

    python bench/bench_tiles.py --store ~/.cache/twin/bench/demo-full.gpkg \
        --peers twin,twin-http,twin-serve,tipg [--tiles 60] [--json out.json]

Peers (:data:`PEERS`, each a :class:`Peer`):

* ``twin``: the engine in this process (no HTTP);
* ``twin-http``: twin's app under uvicorn in a thread of this process (the client shares its GIL);
* ``twin-serve``: twin's app under uvicorn in its own process, as deployed (httptools, uvloop, no access log,
  nearest-k index not warmed); cold tiles come from a second such process with a tile cache of 0 MB;
* ``tipg``: tipg 1.x on the PostGIS copy (``bench/peers``), same uvicorn flags. tipg keeps no tile cache,
  so it is measured once per tile and its warm figures are its cold ones.

Latencies are measured by an httpx client in this process (its own overhead included, the same for every
HTTP peer); for the HTTP peers that cache, ``wrk p50`` is the warm latency measured by ``wrk`` (C, one
keep-alive connection, ``--wrk`` seconds cycling over the zoom's tiles).

Every HTTP client keeps its connection alive and sends ``Accept-Encoding: gzip``. Zooms with fewer tiles
over the area than ``--min-samples`` repeat their tiles (each cold fetch starts from an empty tile cache).
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import os
import random
import resource
import sys
import time
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from types import MappingProxyType

import geopandas as gpd
import httpx
import loadgen
import machine
import numpy as np
import orjson
import shapely
from mapbox_vector_tile.Mapbox import vector_tile_pb2
from peers import servers
from peers.urls import TipgUrls
from tokens import token_for

from tiles import TileEngine, TileSettings
from tiles.grid import TileID, tiles_in
from twin.api.app import create_app
from twin.catalogue import load_catalogue
from twin.settings import DEFAULT_LAYERS_DIR, TwinSettings
from twin.store import Store, open_store

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.serving import serving  # the in-thread uvicorn server of the HTTP tests

CITY = (121.10, 30.90, 121.80, 31.45)
CENTRE = (121.40, 31.15, 121.55, 31.30)  # central Shanghai: Huangpu, Jing'an, Xuhui, Lujiazui
CACHE = Path.home() / ".cache" / "twin"
TWIN_SERVE_PORTS = (55011, 55012)  # warm (tile cache on) and cold (tile cache of 0 MB)


def synthetic(n: int, seed: int, layer: str) -> gpd.GeoDataFrame:
    """``n`` points: 60 % around the centre (σ ≈ 5 km), the rest spread over the city."""
    rng = np.random.default_rng(seed)
    core = rng.random(n) < 0.6
    x = np.where(core, rng.normal(121.47, 0.05, n), rng.uniform(CITY[0], CITY[2], n))
    y = np.where(core, rng.normal(31.23, 0.045, n), rng.uniform(CITY[1], CITY[3], n))
    x, y = np.clip(x, CITY[0], CITY[2]), np.clip(y, CITY[1], CITY[3])
    status = rng.choice(["in_service", "faulty", "under_repair"], n, p=[0.95, 0.03, 0.02])
    road = [f"路{i % 997}" for i in range(n)]
    if layer == "street_light":
        attrs = {"lamp_type": rng.choice(["led", "sodium", "metal_halide"], n), "power": rng.choice([60, 100, 150], n),
                 "road": road}
    else:
        attrs = {"kind": rng.choice(["above_ground", "underground"], n), "outlet_diameter": rng.choice([65, 100], n),
                 "road": road}
    return gpd.GeoDataFrame({**attrs, "status": status}, geometry=shapely.points(x, y), crs="EPSG:4326")


def ensure_store(path: Path | None, n: int) -> Store:
    """The store to benchmark: ``path``, or the cached synthetic store of ``n`` points (built if missing)."""
    catalogue = load_catalogue(DEFAULT_LAYERS_DIR)
    if path is not None:
        return open_store(path, catalogue, create=False)
    path = CACHE / f"bench_tiles_{n}.gpkg"
    if path.exists():
        return open_store(path, catalogue, create=False)
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part.gpkg")
    tmp.unlink(missing_ok=True)
    store = open_store(tmp, catalogue)
    split = {"street_light": int(n * 0.85), "hydrant": n - int(n * 0.85)}
    t0 = time.perf_counter()
    for layer, count in split.items():
        with store.writer(layer, author="bench", source="bench") as w:
            for i in range(0, count, 100_000):
                w.add(synthetic(min(100_000, count - i), seed=i + len(layer), layer=layer))
    print(f"built {path.name}: {n:,} points in {time.perf_counter() - t0:,.0f} s")
    store.close()
    tmp.rename(path)
    return open_store(path, catalogue, create=False)


class Peer:
    """A tile server under test: ``fetch`` returns the tile's payload and the bytes sent."""

    name = "peer"
    #: Whether the peer caches tiles (else its warm figures are its cold ones, measured once).
    cached = True
    #: Base URL of an HTTP peer's warm server (for ``wrk``), ``None`` in-process.
    base: str | None = None
    #: Headers of every HTTP request (twin's bearer token).
    headers: Mapping[str, str] = MappingProxyType({})

    def start(self, store: Store) -> None: ...

    def supports(self, layers: tuple[str, ...]) -> bool:
        """Whether the peer serves one tile combining ``layers``."""
        return True

    def fetch(self, layers: tuple[str, ...], tile: TileID, *, cold: bool) -> tuple[bytes, int]:
        raise NotImplementedError

    def path(self, layers: tuple[str, ...], tile: TileID) -> str:
        """The tile's path on an HTTP peer."""
        return f"/tiles/{','.join(layers)}/{tile.z}/{tile.x}/{tile.y}.mvt"

    def mvt(self, payload: bytes) -> bytes:
        """The MVT bytes of what ``fetch`` returned (outside the timed part)."""
        return payload

    def forget(self) -> None:
        """Forget every cached tile (before each cold fetch, not timed)."""

    def stop(self) -> None: ...


class TwinEngine(Peer):
    name = "twin (in-process)"

    def start(self, store: Store) -> None:
        self.store = store
        self.engine = TileEngine(store, TileSettings(memory_mb=1024, warm=False))
        for layer in store.catalogue:
            self.engine.refresh(layer)  # aggregates are built once per store, then kept up to date

    def fetch(self, layers: tuple[str, ...], tile: TileID, *, cold: bool) -> tuple[bytes, int]:
        result = self.engine.tile(layers, tile)
        return result.gz, len(result.gz)

    def mvt(self, payload: bytes) -> bytes:
        return gzip.decompress(payload) if payload else b""

    def forget(self) -> None:
        self.engine.memory = type(self.engine.memory)(self.engine.memory.max_bytes)

    def stop(self) -> None:
        self.engine.close()


def client(base: str, headers: dict[str, str] | None = None) -> httpx.Client:
    """A keep-alive client asking for gzip (httpx un-gzips; ``content-length`` is what was sent)."""
    return httpx.Client(base_url=base, timeout=600, headers={"Accept-Encoding": "gzip", **(headers or {})})


def planner(store: Store) -> dict[str, str]:
    """twin's requests are made as a planner (every layer, personal fields masked), like most map users."""
    return {"Authorization": f"Bearer {token_for(store.location, 'bench-planner', 'planner')}"}


def get(http: httpx.Client, path: str) -> tuple[bytes, int]:
    r = http.get(path)
    r.raise_for_status()
    return r.content, int(r.headers.get("content-length", len(r.content)))


class TwinHttp(Peer):
    """twin's whole app under uvicorn in threads of this process: warm from one app, cold from a second one
    whose tile cache is 0 MB."""

    name = "twin (HTTP, uvicorn thread)"

    def start(self, store: Store) -> None:
        self.stack = ExitStack()
        self.clients = []
        self.headers = planner(store)
        for memory_mb in (1024, 0):
            os.environ["TWIN_TILES_MEMORY_MB"] = str(memory_mb)  # read when create_app builds its engine
            try:
                app = create_app(TwinSettings(store=store.location))
            finally:
                del os.environ["TWIN_TILES_MEMORY_MB"]
            base = self.stack.enter_context(serving(app))
            self.clients.append(self.stack.enter_context(client(base, self.headers)))
        self.base = str(self.clients[0].base_url).rstrip("/")

    def fetch(self, layers: tuple[str, ...], tile: TileID, *, cold: bool) -> tuple[bytes, int]:
        return get(self.clients[cold], self.path(layers, tile))

    def stop(self) -> None:
        self.stack.close()


class TwinServe(Peer):
    """twin's whole app (``twin.api.app:create_app``) in processes of its own, started like tipg."""

    name = "twin (HTTP, own process)"

    def start(self, store: Store) -> None:
        twin_bin = Path(__file__).resolve().parents[1] / ".venv" / "bin"
        self.servers, self.clients = [], []
        self.headers = planner(store)
        for port, memory_mb in zip(TWIN_SERVE_PORTS, (1024, 0), strict=True):
            argv = [str(twin_bin / "uvicorn"), "twin.api.app:create_app", "--factory", "--port", str(port),
                    *servers.UVICORN]
            env = {"TWIN_STORE": store.location, "TWIN_TILES_MEMORY_MB": str(memory_mb)}
            server = servers.start(f"twin-serve-{memory_mb}mb", argv, env, f"http://127.0.0.1:{port}",
                                   headers=self.headers)
            self.servers.append(server)
            self.clients.append(client(server.base, self.headers))
        self.base = self.servers[0].base

    def fetch(self, layers: tuple[str, ...], tile: TileID, *, cold: bool) -> tuple[bytes, int]:
        return get(self.clients[cold], self.path(layers, tile))

    def stop(self) -> None:
        for http, server in zip(self.clients, self.servers, strict=True):
            http.close()
            servers.stop(server)


class Tipg(Peer):
    """tipg on the PostGIS copy of the store (``TIPG_MAX_FEATURES_PER_TILE`` raised: it drops nothing)."""

    name = "tipg (PostGIS)"
    cached = False

    def start(self, store: Store) -> None:
        servers.prepare(Path(store.location))  # the GeoPackage; starts the cluster; loads it unless the peers hold it
        self.server = servers.start_tipg(Path(store.location))
        self.urls = TipgUrls(self.server.base)
        self.client = client(self.server.base)

    def supports(self, layers: tuple[str, ...]) -> bool:
        return len(layers) == 1  # one collection per tile

    def path(self, layers: tuple[str, ...], tile: TileID) -> str:
        return str(self.urls.tile(layers[0], tile.z, tile.x, tile.y))

    def fetch(self, layers: tuple[str, ...], tile: TileID, *, cold: bool) -> tuple[bytes, int]:
        return get(self.client, self.path(layers, tile))

    def stop(self) -> None:
        self.client.close()
        servers.stop(self.server)


PEERS: dict[str, Callable[[], Peer]] = {"twin": TwinEngine, "twin-http": TwinHttp, "twin-serve": TwinServe,
                                        "tipg": Tipg}


@dataclass
class Row:
    """The figures of one peer, layer set and zoom."""

    peer: str
    layers: str
    zoom: int
    tiles: int
    samples: int
    cold_p50: float
    cold_p95: float
    cold_max: float
    warm_p50: float
    warm_p95: float
    warm_wrk_p50: float | None
    features_p50: float
    mvt_kb_p50: float
    mvt_kb_max: float
    gzip_kb_p50: float
    gzip_kb_max: float


def sample(area: tuple[float, float, float, float], zoom: int, k: int, min_samples: int, seed: int = 0) -> \
        tuple[int, list[TileID]]:
    """Up to ``k`` tiles of ``area`` at ``zoom`` (seeded), repeated round-robin to at least ``min_samples``."""
    tiles = tiles_in(area, zoom)
    picked = random.Random(seed + zoom).sample(tiles, min(k, len(tiles)))
    return len(picked), list(itertools.islice(itertools.cycle(picked), max(len(picked), min_samples)))


def features(mvt: bytes) -> int:
    """Features in an MVT (all layers), parsed by protobuf's C parser."""
    tile = vector_tile_pb2.tile()
    tile.ParseFromString(mvt)
    return sum(len(layer.features) for layer in tile.layers)


def timed(peer: Peer, layers: tuple[str, ...], tiles: list[TileID], *, cold: bool) -> \
        tuple[np.ndarray, list[int], list[int], list[int]]:
    """Wall-clock milliseconds, features, MVT bytes and bytes sent per tile; a cold pass empties the peer's
    cache first, and again whenever a tile comes round a second time."""
    ms, count, raw, sent = [], [], [], []
    seen: set[TileID] = set()
    for tile in tiles:
        if cold and (not seen or tile in seen):
            peer.forget()
            seen.clear()
        seen.add(tile)
        t0 = time.perf_counter()
        data, n = peer.fetch(layers, tile, cold=cold)
        ms.append((time.perf_counter() - t0) * 1000)
        mvt = peer.mvt(data)
        count.append(features(mvt))
        raw.append(len(mvt))
        sent.append(n)
    return np.array(ms), count, raw, sent


def run(peer: Peer, layers: tuple[str, ...], zooms: list[int], args: argparse.Namespace) -> list[Row]:
    print(f"\n{peer.name}: layers {','.join(layers)}; {machine.load()}")
    print(f"{'zoom':>4} {'tiles':>5} {'cold p50':>9} {'cold p95':>9} {'warm p50':>9} {'warm p95':>9} {'wrk p50':>9} "
          f"{'features':>9} {'MVT p50':>9} {'MVT max':>9} {'gzip p50':>9} {'gzip max':>9}")
    rows = []
    for z in zooms:
        distinct, tiles = sample(args.area, z, args.tiles, args.min_samples)
        cold, count, raw, sent = timed(peer, layers, tiles, cold=True)
        if peer.cached:
            for tile in set(tiles):  # every tile once into the cache that serves warm requests
                peer.fetch(layers, tile, cold=False)
        warm = timed(peer, layers, tiles, cold=False)[0] if peer.cached else cold
        wrk_p50 = None
        if peer.cached and peer.base and args.wrk:  # warm latency with a C client: the server's share alone
            stats = loadgen.wrk(peer.base, [peer.path(layers, t) for t in set(tiles)], 1, args.wrk,
                                headers={"Accept-Encoding": "gzip", **peer.headers})
            wrk_p50 = round(stats["p50_us"] / 1000, 3)
        row = Row(peer.name, ",".join(layers), z, distinct, len(tiles), *(round(float(np.percentile(cold, p)), 3)
                                                                          for p in (50, 95, 100)),
                  round(float(np.percentile(warm, 50)), 3), round(float(np.percentile(warm, 95)), 3), wrk_p50,
                  float(np.median(count)), round(float(np.median(raw)) / 1000, 1), round(max(raw) / 1000, 1),
                  round(float(np.median(sent)) / 1000, 1), round(max(sent) / 1000, 1))
        rows.append(row)
        warm_text = f"{row.warm_p50:>7.3f}ms {row.warm_p95:>7.3f}ms" if peer.cached else f"{'(no cache)':>19}"
        warm_text += f" {wrk_p50:>7.3f}ms" if wrk_p50 is not None else f" {'-':>9}"
        print(f"{z:>4} {distinct:>5} {row.cold_p50:>7.2f}ms {row.cold_p95:>7.2f}ms {warm_text} "
              f"{row.features_p50:>9,.0f} {row.mvt_kb_p50:>7,.1f}KB {row.mvt_kb_max:>7,.1f}KB "
              f"{row.gzip_kb_p50:>7,.1f}KB {row.gzip_kb_max:>7,.1f}KB", flush=True)
    return rows


def summary(rows: list[Row]) -> str:
    """A markdown table per layer set and zoom: each peer's cold p50 / p95, warm p50, bytes and features,
    and how many times faster twin's own process is than tipg when both draw (cold)."""
    by = {(r.peer, r.layers, r.zoom): r for r in rows}
    peers = list(dict.fromkeys(r.peer for r in rows))
    head = "| layers | zoom | " + " | ".join(f"{p} cold p50 / p95 · warm p50 (wrk) ms" for p in peers) + \
        " | gzip KB p50 (max) | features p50 | tipg ÷ twin (own process), cold p50 |"
    lines = [head, "|" + "---|" * (len(peers) + 5)]
    for layers, zoom in dict.fromkeys((r.layers, r.zoom) for r in rows):
        cells, sizes, counts = [], [], []
        for p in peers:
            r = by.get((p, layers, zoom))
            if r is None:
                cells.append("—")
                continue
            warm = "—" if r.warm_p50 == r.cold_p50 and r.warm_wrk_p50 is None and "tipg" in p else \
                f"{r.warm_p50:.2f}" + (f" ({r.warm_wrk_p50:.2f})" if r.warm_wrk_p50 is not None else "")
            cells.append(f"{r.cold_p50:,.1f} / {r.cold_p95:,.1f} · {warm}")
            if "in-process" not in p and "thread" not in p:
                sizes.append(f"{p.split()[0]} {r.gzip_kb_p50:,.1f} ({r.gzip_kb_max:,.1f})")
                counts.append(f"{p.split()[0]} {r.features_p50:,.0f}")
        own, tipg = by.get((TwinServe.name, layers, zoom)), by.get((Tipg.name, layers, zoom))
        ratio = f"{tipg.cold_p50 / own.cold_p50:,.1f}×" if own and tipg else "—"
        lines.append(f"| {layers} | {zoom} | " + " | ".join(cells) + f" | {' · '.join(sizes)} | {' · '.join(counts)} | "
                     f"{ratio} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, default=None, help="store to read (default: synthetic, cached)")
    parser.add_argument("--n", type=int, default=1_000_000, help="points in the synthetic store")
    parser.add_argument("--layers", default="street_light,hydrant",
                        help="each layer alone, then all together; ';' between such groups")
    parser.add_argument("--zooms", default="10,12,14,16")
    parser.add_argument("--tiles", type=int, default=60, help="tiles sampled per zoom")
    parser.add_argument("--min-samples", type=int, default=5, help="repeat a zoom's tiles up to this many fetches")
    parser.add_argument("--area", type=lambda t: tuple(float(v) for v in t.split(",")), default=CENTRE,
                        help="lon/lat box the tiles are drawn from (default: central Shanghai)")
    parser.add_argument("--peers", default="twin", help=f"comma-separated, of: {', '.join(PEERS)}")
    parser.add_argument("--wrk", type=float, default=3, help="seconds of wrk (1 client) on warm HTTP tiles; 0: off")
    parser.add_argument("--json", type=Path, help="write every row here")
    args = parser.parse_args()
    print(machine.describe())
    store = ensure_store(args.store, args.n)
    print(f"store {store.location}: " + ", ".join(f"{layer} {store.count(layer):,}" for layer in store.catalogue
                                                if store.count(layer)))
    zooms = [int(z) for z in args.zooms.split(",")]
    sets = []
    for group in args.layers.split(";"):
        layers = tuple(group.split(","))
        sets += [(layer,) for layer in layers] + ([layers] if len(layers) > 1 else [])
    rows: list[Row] = []
    for name in args.peers.split(","):
        peer = PEERS[name]()
        t0 = time.perf_counter()
        peer.start(store)
        print(f"\n{peer.name}: ready in {time.perf_counter() - t0:,.1f} s")
        try:
            rows += [r for layers in sets if peer.supports(layers) for r in run(peer, layers, zooms, args)]
        finally:
            peer.stop()
    print(f"\npeak memory of this process {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB; "
          f"{machine.load()}")
    print("\n" + summary(rows))
    if args.json:
        args.json.write_bytes(orjson.dumps({"machine": machine.describe(), "store": store.location,
                                            "rows": [asdict(r) for r in rows]}, option=orjson.OPT_INDENT_2))
    store.close()


if __name__ == "__main__":
    main()
