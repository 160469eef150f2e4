"""A small load generator for comparing HTTP servers on the same seeded request lists (loopback only).

For one list of request paths against one base URL it measures:

- a probe pass with httpx (keep-alive): status, bytes and the number of features in every response
  (GeoJSON ``features``, a single ``Feature``, or the features of all layers of a Mapbox vector tile),
  so counts can be compared request by request across systems;
- latency percentiles (p50/p95/p99) with a single keep-alive client, and requests/second at each
  concurrency, with ``wrk`` (Debian package; C, so it takes little of the 2 cores from the servers),
  cycling through the list for a fixed duration.

On 2 cores the load generator shares the CPUs with the server: compare throughput as a ratio between
servers measured in the same run, not as an absolute figure.

A path may carry its own bearer token after a tab (``PATH\tTOKEN``), for workloads where every request is
made by another user; ``headers`` go with every request.

    python bench/loadgen.py http://127.0.0.1:8000 paths.txt [--duration 5] [--concurrency 8 32]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import mapbox_vector_tile
import orjson

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
MARKER = "LOADGEN "
#: wrk script: cycle through the paths file (each thread from its own offset); print a JSON summary.
WRK_SCRIPT = r"""
local paths, i = {}, 0
local n_threads = 0
function setup(thread)
  thread:set("tid", n_threads)
  n_threads = n_threads + 1
end
function init(args)
  for line in io.lines(args[1]) do paths[#paths + 1] = line end
  i = (tid or 0) * 7919 % #paths
end
function request()
  i = i % #paths + 1
  local path, token = paths[i]:match("^([^\t]*)\t(.*)$")
  if token then return wrk.format("GET", path, {["Authorization"] = "Bearer " .. token}) end
  return wrk.format("GET", paths[i])
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '%s{"requests":%d,"duration_us":%d,"bytes":%d,"errors":%d,"status_errors":%d,' ..
    '"p50_us":%d,"p95_us":%d,"p99_us":%d,"mean_us":%.1f}\n',
    "LOADGEN ", summary.requests, summary.duration, summary.bytes, e.connect + e.read + e.write + e.timeout,
    e.status, latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.mean))
