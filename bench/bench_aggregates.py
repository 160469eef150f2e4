"""Low-zoom tile aggregates of a pipe network of millions of segments: a full build, then one small change.

A network is generated once and cached in ``~/.cache/twin/bench`` (a GeoPackage store, or a schema of a PostGIS
store given by ``--store``): roads on a jittered grid over Shanghai, each cut into segments of 20 to 80 m, with
six kinds of pipe, several laid along each road, so the cells hold overlapping lines as a real network does.
The build is what a server (or ``twin import``) does once for a store without aggregates; the change is 1,000 new
segments, applied incrementally.

    python bench/bench_aggregates.py --segments 3000000 [--store postgresql://...?schema=pipes3m]

It prints the build time, segments per second and the peak resident memory of this process.
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import geopandas as gpd
import machine
import numpy as np
import shapely

from tiles.aggregate import Aggregates
from twin.catalogue import load_catalogue
from twin.settings import DEFAULT_LAYERS_DIR
from twin.store import Store, exists, open_store

CACHE = Path.home() / ".cache" / "twin" / "bench"
CITY = (121.10, 30.90, 121.80, 31.45)
KINDS = np.array(["water_supply", "drainage", "gas", "power", "telecom", "heat"])


def network(n: int, seed: int, offset: int = 0) -> gpd.GeoDataFrame:
    """``n`` pipe segments (chunk ``offset`` of a network): along grid roads, 20-80 m long, a few per road."""
    rng = np.random.default_rng(seed + offset)
    along_x = rng.random(n) < 0.5
    road = rng.integers(0, 3000, n)  # 3,000 roads each way, about 23 m apart in the centre, jittered
    t = rng.random(n)
    lon = np.where(along_x, CITY[0] + t * (CITY[2] - CITY[0]), CITY[0] + road / 3000 * (CITY[2] - CITY[0]))
    lat = np.where(along_x, CITY[1] + road / 3000 * (CITY[3] - CITY[1]), CITY[1] + t * (CITY[3] - CITY[1]))
    lane = rng.integers(0, 4, n) * 2e-5  # several pipes side by side along a road
    lon, lat = lon + np.where(along_x, 0, lane), lat + np.where(along_x, lane, 0)
    length = rng.uniform(20, 80, n) / 111_000
    coords = np.stack([np.column_stack([lon, lat]),
                       np.column_stack([lon + np.where(along_x, length, 0), lat + np.where(along_x, 0, length)])],
                      axis=1)
    return gpd.GeoDataFrame({"kind": rng.choice(KINDS, n), "diameter": rng.choice([100, 300, 600], n)},
                            geometry=shapely.linestrings(coords), crs="EPSG:4326")


def ensure(target: str, n: int) -> None:
    """Write the network once (in chunks of one changeset), unless it is there."""
    if exists(target):
        return
    catalogue = load_catalogue(DEFAULT_LAYERS_DIR)
    start = time.perf_counter()
    with open_store(target, catalogue) as store, store.writer("pipeline", author="bench", source="network") as w:
        for offset in range(0, n, 200_000):
            w.add(network(min(200_000, n - offset), 7, offset))
    print(f"generated {n:,} segments into {target} in {time.perf_counter() - start:.0f} s")


def rebuild(store: Store, aggregates: Aggregates) -> float:
    """Throw the layer's aggregates away and build them again; the seconds it took."""
    with store.aggregate_writer("pipeline") as w:
        assert w is not None
        w.clear()
        w.set_state(0, "thrown away by the benchmark")
    start = time.perf_counter()
    aggregates.sync("pipeline")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--segments", type=int, default=3_000_000)
    parser.add_argument("--store", help="a PostGIS URL (default: a GeoPackage in ~/.cache/twin/bench)")
    args = parser.parse_args()
    print(machine.describe())
    target = args.store or str(CACHE / f"pipes-{args.segments}.gpkg")
    CACHE.mkdir(parents=True, exist_ok=True)
    ensure(target, args.segments)
    store = open_store(target, load_catalogue(DEFAULT_LAYERS_DIR), create=False)
    aggregates = Aggregates(store, budget_s=3600)
    built = rebuild(store, aggregates)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"build: {args.segments:,} segments in {built:.1f} s ({args.segments / built:,.0f} segments/s), "
          f"peak RSS {peak:.2f} GB, {machine.load()}")
    store.upsert("pipeline", network(1000, 99, 10**9), author="bench", source="change")
    start = time.perf_counter()
    aggregates.sync("pipeline")
    print(f"change of 1,000 segments applied in {time.perf_counter() - start:.2f} s")
    store.close()


if __name__ == "__main__":
    main()
