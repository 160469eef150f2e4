"""As-of reads over a long history (issue 14): a 500 m box of hydrants as of random past moments, on the 15 M twin
with at least 20 M stored changes.

    python bench/bench_as_of.py --store ~/.cache/twin/bench/demo-full.gpkg [--changes 20000000] [--requests 400]
        [--json FILE]

The history is built once and cached (``~/.cache/twin/bench/as-of-<store>.gpkg``, rebuilt only when it holds fewer
than ``--changes`` superseded versions): a copy of the store (SQLite's backup; the original is never written), then
rounds of status changes written through the store's own ``upsert``, as an import of a changed layer writes them:
street lights and hydrants in chunks of 250,000 components, each chunk a changeset at its own time, each superseded
version kept in the history with its R-tree entry. Then measured on it, one request at a time:

- in process (the query service, as a worker answers): a 500 m box as of a random moment between the first and the
  last change, and the same box read now;
- over HTTP (``twin serve`` with default settings, as a user starts it): the same two requests.

Printed: p50 / p95 of each, the history's size, and the ratio of an as-of read to a current one.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import machine
import numpy as np
from bench_status import save, serve
from tokens import token_for

from twin.catalogue import load_catalogue
from twin.geodesy import METRES_PER_DEGREE
from twin.model.query import BBox, FeatureQuery
from twin.query.search import QueryService
from twin.settings import DEFAULT_LAYERS_DIR
from twin.store import open_store

BENCH = Path.home() / ".cache" / "twin" / "bench"
CITY = (121.38, 31.15, 121.56, 31.32)
CHUNK = 250_000
LAYERS = ("street_light", "hydrant")


def history_rows(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return sum(int(conn.execute(f"SELECT count(*) FROM {layer}_history").fetchone()[0]) for layer in LAYERS)


def build(source: Path, changes: int) -> Path:
    """The cached store with at least ``changes`` superseded versions, built through the store's upsert."""
    target = BENCH / f"as-of-{source.stem}.gpkg"
    if target.exists() and history_rows(target) >= changes:
        return target
    for suffix in ("", "-wal", "-shm", ".access.db", ".lock"):
        Path(str(target) + suffix).unlink(missing_ok=True)
    started = time.perf_counter()
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    print(f"copied {source} in {time.perf_counter() - started:.0f} s", flush=True)
    store = open_store(target, load_catalogue(DEFAULT_LAYERS_DIR), create=False)
    rng = np.random.default_rng(7)
    written = history_rows(target)
    try:
        while written < changes:
            for layer in LAYERS:
                spec = store.catalogue[layer]
                with sqlite3.connect(target) as conn:
                    top = int(conn.execute(f"SELECT max(fid) FROM {layer}").fetchone()[0])
                for first in range(1, top + 1, CHUNK):
                    if written >= changes:
                        break
                    t = time.perf_counter()
                    frame = store.features(layer, fids=range(first, first + CHUNK))
                    now = frame.status.map({s: i for i, s in enumerate(spec.statuses)}).to_numpy()
                    step = rng.integers(1, len(spec.statuses), len(frame))  # always another status: a change
                    frame["status"] = np.array(spec.statuses)[(now + step) % len(spec.statuses)]
                    frame = frame[["key", "status", *spec.field_names, "geometry"]]
                    done = store.upsert(layer, frame, author="bench-as-of", source="bench_as_of.py")
                    written += len(frame)
                    print(f"  {layer} fids {first:,}+: changeset {done.id} in {time.perf_counter() - t:.1f} s; "
                          f"history {written:,}", flush=True)
    finally:
        store.close()
    print(f"history built in {time.perf_counter() - started:.0f} s: {history_rows(target):,} superseded versions",
          flush=True)
    return target


def moments(path: Path) -> tuple[str, str]:
    with sqlite3.connect(path) as conn:
        first, last = conn.execute("SELECT min(time), max(time) FROM twin_changesets WHERE author = 'bench-as-of'"
                                   ).fetchone()
    return str(first), str(last)


