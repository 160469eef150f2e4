"""Benchmark the query API: latency percentiles (one client) and throughput (8 and 32 concurrent clients).

Usage::

    python bench/bench_api.py --components 1000000            # synthetic store, cached in ~/.cache/twin
    python bench/bench_api.py --store city.gpkg --workers 2   # an existing store
    python bench/bench_api.py --url http://127.0.0.1:5000     # a server that is already running (a peer)

Workloads (random centres inside the data, fixed seed so every server gets the same requests):
500 m bbox limit 1000, 2 km bbox limit 10000, feature by id, bbox + attribute filter, nearest-5.
A peer with other URL conventions gets its own ``Workload`` list: each is a name and a function from a
random generator to a path.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import httpx
import numpy as np
import shapely
from tokens import token_for

from twin.catalogue import load_catalogue
from twin.geodesy import METRES_PER_DEGREE
from twin.settings import DEFAULT_LAYERS_DIR
from twin.store import open_store

CACHE = Path.home() / ".cache" / "twin"
CITY = (121.30, 31.10, 121.65, 31.40)  # central Shanghai, where components are densest
CHUNK = 200_000


@dataclass(frozen=True)
class Workload:
    """A named request kind: a function from a random generator to a request path."""

    name: str
    path: Callable[[np.random.Generator], str]


def _box(rng: np.random.Generator, metres: float) -> str:
    lon = rng.uniform(CITY[0] + 0.02, CITY[2] - 0.02)
    lat = rng.uniform(CITY[1] + 0.02, CITY[3] - 0.02)
    dlat = metres / 2 / METRES_PER_DEGREE
    dlon = dlat / np.cos(np.radians(lat))
    return f"{lon - dlon:.6f},{lat - dlat:.6f},{lon + dlon:.6f},{lat + dlat:.6f}"


def twin_workloads(keys: list[str]) -> list[Workload]:
    """The five workloads against twin's URLs."""
    return [
        Workload("bbox 500 m, limit 1000", lambda r: f"/collections/hydrant/items?bbox={_box(r, 500)}&limit=1000"),
        Workload("bbox 2 km, limit 10000", lambda r: f"/collections/hydrant/items?bbox={_box(r, 2000)}&limit=10000"),
        Workload("feature by id", lambda r: f"/collections/hydrant/items/{keys[int(r.integers(len(keys)))]}"),
        Workload("bbox 500 m + filter", lambda r: f"/collections/hydrant/items?bbox={_box(r, 500)}&limit=1000"
                                                  "&filter=kind%3D%27underground%27%20AND%20outlet_diameter%3E65"),
        Workload("nearest-5", lambda r: "/collections/hydrant/nearest?point="
                                        f"{r.uniform(CITY[0], CITY[2]):.6f},{r.uniform(CITY[1], CITY[3]):.6f}&k=5"),
    ]


def synthetic_store(components: int) -> Path:
    """A store of ``components`` hydrants spread over central Shanghai, built once and cached."""
    path = CACHE / f"bench-hydrants-{components}.gpkg"
    if path.exists():
        return path
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".partial.gpkg")
    tmp.unlink(missing_ok=True)
    store = open_store(tmp, load_catalogue(DEFAULT_LAYERS_DIR))
    rng = np.random.default_rng(42)
    for start in range(0, components, CHUNK):
        n = min(CHUNK, components - start)
        pts = shapely.points(rng.uniform(CITY[0], CITY[2], n), rng.uniform(CITY[1], CITY[3], n))
        frame = gpd.GeoDataFrame({"kind": rng.choice(["above_ground", "underground"], n),
                                  "outlet_diameter": rng.choice([65, 100, 150], n),
                                  "pressure": np.round(rng.random(n) * 0.6, 3)}, geometry=pts, crs="EPSG:4326")
        store.upsert("hydrant", frame, author="bench", source="synthetic")
        print(f"  generated {start + n:,} / {components:,}", file=sys.stderr)
    store.close()
    tmp.rename(path)
    return path


