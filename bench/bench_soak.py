"""Start ``twin serve`` as a user does and keep it busy: start-up, single-request latency and memory over time.

    python bench/bench_soak.py --store ~/.cache/twin/bench/demo-full.gpkg [--minutes 60] [--concurrency 8]
        [--drop-caches] [--json FILE]

The server is ``twin serve --store STORE`` with default settings (one worker per core, tile cache, aggregates
as stored); ``--drop-caches`` empties the kernel's page cache first (root only), so the store is read from disk
as after a reboot. Measured:

1. the time from launch to the first answer of ``/conformance`` and of each workload;
2. single-client latency (p50/p95 of ``--probe`` requests per workload, with httpx and again with wrk on the
   same requests) from 10 s after the first answer;
3. a mixed load for ``--minutes`` at ``--concurrency`` clients (every workload in turn, random places, every
   answer checked for 200), with the resident memory of the server's whole process tree sampled every 10 s;
4. the same single-client latency again at the end.

Workloads, on random places of central Shanghai with a fixed seed: hydrants in a 500 m box (limit 1000), street
lights in a 2 km box (limit 10 000), hydrants in a 500 m box with ``status = 'faulty'``, one hydrant by key,
nearest-5 hydrants, and street-light tiles at z10, z12, z14 and z16. Every request carries a planner's token.
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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import loadgen
import machine
import morecantile
import numpy as np
import psutil
from tokens import token_for

from twin.catalogue import load_catalogue
from twin.geodesy import METRES_PER_DEGREE
from twin.settings import DEFAULT_LAYERS_DIR
from twin.store import is_url, open_store

BENCH = Path.home() / ".cache" / "twin" / "bench"
CITY = (121.38, 31.15, 121.56, 31.32)  # central Shanghai, where components are densest
_TMS = morecantile.tms.get("WebMercatorQuad")


@dataclass(frozen=True)
class Workload:
    """A named request kind: a function from a random generator to a request path."""

    name: str
    path: Callable[[np.random.Generator], str]


def _box(rng: np.random.Generator, metres: float) -> str:
    lon, lat = rng.uniform(CITY[0], CITY[2]), rng.uniform(CITY[1], CITY[3])
    dlat = metres / 2 / METRES_PER_DEGREE
    dlon = dlat / np.cos(np.radians(lat))
    return f"{lon - dlon:.6f},{lat - dlat:.6f},{lon + dlon:.6f},{lat + dlat:.6f}"


def _tile(rng: np.random.Generator, z: int) -> str:
    t = _TMS.tile(rng.uniform(CITY[0], CITY[2]), rng.uniform(CITY[1], CITY[3]), z)
    return f"/collections/street_light/tiles/WebMercatorQuad/{z}/{t.y}/{t.x}"


def workloads(keys: list[str]) -> list[Workload]:
    return [
        Workload("hydrants 500 m box", lambda r: f"/collections/hydrant/items?bbox={_box(r, 500)}&limit=1000"),
        Workload("street lights 2 km box",
                 lambda r: f"/collections/street_light/items?bbox={_box(r, 2000)}&limit=10000"),
        Workload("500 m box + status", lambda r: f"/collections/hydrant/items?bbox={_box(r, 500)}&limit=1000"
                                                 "&filter=status%3D%27faulty%27"),
        Workload("hydrant by key", lambda r: f"/collections/hydrant/items/{keys[int(r.integers(len(keys)))]}"),
        Workload("nearest-5", lambda r: "/collections/hydrant/nearest?point="
                                        f"{r.uniform(CITY[0], CITY[2]):.6f},{r.uniform(CITY[1], CITY[3]):.6f}&k=5"),
        *(Workload(f"street-light tile z{z}", lambda r, z=z: _tile(r, z)) for z in (10, 12, 14, 16)),
    ]


def sample_keys(store: str, n: int = 2000) -> list[str]:
    """Keys of hydrants in central Shanghai, read from the store before the server starts."""
    opened = open_store(store, load_catalogue(DEFAULT_LAYERS_DIR), create=False)
    try:
        frame = opened.features("hydrant", bbox=CITY, limit=n)
    finally:
        opened.close()
    return list(frame.key)


def tree_memory_mb(pid: int) -> dict[str, float]:
    """Resident memory of a process and its descendants (MB): all of it, private (anonymous) and file-backed
    (the memory-mapped store: pages of the page cache, shared between workers and reclaimable)."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return {"rss": 0.0, "anon": 0.0, "file": 0.0}
    total = {"rss": 0.0, "anon": 0.0, "file": 0.0}
    for p in procs:
        try:
            status = Path(f"/proc/{p.pid}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        for name, field in (("rss", "VmRSS"), ("anon", "RssAnon"), ("file", "RssFile")):
            total[name] += int(fields.get(field, "0 kB").split()[0]) / 1024
    return {k: round(v) for k, v in total.items()}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def probe(client: httpx.Client, loads: list[Workload], requests: int, seed: int,
          headers: dict[str, str]) -> dict[str, dict[str, float]]:
    """One client, one request at a time: p50/p95 per workload (ms), measured twice: with httpx, each answer
    checked (the time includes the Python client's own work, ~0.5 ms a request), and with wrk cycling through
    the same requests for 5 s (a C client: the server's latency)."""
    out = {}
    for w in loads:
        rng = np.random.default_rng(seed)
        times, paths = [], []
        for _ in range(requests):
            paths.append(path := w.path(rng))
            t0 = time.perf_counter()
            r = client.get(path)
            times.append((time.perf_counter() - t0) * 1000)
            if r.status_code != 200:
                raise RuntimeError(f"{path} -> {r.status_code}: {r.text[:200]}")
        single = loadgen.wrk(str(client.base_url).rstrip("/"), paths, 1, 5, headers=headers)
        if single["errors"] or single["status_errors"]:
            raise RuntimeError(f"{w.name}: wrk saw {single['errors']} errors, {single['status_errors']} bad statuses")
        out[w.name] = {"p50_ms": round(float(np.percentile(times, 50)), 2),
                       "p95_ms": round(float(np.percentile(times, 95)), 2),
                       "wrk_p50_ms": round(single["p50_us"] / 1000, 2), "wrk_p95_ms": round(single["p95_us"] / 1000, 2)}
        o = out[w.name]
        print(f"  {w.name:24s} httpx p50 {o['p50_ms']:7.2f} ms  p95 {o['p95_ms']:7.2f} ms   wrk p50 "
              f"{o['wrk_p50_ms']:7.2f} ms  p95 {o['wrk_p95_ms']:7.2f} ms", flush=True)
    return out


async def soak(url: str, headers: dict[str, str], loads: list[Workload], seconds: float, concurrency: int,
               pid: int) -> dict[str, object]:
    """Mixed load for ``seconds``; the server tree's RSS every 10 s; counts and errors per workload."""
    rng = np.random.default_rng(11)
    done = {w.name: 0 for w in loads}
    errors: list[str] = []
    rss: list[tuple[float, float, float]] = []
    end = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def client_loop(client: httpx.AsyncClient, offset: int) -> None:
        i = offset
        while time.monotonic() < end:
            w = loads[i % len(loads)]
            i += 1
            r = await client.get(w.path(rng))
            done[w.name] += 1
            if r.status_code != 200 and len(errors) < 20:
                errors.append(f"{r.request.url.path} -> {r.status_code}")

    async def sampler() -> None:
        start = time.monotonic()
        while time.monotonic() < end:
            mem = tree_memory_mb(pid)
            rss.append((round(time.monotonic() - start), mem["rss"], mem["anon"]))
            print(f"  {rss[-1][0]:5d} s  server RSS {mem['rss']:,.0f} MB (private {mem['anon']:,.0f} MB)  "
                  f"requests {sum(done.values()):,}", flush=True)
            await asyncio.sleep(min(10.0, max(0.0, end - time.monotonic())))
        mem = tree_memory_mb(pid)
        rss.append((round(time.monotonic() - start), mem["rss"], mem["anon"]))

    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=120, limits=limits) as client:
        await asyncio.gather(sampler(), *(client_loop(client, k) for k in range(concurrency)))
    total = sum(done.values())
    return {"seconds": seconds, "concurrency": concurrency, "requests": total, "requests_per_s": round(total / seconds),
            "per_workload": done, "errors": errors, "rss_mb": rss,
            "rss_max_mb": max(m for _, m, _ in rss), "private_max_mb": max(a for _, _, a in rss),
            "rss_end_mb": rss[-1][1]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", required=True, help="a GeoPackage file or a postgresql:// URL")
    ap.add_argument("--minutes", type=float, default=60)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--probe", type=int, default=100, help="single-client requests per workload")
    ap.add_argument("--drop-caches", action="store_true", help="empty the kernel's page cache first (root)")
    ap.add_argument("--json", type=Path, help=f"default: {BENCH}/soak-<date>.json")
    args = ap.parse_args()
    store = args.store if is_url(args.store) else str(Path(args.store).expanduser().resolve())
    keys = sample_keys(store)
    headers = {"Authorization": f"Bearer {token_for(store, 'bench-planner', 'planner')}"}
    loads = workloads(keys)
    print(machine.describe(), flush=True)
    if args.drop_caches:
        subprocess.run(["sync"], check=True)
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    port = _free_port()
    twin = Path(sys.executable).with_name("twin")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWIN_")}
    t0 = time.monotonic()
    proc = subprocess.Popen([str(twin), "serve", "--store", store, "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    result: dict[str, object] = {"machine": machine.describe(), "store": store, "workers": os.cpu_count()}
    try:
        with httpx.Client(base_url=url, headers=headers, timeout=600) as client:
            while True:
                try:
                    if client.get("/conformance").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.05)
                if proc.poll() is not None:
                    raise RuntimeError(f"twin serve exited with {proc.returncode}")
            result["first_answer_s"] = round(time.monotonic() - t0, 2)
            first = {}
            for w in loads:  # the first answer of each kind, in turn, as a user's first clicks
                t1 = time.monotonic()
                r = client.get(w.path(np.random.default_rng(1)))
                r.raise_for_status()
                first[w.name] = round((time.monotonic() - t1) * 1000, 1)
            result["first_request_ms"] = first
            print(f"first answer {result['first_answer_s']} s after launch; first requests (ms): {first}", flush=True)
            time.sleep(max(0.0, t0 + result["first_answer_s"] + 10 - time.monotonic()))
            result["memory_start_mb"] = tree_memory_mb(proc.pid)
            result["rss_start_mb"] = result["memory_start_mb"]["rss"]
            print(f"from 10 s after start (server RSS {result['rss_start_mb']:,} MB):", flush=True)
            result["probe_start"] = probe(client, loads, args.probe, seed=3, headers=headers)
            print(f"mixed load, {args.concurrency} clients, {args.minutes:g} min:", flush=True)
            result["soak"] = asyncio.run(soak(url, headers, loads, args.minutes * 60, args.concurrency, proc.pid))
            print("after the load:", flush=True)
            result["probe_end"] = probe(client, loads, args.probe, seed=5, headers=headers)
            result["memory_after_mb"] = tree_memory_mb(proc.pid)
            result["rss_after_mb"] = result["memory_after_mb"]["rss"]
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    soaked = result["soak"]
    assert isinstance(soaked, dict)
    print(f"memory of the server (all processes, MB): at start {result['memory_start_mb']}, max RSS "
          f"{soaked['rss_max_mb']:,.0f} (private {soaked['private_max_mb']:,.0f}), after {args.minutes:g} min "
          f"{result['memory_after_mb']}; "
          f"{soaked['requests_per_s']} requests/s, {len(soaked['errors'])} errors")
    out = args.json or BENCH / f"soak-{time.strftime('%Y%m%d-%H%M')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, ensure_ascii=False), encoding="utf-8")
    print(f"written {out}")
    if soaked["errors"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
