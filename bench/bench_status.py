"""Status reports at city rate (issue 14): how many reports/s ``POST /status`` keeps while the map stays responsive.

    python bench/bench_status.py --store ~/.cache/twin/bench/demo-full.gpkg [--seconds 60] [--batch 10000]
        [--json FILE]

The store is copied first (SQLite's backup into ``~/.cache/twin/bench/status-scratch.gpkg``, so the original is
never written), then served by ``twin serve`` with default settings (one worker per core). A writer streams NDJSON
batches of ``--batch`` reports (random hydrants, random statuses and pressures, each observed a moment after the
last) for ``--seconds``; beside it one reader asks for hydrants in random 500 m boxes, one request at a time. Printed:
reports kept per second (every report is checked as kept: ``kept`` summed over the answers equals what was sent,
and the store's ``twin_reports`` count is read afterwards), and the reader's p50 / p95 during the load.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import machine
import numpy as np
import orjson
from tokens import token_for

from twin.geodesy import METRES_PER_DEGREE

BENCH = Path.home() / ".cache" / "twin" / "bench"
CITY = (121.38, 31.15, 121.56, 31.32)
STATUSES = ("in_service", "faulty", "under_repair")


def save(result: dict[str, object], name: str, path: Path | None) -> None:
    """Write a run's figures as JSON to ``path``, or to ``~/.cache/twin/bench/NAME-<date>.json``."""
    out = path or BENCH / f"{name}-{datetime.now():%Y%m%d-%H%M}.json"
    out.write_text(json.dumps(result, indent=2), encoding="utf-8")


def scratch_copy(source: Path) -> Path:
    target = BENCH / "status-scratch.gpkg"
    for suffix in ("", "-wal", "-shm"):
        Path(str(target) + suffix).unlink(missing_ok=True)
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    return target


def hydrant_keys(store: Path, n: int, seed: int) -> list[str]:
    with sqlite3.connect(store) as conn:
        top = conn.execute("SELECT max(fid) FROM hydrant").fetchone()[0]
        fids = np.random.default_rng(seed).integers(1, top + 1, n * 2)
        rows = conn.execute("SELECT key FROM hydrant WHERE fid IN (SELECT value FROM json_each(?))",
                            (json.dumps(fids.tolist()),)).fetchall()
    return [r[0] for r in rows][:n]


def serve(store: Path) -> tuple[subprocess.Popen[bytes], str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWIN_")}  # default settings, as a user starts it
    proc = subprocess.Popen([str(Path(sys.executable).with_name("twin")), "serve", "--store", str(store), "--port",
                             str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(url + "/conformance", timeout=2).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit("twin serve did not answer within 60 s")


def reader(url: str, token: str, stop: threading.Event, out: list[float]) -> None:
    rng = np.random.default_rng(1)
    half = 250 / METRES_PER_DEGREE
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
        while not stop.is_set():
            x, y = rng.uniform(CITY[0], CITY[2]), rng.uniform(CITY[1], CITY[3])
            t = time.perf_counter()
            r = http.get("/collections/hydrant/items", params={"bbox": f"{x - half},{y - half},{x + half},{y + half}",
                                                               "limit": 1000})
            out.append(time.perf_counter() - t)
            r.raise_for_status()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--store", type=Path, required=True)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--batch", type=int, default=10_000)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    print(machine.describe(), flush=True)
    t = time.perf_counter()
    store = scratch_copy(args.store)
    print(f"scratch copy in {time.perf_counter() - t:.1f} s", flush=True)
    keys = hydrant_keys(store, 200_000, 0)
    writer_token = token_for(store, "bench-sensors", "gis_editor")
    planner_token = token_for(store, "bench-planner", "planner")
    proc, url = serve(store)
    rng = np.random.default_rng(2)
    clock = datetime.now(UTC) - timedelta(minutes=30)
    stop, latencies = threading.Event(), []
    watcher = threading.Thread(target=reader, args=(url, planner_token, stop, latencies))
    sent = kept = 0
    started = time.perf_counter()
    try:
        watcher.start()
        with httpx.Client(base_url=url, timeout=600, headers={"Authorization": f"Bearer {writer_token}",
                                                              "Content-Type": "application/x-ndjson"}) as http:
            while time.perf_counter() - started < args.seconds:
                lines = []
                for key in rng.choice(keys, args.batch, replace=False):
                    clock += timedelta(milliseconds=1)
                    lines.append(orjson.dumps({"key": key, "status": STATUSES[rng.integers(3)],
                                               "values": {"pressure": round(float(rng.uniform(0.05, 0.6)), 3)},
                                               "observed_at": clock.isoformat(timespec="milliseconds")}))
                r = http.post("/status", content=b"\n".join(lines))
                if r.status_code != 200:
                    raise SystemExit(f"POST /status answered {r.status_code}: {r.text[:500]}")
                sent += len(lines)
                kept += r.json()["kept"]
        elapsed = time.perf_counter() - started
    finally:
        stop.set()
        watcher.join()
        proc.terminate()
        proc.wait(timeout=60)
    with sqlite3.connect(store) as conn:
        stored = conn.execute("SELECT count(*) FROM twin_reports").fetchone()[0]
    lat = np.array(latencies) * 1000
    result = {"machine": machine.describe(), "store": str(args.store), "sent": sent, "kept": kept, "stored": stored,
              "seconds": elapsed, "reports_per_s": kept / elapsed, "batch": args.batch,
              "box_p50_ms": float(np.percentile(lat, 50)), "box_p95_ms": float(np.percentile(lat, 95)),
              "box_requests": len(lat)}
    print(f"{kept:,} of {sent:,} reports kept in {elapsed:.1f} s: {kept / elapsed:,.0f} reports/s "
          f"(twin_reports holds {stored:,}); 500 m box during the load: p50 {result['box_p50_ms']:.1f} ms, "
          f"p95 {result['box_p95_ms']:.1f} ms over {len(lat):,} requests", flush=True)
    save(result, "status", args.json)


if __name__ == "__main__":
    main()
