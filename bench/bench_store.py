"""Benchmark the store: write and read N point components (default 1 million).

Prints write throughput (through the chunked, history-keeping writer), read throughput
(full scan, 500 m bbox, key look-up), live-index build and nearest-5 times, and peak memory.

    python bench/bench_store.py [--n 1000000] [--chunk 100000] [--out ~/.cache/twin/bench_store.gpkg]
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

from twin.catalogue import load_catalogue
from twin.geodesy import degree_box
from twin.settings import DEFAULT_LAYERS_DIR
from twin.store import open_store

SHANGHAI = (121.10, 30.90, 121.80, 31.45)


def points(n: int, seed: int) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(seed)
    x = SHANGHAI[0] + rng.random(n) * (SHANGHAI[2] - SHANGHAI[0])
    y = SHANGHAI[1] + rng.random(n) * (SHANGHAI[3] - SHANGHAI[1])
    return gpd.GeoDataFrame(
        {"lamp_type": rng.choice(["led", "sodium", "metal_halide"], n), "power": rng.choice([60, 100, 150], n),
         "road": [f"路{i % 997}" for i in range(n)],
         "status": rng.choice(["in_service", "faulty"], n, p=[0.97, 0.03])},
        geometry=shapely.points(x, y), crs="EPSG:4326",
    )


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(label: str, fn, count: int) -> float:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    fn()
    dt = time.perf_counter() - t0
    print(f"{label:<38} {dt:8.2f} s  {count / dt:12,.0f} /s   peak {peak_mb():,.0f} MB")
    return dt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--chunk", type=int, default=100_000)
    parser.add_argument("--out", type=Path, default=Path.home() / ".cache" / "twin" / "bench_store.gpkg")
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{args.out}{suffix}").unlink(missing_ok=True)
    store = open_store(args.out, load_catalogue(DEFAULT_LAYERS_DIR))
    n, chunk = args.n, args.chunk
    print(f"store benchmark: {n:,} street lights, chunks of {chunk:,}, {args.out}")

    def write() -> None:
        with store.writer("street_light", author="bench", source="bench") as w:
            for i in range(0, n, chunk):
                w.add(points(min(chunk, n - i), seed=i))

    timed("write (insert, new keys)", write, n)

    def rewrite() -> None:
        with store.writer("street_light", author="bench", source="bench") as w:
            for i in range(0, n, chunk):
                frame = points(min(chunk, n - i), seed=i)
                frame.loc[frame.index % 10 == 0, "power"] = 200  # 10 % changed
                w.add(frame)

    timed("re-import (90 % unchanged, 10 % update)", rewrite, n)
    assert store.count("street_light") == n
    timed("read all (GeoDataFrame)", lambda: store.features("street_light"), n)
    rng = np.random.default_rng(1)
    centres = np.column_stack([rng.uniform(121.3, 121.6, 1000), rng.uniform(31.1, 31.35, 1000)])
    hits = []
    timed("500 m bbox reads (x1000)",
          lambda: hits.extend(len(store.features("street_light", bbox=degree_box(x, y, 250))) for x, y in centres),
          1000)
    print(f"  mean features per 500 m bbox: {np.mean(hits):.0f}")
    sample = store.features("street_light", limit=1000, offset=n // 2).key.tolist()
    timed("get by key (x1000)", lambda: [store.get(k) for k in sample], 1000)
    timed("live index build", lambda: store.warm("street_light"), n)

    def nearest() -> None:
        with store.read() as snap:
            for x, y in centres:
                snap.nearest("street_light", x, y, 5)

    timed("nearest-5 (x1000)", nearest, 1000)
    print(f"file size {args.out.stat().st_size / 2**20:,.0f} MiB; peak memory {peak_mb():,.0f} MB")


if __name__ == "__main__":
    main()