end
"""


@dataclass
class Probe:
    """What one pass over the paths returned: per-request feature counts, statuses and sizes."""

    counts: list[int]
    statuses: dict[int, int]  # HTTP status → requests
    bytes_mean: float


@dataclass
class Result:
    """One server on one workload."""

    server: str
    workload: str
    urls: int
    probe: Probe
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    p99_ms: float = 0.0
    rps: dict[int, float] = field(default_factory=dict)  # concurrency → requests/s (1 = the latency run)
    errors: int = 0  # socket errors and non-2xx/3xx answers during the timed runs

    @property
    def features_mean(self) -> float:
        return sum(self.probe.counts) / max(len(self.probe.counts), 1)


def check_loopback(base: str) -> None:
    """Refuse any target but this machine."""
    host = urlsplit(base).hostname
    if host not in LOOPBACK:
        raise ValueError(f"loadgen only talks to 127.0.0.1, not {host!r} ({base})")


def feature_count(response: httpx.Response) -> int:
    """Features in a GeoJSON or MVT response (0 for anything else or a failed request)."""
    if response.status_code != 200:
        return 0
    kind = response.headers.get("content-type", "")
    if "vector-tile" in kind or "protobuf" in kind or "mvt" in kind:
        return sum(len(layer["features"]) for layer in mapbox_vector_tile.decode(response.content).values())
    if "json" not in kind:
        return 0
    doc = orjson.loads(response.content)
    if isinstance(doc, dict) and isinstance(doc.get("features"), list):
        return len(doc["features"])
    return int(isinstance(doc, dict) and doc.get("type") == "Feature")


def split(entry: str) -> tuple[str, dict[str, str]]:
    """A path and the headers of its own token (``PATH\tTOKEN``), if it has one."""
    path, _, token = entry.partition("\t")
    return path, ({"Authorization": f"Bearer {token}"} if token else {})


def probe(base: str, paths: list[str], timeout_s: float = 60, headers: dict[str, str] | None = None) -> Probe:
    """Fetch every path once over one keep-alive connection (also warms the server's caches)."""
    check_loopback(base)
    counts, statuses, size = [], Counter[int](), 0
    with httpx.Client(base_url=base, timeout=timeout_s,
                      headers={"Accept-Encoding": "identity", **(headers or {})}) as client:
        for entry in paths:
            path, own = split(entry)
            response = client.get(path, headers=own)
            statuses[response.status_code] += 1
            size += len(response.content)
            counts.append(feature_count(response))
    return Probe(counts, dict(statuses), size / max(len(paths), 1))


def wrk(base: str, paths: list[str], concurrency: int, duration_s: float, timeout_s: float = 30,
        headers: dict[str, str] | None = None) -> dict[str, float]:
    """One closed-loop wrk run cycling through ``paths``; its JSON summary."""
    check_loopback(base)
    exe = shutil.which("wrk")
    if exe is None:
        raise SystemExit("wrk is not installed: run bench/peers/setup.sh (or apt-get install wrk)")
    with tempfile.TemporaryDirectory() as tmp:
        script, listing = Path(tmp) / "cycle.lua", Path(tmp) / "paths.txt"
        script.write_text(WRK_SCRIPT, encoding="utf-8")
        listing.write_text("\n".join(paths) + "\n", encoding="utf-8")
        argv = [exe, "-t1", f"-c{concurrency}", f"-d{max(1, round(duration_s))}s", f"--timeout={timeout_s:.0f}s",
                *(a for k, v in (headers or {}).items() for a in ("-H", f"{k}: {v}")),
                "-s", str(script), base, "--", str(listing)]
        out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    line = next((s for s in out.splitlines() if s.startswith(MARKER)), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary:\n{out}")
    return json.loads(line.removeprefix(MARKER))


def measure(server: str, workload: str, base: str, paths: list[str], *, duration_s: float = 5,
            concurrency: tuple[int, ...] = (8, 32), headers: dict[str, str] | None = None) -> Result:
    """Probe, then the single-client latency run, then one throughput run per concurrency."""
    result = Result(server, workload, len(paths), probe(base, paths, headers=headers))
    single = wrk(base, paths, 1, duration_s, headers=headers)
    result.p50_ms, result.p95_ms, result.p99_ms = (single[f"p{p}_us"] / 1000 for p in (50, 95, 99))
    result.rps[1] = single["requests"] / (single["duration_us"] / 1e6)
    result.errors = int(single["errors"] + single["status_errors"])
    for c in concurrency:
        run = wrk(base, paths, c, duration_s, headers=headers)
        result.rps[c] = run["requests"] / (run["duration_us"] / 1e6)
        result.errors += int(run["errors"] + run["status_errors"])
    return result


def table(results: list[Result]) -> str:
    """A plain-text table, one row per server and workload."""
    conc = sorted({c for r in results for c in r.rps if c != 1})
    head = (f"{'workload':<22} {'server':<16} {'urls':>5} {'feat/req':>9} {'KB/req':>7} {'p50 ms':>8} {'p95 ms':>8} "
            f"{'p99 ms':>8} {'rps c1':>8} " + " ".join(f"{f'rps c{c}':>9}" for c in conc) + f" {'errors':>6}  status")
    rows = [head, "-" * len(head)]
    for r in results:
        statuses = ",".join(f"{k}:{v}" for k, v in sorted(r.probe.statuses.items()))
        rows.append(f"{r.workload:<22} {r.server:<16} {r.urls:>5} {r.features_mean:>9.1f} "
                    f"{r.probe.bytes_mean / 1024:>7.1f} {r.p50_ms:>8.2f} {r.p95_ms:>8.2f} {r.p99_ms:>8.2f} "
                    f"{r.rps.get(1, 0):>8.0f} " + " ".join(f"{r.rps.get(c, 0):>9.0f}" for c in conc)
                    + f" {r.errors:>6}  {statuses}")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", help="base URL on 127.0.0.1, e.g. http://127.0.0.1:8000")
    parser.add_argument("paths", type=Path, help="file with one request path per line")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per timed run")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[8, 32])
    args = parser.parse_args()
    paths = [p for p in args.paths.read_text(encoding="utf-8").splitlines() if p.strip()]
    result = measure(args.base, args.paths.name, args.base, paths, duration_s=args.duration,
                     concurrency=tuple(args.concurrency))
    print(table([result]))


if __name__ == "__main__":
    main()
