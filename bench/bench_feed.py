"""The change feed's fan-out (issue 14): many Server-Sent-Event streams, each bound to a different committee's area.

    python bench/bench_feed.py --store ~/.cache/twin/bench/demo-full.gpkg [--clients 1000] [--seconds 30]

The store is copied first (``bench_status.scratch_copy``) and served by ``twin serve`` with default settings. Each
client is an ``area_officer`` of its own committee (seeded choice) holding one ``/changes/stream``. A writer posts
a batch of status reports every second (hydrants of the watched committees, so that events reach their streams).
Measured: for every event a client receives, the time from the start of the POST that committed it to its arrival
(p50 / p99), and how many events reached a client whose committee does not hold the component (must be 0).
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import machine
import numpy as np
import orjson
import shapely
from bench_status import save, scratch_copy, serve
from tokens import token_for, tokens_for

from twin.store.gpkg.blob import decode


def committees(store: Path, n: int, seed: int) -> list[tuple[str, shapely.Geometry]]:
    with sqlite3.connect(store) as conn:
        rows = conn.execute("SELECT key, geom FROM committee ORDER BY key").fetchall()
    chosen = np.random.default_rng(seed).choice(len(rows), min(n, len(rows)), replace=False)
    geoms = decode([rows[i][1] for i in chosen])
    return [(rows[i][0], g) for i, g in zip(chosen, geoms, strict=True)]


def hydrants_in(store: Path, areas: list[tuple[str, shapely.Geometry]]) -> list[str]:
    """One hydrant inside each area that has one."""
    out = []
    with sqlite3.connect(store) as conn:
        for _, g in areas:
            x0, y0, x1, y1 = g.bounds
            for key, blob in conn.execute(
                    "SELECT h.key, h.geom FROM rtree_hydrant_geom r JOIN hydrant h ON h.fid = r.id "
                    "WHERE r.minx >= ? AND r.maxx <= ? AND r.miny >= ? AND r.maxy <= ? LIMIT 20", (x0, x1, y0, y1)):
                if g.contains(decode([blob])[0]):
                    out.append(key)
                    break
    return out


async def listen(url: str, token: str, area: shapely.Geometry, got: list[tuple[float, str, bool]],
                 ready: asyncio.Event, counter: list[int], total: int) -> None:
    async with httpx.AsyncClient(timeout=httpx.Timeout(30, read=None)) as http, http.stream(
            "GET", url + "/changes/stream", headers={"Authorization": f"Bearer {token}"}) as r:
        counter[0] += 1
        if counter[0] == total:
            ready.set()
        data = None
        async for line in r.aiter_lines():
            if line.startswith("data: "):
                data = orjson.loads(line[6:])
            elif line == "" and data is not None:
                inside = "feature" not in data or area.intersects(shapely.geometry.shape(data["feature"]["geometry"]))
                if not inside:
                    where = shapely.geometry.shape(data["feature"]["geometry"])
                    print(f"outside: {data['key']} at {where.wkt} is {area.distance(where) * 111_000:.3f} m from the "
                          f"area of this stream", flush=True)
                got.append((time.perf_counter(), data["key"], inside))
                data = None


async def run(url: str, tokens: list[str], areas: list[shapely.Geometry], writer: str, keys: list[str],
              seconds: float) -> tuple[list[tuple[float, str, bool]], dict[str, float]]:
    got: list[tuple[float, str, bool]] = []
    ready, counter = asyncio.Event(), [0]
    tasks = [asyncio.create_task(listen(url, t, a, got, ready, counter, len(tokens)))
             for t, a in zip(tokens, areas, strict=True)]
    await asyncio.wait_for(ready.wait(), 120)
    await asyncio.sleep(1)
    posted: dict[str, float] = {}
    rng = np.random.default_rng(5)
    statuses = ("in_service", "faulty", "under_repair")
    async with httpx.AsyncClient(base_url=url, timeout=120, headers={
            "Authorization": f"Bearer {writer}", "Content-Type": "application/x-ndjson"}) as http:
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            batch = list(rng.choice(keys, min(20, len(keys)), replace=False))
            now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            body = b"\n".join(orjson.dumps({"key": k, "status": statuses[rng.integers(3)], "observed_at": now})
                              for k in batch)
            t = time.perf_counter()
            r = await http.post("/status", content=body)
            r.raise_for_status()
            for k in batch:
                posted[k] = t
            await asyncio.sleep(max(0.0, 1.0 - (time.perf_counter() - t)))
    await asyncio.sleep(5)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return got, posted


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--store", type=Path, required=True)
    ap.add_argument("--clients", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    print(machine.describe(), flush=True)
    store = scratch_copy(args.store)
    areas = committees(store, args.clients, 0)
    keys = hydrants_in(store, areas)
    # users are named by their committee: a cached user is bound to the same area in every run
    tokens = tokens_for(store, [(f"bench-officer-{key}", "area_officer", key) for key, _ in areas])
    writer = token_for(store, "bench-sensors", "gis_editor")
    proc, url = serve(store)
    try:
        got, posted = asyncio.run(run(url, tokens, [g for _, g in areas], writer, keys, args.seconds))
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    # an event's latency: from the start of the last POST of its key before it arrived
    lat = [(at - posted[k]) * 1000 for at, k, _ in got if k in posted and at >= posted[k]]
    outside = sum(1 for _, _, inside in got if not inside)
    result = {"machine": machine.describe(), "clients": len(tokens), "events": len(got), "outside_area": outside,
              "p50_ms": float(np.percentile(lat, 50)) if lat else None,
              "p99_ms": float(np.percentile(lat, 99)) if lat else None, "hydrants_watched": len(keys)}
    print(f"{len(tokens)} streams, {len(got):,} events received, {outside} outside their area; commit to client "
          f"p50 {result['p50_ms']:.0f} ms, p99 {result['p99_ms']:.0f} ms", flush=True)
    save(result, "feed", args.json)


if __name__ == "__main__":
    main()