def boxes(n: int, seed: int) -> list[tuple[float, float, float, float]]:
    rng = np.random.default_rng(seed)
    half = 250 / METRES_PER_DEGREE
    out = []
    for _ in range(n):
        x, y = rng.uniform(CITY[0], CITY[2]), rng.uniform(CITY[1], CITY[3])
        out.append((x - half, y - half, x + half, y + half))
    return out


def instants(n: int, span: tuple[str, str], seed: int) -> list[str]:
    lo, hi = (datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp() for s in span)
    rng = np.random.default_rng(seed)
    return [datetime.fromtimestamp(t, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
            for t in rng.uniform(lo, hi, n)]


def pct(values: list[float]) -> dict[str, float]:
    ms = np.array(values) * 1000
    return {"p50_ms": round(float(np.percentile(ms, 50)), 2), "p95_ms": round(float(np.percentile(ms, 95)), 2)}


def in_process(path: Path, requests: int, span: tuple[str, str]) -> dict[str, object]:
    store = open_store(path, load_catalogue(DEFAULT_LAYERS_DIR), create=False)
    service = QueryService(store)
    past, now, returned = [], [], []
    try:
        for box, moment in zip(boxes(requests, 1), instants(requests, span, 2), strict=True):
            t = time.perf_counter()
            page = service.page(FeatureQuery("hydrant", bbox=BBox(*box), limit=1000, as_of=moment))
            past.append(time.perf_counter() - t)
            returned.append(len(page.rows.rows))
            t = time.perf_counter()
            service.page(FeatureQuery("hydrant", bbox=BBox(*box), limit=1000))
            now.append(time.perf_counter() - t)
    finally:
        store.close()
    return {"as_of": pct(past), "now": pct(now), "mean_returned": round(float(np.mean(returned)), 1)}


def over_http(path: Path, requests: int, span: tuple[str, str]) -> dict[str, object]:
    token = token_for(path, "bench-planner", "planner")
    proc, url = serve(path)
    past, now = [], []
    try:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
            for box, moment in zip(boxes(requests, 3), instants(requests, span, 4), strict=True):
                bbox = ",".join(f"{v:.7f}" for v in box)
                t = time.perf_counter()
                r = http.get("/collections/hydrant/items", params={"bbox": bbox, "limit": 1000, "as_of": moment})
                past.append(time.perf_counter() - t)
                r.raise_for_status()
                t = time.perf_counter()
                http.get("/collections/hydrant/items", params={"bbox": bbox, "limit": 1000}).raise_for_status()
                now.append(time.perf_counter() - t)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    return {"as_of": pct(past), "now": pct(now)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--store", type=Path, required=True)
    ap.add_argument("--changes", type=int, default=20_000_000)
    ap.add_argument("--requests", type=int, default=400)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    print(machine.describe(), flush=True)
    path = build(args.store, args.changes)
    span = moments(path)
    stored = history_rows(path)
    local = in_process(path, args.requests, span)
    http = over_http(path, args.requests, span)
    result = {"machine": machine.describe(), "history_rows": stored, "span": span, "in_process": local,
              "http": http, "requests": args.requests}
    print(f"history: {stored:,} superseded versions, changes from {span[0]} to {span[1]}")
    for name, figures in (("in process", local), ("over HTTP", http)):
        a, n = figures["as_of"], figures["now"]  # type: ignore[index]
        print(f"500 m box of hydrants {name}: as of a random moment p50 {a['p50_ms']} ms, p95 {a['p95_ms']} ms; "
              f"now p50 {n['p50_ms']} ms, p95 {n['p95_ms']} ms (as-of / now at p95: {a['p95_ms'] / n['p95_ms']:.2f})",
              flush=True)
    save(result, "as-of", args.json)


if __name__ == "__main__":
    sys.exit(main())
