"""From a status change to the map showing it (issue 14): the path the live map takes, timed on the 15 M twin.

    python bench/bench_tile_refresh.py --store ~/.cache/twin/bench/demo-full.gpkg [--changes 200] [--json FILE]

The store is copied first (``bench_status.scratch_copy``) and served by ``twin serve`` with default settings. A
planner holds one ``/changes/stream``, as ``/map`` does. For each of ``--changes`` random hydrants, one at a time:
its z16 tile and a z16 tile two columns away are fetched (as a map already showing them holds them, with their
ETags); a status report changing the hydrant is posted; when the stream delivers the change, the hydrant's tile is
fetched again (``If-None-Match``), and again every 10 ms until it shows the new status. Measured: the time from the
start of the POST to the tile showing the change (p50 / p95 / p99), and whether only the changed tile changed (the
tile two columns away must answer 304 to its old ETag, served from the worker's cache: ``Twin-Tile-Source`` is not
``drawn``).
"""

from __future__ import annotations

import argparse
import gzip
import math
import queue
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import machine
import mapbox_vector_tile
import numpy as np
import orjson
from bench_status import hydrant_keys, save, scratch_copy, serve
from tokens import token_for

Z = 16
STATUSES = ("in_service", "faulty", "under_repair", "retired")


def tile_of(lon: float, lat: float, z: int = Z) -> tuple[int, int]:
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def statuses(gz: bytes) -> dict[str, str]:
    if not gz:
        return {}
    raw = gzip.decompress(gz) if gz[:2] == b"\x1f\x8b" else gz
    layer = mapbox_vector_tile.decode(raw).get("hydrant", {"features": []})
    return {f["properties"]["key"]: f["properties"]["status"] for f in layer["features"]}


def listen(url: str, token: str, events: queue.Queue[tuple[float, str]], ready: threading.Event,
           stop: threading.Event) -> None:
    with httpx.Client(timeout=httpx.Timeout(30, read=None)) as http, http.stream(
            "GET", url + "/changes/stream", headers={"Authorization": f"Bearer {token}"}) as r:
        ready.set()
        for line in r.iter_lines():
            if stop.is_set():
                return
            if line.startswith("data: "):
                data = orjson.loads(line[6:])
                if "key" in data:
                    events.put((time.perf_counter(), str(data["key"])))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--store", type=Path, required=True)
    ap.add_argument("--changes", type=int, default=200)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    print(machine.describe(), flush=True)
    store = scratch_copy(args.store)
    keys = hydrant_keys(store, args.changes, 11)
    planner, writer = token_for(store, "bench-planner", "planner"), token_for(store, "bench-sensors", "gis_editor")
    proc, url = serve(store)
    events: queue.Queue[tuple[float, str]] = queue.Queue()
    ready, stop = threading.Event(), threading.Event()
    follower = threading.Thread(target=listen, args=(url, planner, events, ready, stop), daemon=True)
    follower.start()
    ready.wait(60)
    shown, delivered, polls, others_changed = [], [], [], 0
    rng = np.random.default_rng(12)
    try:
        with httpx.Client(base_url=url, timeout=60, headers={"Authorization": f"Bearer {planner}"}) as reader, \
                httpx.Client(base_url=url, timeout=60, headers={"Authorization": f"Bearer {writer}",
                                                                "Content-Type": "application/json"}) as sensors:
            for key in keys:
                item = reader.get(f"/collections/hydrant/items/{key}").json()
                lon, lat = item["geometry"]["coordinates"]
                x, y = tile_of(lon, lat)
                here, away = f"/tiles/hydrant/{Z}/{x}/{y}.mvt", f"/tiles/hydrant/{Z}/{x + 2}/{y}.mvt"
                held = reader.get(here)
                far = reader.get(away)
                was = statuses(held.content).get(key)
                new = STATUSES[(STATUSES.index(was) + 1 + int(rng.integers(3))) % 4] if was else "faulty"
                now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
                t0 = time.perf_counter()
                r = sensors.post("/status", content=orjson.dumps([{"key": key, "status": new, "observed_at": now}]))
                r.raise_for_status()
                while True:  # the map waits for the stream to tell it
                    at, changed = events.get(timeout=30)
                    if changed == key:
                        break
                delivered.append(at - t0)
                n = 0
                while True:
                    n += 1
                    tile = reader.get(here, headers={"If-None-Match": held.headers["ETag"]})
                    if tile.status_code == 200 and statuses(tile.content).get(key) == new:
                        break
                    time.sleep(0.01)
                shown.append(time.perf_counter() - t0)
                polls.append(n)
                again = reader.get(away, headers={"If-None-Match": far.headers["ETag"]})
                others_changed += again.status_code != 304 or again.headers["Twin-Tile-Source"] == "drawn"
    finally:
        stop.set()
        proc.terminate()
        proc.wait(timeout=60)
    ms, ev = np.array(shown) * 1000, np.array(delivered) * 1000
    result = {"machine": machine.describe(), "changes": len(shown),
              "shown_ms": {p: round(float(np.percentile(ms, q)), 1) for p, q in (("p50", 50), ("p95", 95),
                                                                                  ("p99", 99))},
              "event_ms": {p: round(float(np.percentile(ev, q)), 1) for p, q in (("p50", 50), ("p99", 99))},
              "tile_fetches_until_shown_max": int(max(polls)), "other_tiles_changed": others_changed}
    print(f"{len(shown)} status changes: from the POST to the tile showing it p50 {result['shown_ms']['p50']} ms, "
          f"p95 {result['shown_ms']['p95']} ms, p99 {result['shown_ms']['p99']} ms (stream event p50 "
          f"{result['event_ms']['p50']} ms); tile fetches until shown at most {max(polls)}; tiles two columns away "
          f"changed: {others_changed} of {len(shown)}", flush=True)
    save(result, "tile-refresh", args.json)


if __name__ == "__main__":
    main()
