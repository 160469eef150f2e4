"""Build a small synthetic twin store for trying the peer harness end to end.

Street lights scattered over central Shanghai (denser towards People's Square, 3 % faulty) and
short pipelines, written through twin's own chunked store writer, so the GeoPackage is exactly
what twin serves. For the real comparative runs use the demo city (``twin demo``) once it exists.

    python bench/peers/make_store.py [--lights 200000] [--pipes 20000] [--out ~/.cache/twin/peers/small.gpkg]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

from twin.catalogue import load_catalogue
from twin.settings import DEFAULT_LAYERS_DIR
from twin.store import open_store

CENTRE = (121.4737, 31.2304)
SPREAD_DEG = (0.12, 0.10)  # standard deviation of the lights' scatter, about 11 km
STATUSES = ["in_service", "faulty", "under_repair"]
STATUS_P = [0.96, 0.03, 0.01]
CHUNK = 100_000


def street_lights(n: int, seed: int) -> gpd.GeoDataFrame:
    """``n`` street lights around the centre (Gaussian scatter), with the layer's attribute columns."""
    rng = np.random.default_rng(seed)
    x = rng.normal(CENTRE[0], SPREAD_DEG[0], n)
    y = rng.normal(CENTRE[1], SPREAD_DEG[1], n)
    return gpd.GeoDataFrame(
        {"lamp_type": rng.choice(["led", "sodium", "metal_halide"], n), "power": rng.choice([60, 100, 150], n),
         "pole_height": np.round(rng.uniform(6, 12, n), 1), "road": np.char.add("路", (np.arange(n) % 997).astype(str)),
         "circuit": np.char.add("C", rng.integers(0, 500, n).astype(str)),
         "status": rng.choice(STATUSES, n, p=STATUS_P)},
        geometry=shapely.points(np.round(x, 7), np.round(y, 7)), crs="EPSG:4326",
    )


def pipelines(n: int, seed: int) -> gpd.GeoDataFrame:
    """``n`` pipelines of 2-5 vertices and roughly 100-600 m each, around the same centre."""
    rng = np.random.default_rng(seed)
    starts = np.column_stack([rng.normal(CENTRE[0], SPREAD_DEG[0], n), rng.normal(CENTRE[1], SPREAD_DEG[1], n)])
    lines = []
    for start in starts:
        steps = rng.normal(0, 0.0015, (int(rng.integers(1, 5)), 2))
        lines.append(shapely.LineString(np.round(np.vstack([start, start + np.cumsum(steps, axis=0)]), 7)))
    return gpd.GeoDataFrame(
        {"kind": rng.choice(["water_supply", "drainage", "gas", "power", "telecom", "heat"], n),
         "diameter": rng.choice([100, 200, 300, 600], n), "material": rng.choice(["steel", "pe", "pvc"], n),
         "depth": np.round(rng.uniform(0.8, 4.0, n), 1), "status": rng.choice(STATUSES, n, p=STATUS_P)},
        geometry=lines, crs="EPSG:4326",
    )


def build(out: Path, lights: int, pipes: int) -> None:
    """Write a fresh store at ``out`` (any previous one is removed)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{out}{suffix}").unlink(missing_ok=True)
    store = open_store(out, load_catalogue(DEFAULT_LAYERS_DIR))
    try:
        with store.writer("street_light", author="bench", source="bench/peers/make_store.py") as w:
            for start in range(0, lights, CHUNK):
                w.add(street_lights(min(CHUNK, lights - start), seed=start))
        with store.writer("pipeline", author="bench", source="bench/peers/make_store.py") as w:
            w.add(pipelines(pipes, seed=7))
        print(f"{out}: {store.count('street_light'):,} street lights, {store.count('pipeline'):,} pipelines")
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lights", type=int, default=200_000)
    parser.add_argument("--pipes", type=int, default=20_000)
    parser.add_argument("--out", type=Path, default=Path.home() / ".cache" / "twin" / "peers" / "small.gpkg")
    args = parser.parse_args()
    build(args.out, args.lights, args.pipes)


if __name__ == "__main__":
    main()