@contextmanager
def serve(store: Path, workers: int, env: dict[str, str] | None = None) -> Iterator[str]:
    """Run ``twin serve``'s app with uvicorn in a child process (``env`` added to its environment); yields
    its URL once the hydrant nearest-k index is warm."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    env = {**os.environ, "TWIN_STORE": str(store), "TWIN_LAYERS": str(DEFAULT_LAYERS_DIR), **(env or {})}
    cmd = [sys.executable, "-m", "uvicorn", "twin.api.app:create_app", "--factory", "--port", str(port),
           "--workers", str(workers), "--log-level", "warning", "--no-access-log"]
    proc = subprocess.Popen(cmd, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(1200):
            try:
                if httpx.get(url + "/conformance", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        # warm every layer's nearest-k index before measuring
        httpx.get(url + "/collections/hydrant/nearest?point=121.47,31.23&k=1", timeout=600,
                  headers=auth_headers(store))
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def server_memory_mb(url: str) -> dict[str, float]:
    """Resident memory of the process listening on ``url``'s port (Linux): private (anon) and file-backed.

    File-backed pages are the memory-mapped store, shared with the page cache and reclaimable.
    """
    port = int(url.rsplit(":", 1)[1])
    try:
        out = subprocess.run(["ss", "-ltnp", f"sport = :{port}"], capture_output=True, text=True, check=True).stdout
        pid = int(out.split("pid=")[1].split(",")[0])
        fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    except (OSError, IndexError, ValueError, subprocess.CalledProcessError):
        return {}
    return {k: int(fields[k].split()[0]) / 1024 for k in ("VmRSS", "RssAnon", "RssFile") if k in fields}


def auth_headers(store: Path) -> dict[str, str]:
    """The benchmark reads as a planner (every layer, personal fields masked), like most API clients."""
    return {"Authorization": f"Bearer {token_for(store, 'bench-planner', 'planner')}"}


def _latencies(client: httpx.Client, paths: list[str]) -> list[float]:
    """One client, one request at a time (a plain blocking client adds the least overhead)."""
    out = []
    for p in paths:
        t0 = time.perf_counter()
        r = client.get(p)
        out.append(time.perf_counter() - t0)
        if r.status_code != 200:
            raise RuntimeError(f"{p} -> {r.status_code}: {r.text[:200]}")
    return out


async def _throughput(client: httpx.AsyncClient, paths: list[str], concurrency: int) -> float:
    queue = iter(paths)

    async def worker() -> None:
        for p in queue:
            (await client.get(p)).raise_for_status()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return len(paths) / (time.perf_counter() - t0)


async def _throughputs(url: str, paths: list[str], headers: dict[str, str]) -> dict[str, float]:
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits, headers=headers) as client:
        return {f"rps_c{c}": await _throughput(client, paths, c) for c in (8, 32)}


def run(url: str, workloads: list[Workload], requests: int, headers: dict[str, str]) -> list[dict[str, object]]:
    results = []
    with httpx.Client(base_url=url, timeout=120, headers=headers) as client:
        for w in workloads:
            rng = np.random.default_rng(7)
            paths = [w.path(rng) for _ in range(requests)]
            _latencies(client, paths[:10])  # warm-up
            lat = np.array(_latencies(client, paths)) * 1000
            row: dict[str, object] = {"workload": w.name, "p50_ms": float(np.percentile(lat, 50)),
                                      "p95_ms": float(np.percentile(lat, 95)), "p99_ms": float(np.percentile(lat, 99))}
            row.update(asyncio.run(_throughputs(url, paths, headers)))
            results.append(row)
            print(f"{w.name:26s} p50 {row['p50_ms']:7.2f} ms  p95 {row['p95_ms']:7.2f}  p99 {row['p99_ms']:7.2f}"
                  f"  c8 {row['rps_c8']:7.0f} req/s  c32 {row['rps_c32']:7.0f} req/s", flush=True)
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", type=Path, help="existing store to serve")
    ap.add_argument("--components", type=int, default=1_000_000, help="size of the synthetic store")
    ap.add_argument("--url", help="benchmark a server already running at this URL instead")
    ap.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    ap.add_argument("--requests", type=int, default=300, help="requests per workload and measurement")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()
    store = args.store or synthetic_store(args.components)
    keys = [str(k) for k in open_store(store, load_catalogue(DEFAULT_LAYERS_DIR), create=False)
            .features("hydrant", limit=5000)["key"]]
    with nullcontext(args.url) if args.url else serve(store, args.workers) as url:
        results = run(url, twin_workloads(keys), args.requests, auth_headers(store))
        memory = server_memory_mb(url)
    summary = {"server": "twin", "store": str(store), "workers": args.workers, "memory_mb": memory,
               "results": results}
    print("server memory (MB): " + (", ".join(f"{k} {v:.0f}" for k, v in memory.items()) or "unknown"))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
