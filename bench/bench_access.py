"""Benchmark area scope: the query and tile workloads as area-scoped users vs the same requests unscoped.

1,000 neighbourhood-committee users (``area_officer``, each scoped to one 居委 of the store) are defined in
the store's access database. Each request of a workload is made by one of them, at a place inside their
area; the unscoped run sends the very same paths as a ``planner`` (whole city, same masking). Both runs go
through the real HTTP service (uvicorn, one worker, as ``bench_api.py`` runs it), token checks included.
Target (issue 7): scoped no more than 20 % slower.

    python bench/bench_access.py [--store S.gpkg] [--areas 1000] [--requests 300] [--duration 5]

The default store is the full demo twin (``~/.cache/twin/bench/demo-full.gpkg``, 15 M components) when
present, else the small demo. Users and tokens are created once and cached (``bench/tokens.py``).
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import loadgen
import morecantile
import numpy as np
from bench_api import serve
from tokens import token_for, tokens_for

from twin.access import AreaResolver
from twin.catalogue import load_catalogue
from twin.geodesy import METRES_PER_DEGREE
from twin.model.query import FeatureQuery
from twin.settings import DEFAULT_LAYERS_DIR
from twin.store import open_store

BENCH = Path.home() / ".cache" / "twin" / "bench"
TILE_LAYERS = "street_light,hydrant"


@dataclass(frozen=True)
class Place:
    """One request's setting: the user (index), a point inside their area, and an in-area hydrant key."""

    user: int
    lon: float
    lat: float
    hydrant: str


def default_store() -> Path:
    full = BENCH / "demo-full.gpkg"
    return full if full.exists() else BENCH / "demo-small.gpkg"


def committees(store: Path, seed: int) -> list[str]:
    """Every committee key, in a random (seeded) order."""
    s = open_store(store, load_catalogue(DEFAULT_LAYERS_DIR), create=False)
    try:
        keys = sorted(s.features("committee")["key"])
    finally:
        s.close()
    rng = np.random.default_rng(seed)
    return [str(k) for k in rng.permutation(keys)]


def places(store: Path, areas: list[str], want: int, count: int, seed: int) -> tuple[list[str], list[Place]]:
    """The first ``want`` usable areas (with a hydrant inside) and ``count`` places among them."""
    catalogue = load_catalogue(DEFAULT_LAYERS_DIR)
    s = open_store(store, catalogue, create=False)
    resolver = AreaResolver(s, ("committee",))
    rng = np.random.default_rng(seed)
    usable: list[str] = []
    hydrants: list[list[tuple[str, float, float]]] = []
    try:
        with s.read(budget_s=30) as snap:
            for key in areas:
                area = resolver.get(key)
                rows = snap.select(FeatureQuery(layer="hydrant", scope=area, limit=50))
                if not rows.rows:
                    continue
                geoms = rows.geometries()
                hydrants.append([(r[1], float(p.x), float(p.y)) for r, p in zip(rows.rows, geoms, strict=True)])
                usable.append(key)
                if len(usable) == want:
                    break
    finally:
        resolver.close()
        s.close()
    out = []
    for _ in range(count):
        user = int(rng.integers(len(usable)))
        key, lon, lat = hydrants[user][int(rng.integers(len(hydrants[user])))]
        out.append(Place(user, lon, lat, key))
    return usable, out


def _box(p: Place, metres: float) -> str:
    dlat = metres / 2 / METRES_PER_DEGREE
    dlon = dlat / np.cos(np.radians(p.lat))
    return f"{p.lon - dlon:.6f},{p.lat - dlat:.6f},{p.lon + dlon:.6f},{p.lat + dlat:.6f}"


def workloads(ps: list[Place]) -> dict[str, list[str]]:
    """Request paths per workload, one per place (the same paths for both runs)."""
    grid = morecantile.tms.get("WebMercatorQuad")

    def tile(p: Place, z: int) -> str:
        t = grid.tile(p.lon, p.lat, z)
        return f"/tiles/{TILE_LAYERS}/{z}/{t.x}/{t.y}.mvt"

    return {
        "hydrant bbox 500 m": [f"/collections/hydrant/items?bbox={_box(p, 500)}&limit=1000" for p in ps],
        "street_light bbox 500 m": [f"/collections/street_light/items?bbox={_box(p, 500)}&limit=1000" for p in ps],
        "hydrant by key": [f"/collections/hydrant/items/{p.hydrant}" for p in ps],
        "hydrant nearest-5": [f"/collections/hydrant/nearest?point={p.lon:.6f},{p.lat:.6f}&k=5" for p in ps],
        "search near 200 m": [f"/search?near={p.lon:.6f},{p.lat:.6f}&radius=200&limit=1000" for p in ps],
        "tile z12 (aggregates)": [tile(p, 12) for p in ps],
        "tile z14": [tile(p, 14) for p in ps],
        "tile z16": [tile(p, 16) for p in ps],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", type=Path, default=None)
    ap.add_argument("--areas", type=int, default=1000, help="committee users defined (each scoped to one area)")
    ap.add_argument("--requests", type=int, default=300, help="requests per workload")
    ap.add_argument("--duration", type=float, default=5.0, help="seconds per timed wrk run")
    ap.add_argument("--concurrency", type=int, nargs="+", default=[8])
    ap.add_argument("--workloads", nargs="*", help="only these workloads (names as printed)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    store = (args.store or default_store()).resolve()
    t0 = time.perf_counter()
    areas, ps = places(store, committees(store, args.seed), args.areas, args.requests, args.seed)
    if len(areas) < args.areas:
        raise SystemExit(f"only {len(areas)} committees of {store.name} hold hydrants; ask for fewer --areas")
    users = [(f"bench-officer-{i:04d}", "area_officer", key) for i, key in enumerate(areas)]
    tokens = tokens_for(store, users)
    planner = token_for(store, "bench-planner", "planner")
    print(f"store {store.name}: {len(areas):,} committee users ready in {time.perf_counter() - t0:,.0f} s",
          flush=True)
    results: list[loadgen.Result] = []
    with serve(store, 1) as url:
        for name, paths in workloads(ps).items():
            if args.workloads and name not in args.workloads:
                continue
            # both runs send a token with each path, so the load generator does the same work for both
            scoped = [f"{path}\t{tokens[p.user]}" for path, p in zip(paths, ps, strict=True)]
            unscoped = [f"{path}\t{planner}" for path in paths]
            for label, entries in (("unscoped", unscoped), ("scoped", scoped)):
                r = loadgen.measure(label, name, url, entries, duration_s=args.duration,
                                    concurrency=tuple(args.concurrency))
                results.append(r)
                print(f"  {name:<24} {label:<9} p50 {r.p50_ms:7.2f} ms  p95 {r.p95_ms:7.2f}  c1 {r.rps[1]:7.0f}/s  "
                      + "  ".join(f"c{c} {r.rps[c]:7.0f}/s" for c in args.concurrency)
                      + f"  features {r.features_mean:8.1f}  status {r.probe.statuses}", flush=True)
    print("\n" + loadgen.table(results))
    print("\nscoped / unscoped: p50 ratio and throughput ratio per concurrency (≤ 1.20 p50 is the target)")
    for unscoped, scoped in zip(results[::2], results[1::2], strict=True):
        rps = "  ".join(f"c{c} {scoped.rps[c] / unscoped.rps[c]:.2f}" for c in sorted(unscoped.rps))
        print(f"  {unscoped.workload:<24} p50 {scoped.p50_ms / unscoped.p50_ms:5.2f}  throughput {rps}")
    print(f"peak memory of this process {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
