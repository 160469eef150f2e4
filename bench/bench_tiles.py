"""Benchmark vector tiles: twin's dynamic tiles at z10, z12, z14 and z16 over central Shanghai, cold and warm.

For each peer and zoom it prints p50/p95 latency of uncached (cold) and cached (warm) tiles and the bytes per
tile (MVT, and gzip as sent). The store is given by ``--store``; by default a synthetic store of 1 million
points (street lights and hydrants, dense in the centre like the city) is built once and cached in
``~/.cache/twin``.

    python bench/bench_tiles.py [--store FILE.gpkg] [--n 1000000] [--tiles 60] [--http]

Peers plug in as :class:`Peer` subclasses (``name``, ``start``, ``fetch``, ``clear``, ``stop``) listed in
:data:`PEERS`; twin in-process (the engine) and twin over HTTP (uvicorn + httpx, keep-alive) are built in.
"""

from __future__ import annotations

import argparse
import gzip
import random
import resource
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import httpx
import numpy as np
import shapely
import uvicorn
from fastapi import FastAPI

from tiles import TileEngine, TileSettings
from tiles.grid import TileID, tiles_in
from twin.api import errors
from twin.api.tiles import tiles_router
from twin.catalogue import load_catalogue
from twin.settings import DEFAULT_LAYERS_DIR
from twin.store import GeoPackageStore, open_store

CITY = (121.10, 30.90, 121.80, 31.45)
CENTRE = (121.40, 31.15, 121.55, 31.30)  # central Shanghai: Huangpu, Jing'an, Xuhui, Lujiazui
CACHE = Path.home() / ".cache" / "twin"


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


def ensure_store(path: Path | None, n: int) -> GeoPackageStore:
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
    """A tile server under test: ``fetch`` returns the tile's MVT bytes and the bytes sent."""

    name = "peer"

    def start(self, store: GeoPackageStore) -> None: ...

    def fetch(self, layers: tuple[str, ...], tile: TileID) -> tuple[bytes, int]:
        raise NotImplementedError

    def mvt(self, payload: bytes) -> bytes:
        """The MVT bytes of what ``fetch`` returned (outside the timed part)."""
        return payload

    def clear(self) -> None:
        """Forget every cached tile (for the cold pass)."""

    def stop(self) -> None: ...


class TwinEngine(Peer):
    name = "twin (in-process)"

    def start(self, store: GeoPackageStore) -> None:
        self.store = store
        self.engine = TileEngine(store, TileSettings(memory_mb=1024, warm=False))

    def fetch(self, layers: tuple[str, ...], tile: TileID) -> tuple[bytes, int]:
        result = self.engine.tile(layers, tile)
        return result.gz, len(result.gz)

    def mvt(self, payload: bytes) -> bytes:
        return gzip.decompress(payload) if payload else b""

    def clear(self) -> None:
        self.engine.memory = type(self.engine.memory)(self.engine.memory.max_bytes)

    def stop(self) -> None:
        self.engine.close()


class TwinHttp(TwinEngine):
    name = "twin (HTTP, uvicorn)"

    def start(self, store: GeoPackageStore) -> None:
        super().start(store)
        app = FastAPI()
        errors.install(app)
        app.include_router(tiles_router(self.engine))
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        while not self.server.started:
            time.sleep(0.02)
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.sock.getsockname()[1]}", timeout=60,
                                   headers={"Accept-Encoding": "gzip"})

    def mvt(self, payload: bytes) -> bytes:
        return payload  # httpx has un-gzipped it

    def fetch(self, layers: tuple[str, ...], tile: TileID) -> tuple[bytes, int]:
        r = self.client.get(f"/tiles/{','.join(layers)}/{tile.z}/{tile.x}/{tile.y}.mvt")
        r.raise_for_status()
        return r.content, int(r.headers.get("content-length", len(r.content)))

    def stop(self) -> None:
        self.client.close()
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()
        super().stop()


PEERS: dict[str, Callable[[], Peer]] = {"twin": TwinEngine, "twin-http": TwinHttp}


def sample(zoom: int, k: int, seed: int = 0) -> list[TileID]:
    tiles = tiles_in(CENTRE, zoom)
    return random.Random(seed + zoom).sample(tiles, min(k, len(tiles)))


def timed(peer: Peer, layers: tuple[str, ...], tiles: list[TileID]) -> tuple[np.ndarray, np.ndarray, list[int],
                                                                             list[int]]:
    """Wall-clock and this thread's CPU milliseconds per tile (CPU time is steadier on a busy 2-core machine;
    it counts only in-process work), and bytes per tile."""
    ms, cpu, raw, sent = [], [], [], []
    for tile in tiles:
        t0, c0 = time.perf_counter(), time.thread_time()
        data, n = peer.fetch(layers, tile)
        ms.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.thread_time() - c0) * 1000)
        raw.append(len(peer.mvt(data)))
        sent.append(n)
    return np.array(ms), np.array(cpu), raw, sent


def run(peer: Peer, store: GeoPackageStore, layers: tuple[str, ...], zooms: list[int], k: int) -> None:
    t0 = time.perf_counter()
    peer.start(store)
    if isinstance(peer, TwinEngine):
        for layer in layers:
            peer.engine.refresh(layer)  # aggregates are built once per store, then kept up to date
    print(f"\n{peer.name}: layers {','.join(layers)}; ready in {time.perf_counter() - t0:,.1f} s")
    print(f"{'zoom':>4} {'tiles':>5} {'cold p50':>9} {'cold p95':>9} {'cold cpu':>9} {'warm p50':>9} "
          f"{'warm p95':>9} {'MVT p50':>9} {'MVT max':>9} {'gzip p50':>9}")
    for z in zooms:
        tiles = sample(z, k)
        peer.clear()
        cold, cpu, raw, sent = timed(peer, layers, tiles)
        warm, _, _, _ = timed(peer, layers, tiles)
        print(f"{z:>4} {len(tiles):>5} {np.percentile(cold, 50):>7.2f}ms {np.percentile(cold, 95):>7.2f}ms "
              f"{np.percentile(cpu, 50):>7.2f}ms {np.percentile(warm, 50):>7.3f}ms {np.percentile(warm, 95):>7.3f}ms "
              f"{np.median(raw) / 1000:>7.1f}KB {max(raw) / 1000:>7.1f}KB {np.median(sent) / 1000:>7.1f}KB")
    peer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, default=None, help="store to read (default: synthetic, cached)")
    parser.add_argument("--n", type=int, default=1_000_000, help="points in the synthetic store")
    parser.add_argument("--layers", default="street_light,hydrant", help="layer sets: ';' between sets")
    parser.add_argument("--zooms", default="10,12,14,16")
    parser.add_argument("--tiles", type=int, default=60, help="tiles sampled per zoom")
    parser.add_argument("--peers", default="twin", help=f"comma-separated, of: {', '.join(PEERS)}")
    args = parser.parse_args()
    store = ensure_store(args.store, args.n)
    print(f"store {store.path}: " + ", ".join(f"{layer} {store.count(layer):,}" for layer in store.catalogue
                                                if store.count(layer)))
    zooms = [int(z) for z in args.zooms.split(",")]
    for name in args.peers.split(","):
        for group in args.layers.split(";"):
            layers = tuple(group.split(","))
            for layer_set in ([(layer,) for layer in layers] + ([layers] if len(layers) > 1 else [])):
                run(PEERS[name](), store, layer_set, zooms, args.tiles)
    print(f"\npeak memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")
    store.close()


if __name__ == "__main__":
    main()
