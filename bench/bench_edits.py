"""Conditional edits over HTTP (issue 14): the time of a ``PATCH`` with ``If-Match`` on a big twin.

    python bench/bench_edits.py --store ~/.cache/twin/bench/demo-full.gpkg [--edits 300] [--json FILE]

The store is copied first (``bench_status.scratch_copy``: the original is never written) and served by ``twin serve``
with default settings. For ``--edits`` random hydrants, one client reads the item (its ``ETag``) and then sends a
merge-patch of its status with ``If-Match``; only the ``PATCH`` is timed (client to answer, httpx). Every answer must
be 200 with a new ``ETag``. Printed: p50 / p95 / p99 of the ``PATCH``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import httpx
import machine
import numpy as np
import orjson
from bench_status import STATUSES, hydrant_keys, save, scratch_copy, serve
from tokens import token_for


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--store", type=Path, required=True)
    ap.add_argument("--edits", type=int, default=300)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    print(machine.describe(), flush=True)
    store = scratch_copy(args.store)
    keys = hydrant_keys(store, args.edits, 3)
    token = token_for(store, "bench-editor", "gis_editor")
    proc, url = serve(store)
    rng = np.random.default_rng(4)
    times = []
    try:
        with httpx.Client(base_url=url, timeout=60, headers={"Authorization": f"Bearer {token}"}) as http:
            for key in keys:
                path = f"/collections/hydrant/items/{key}"
                tag = http.get(path).headers["ETag"]
                body = orjson.dumps({"status": STATUSES[rng.integers(3)], "road": f"测试路{rng.integers(1000)}号"})
                t = time.perf_counter()
                r = http.patch(path, content=body, headers={"If-Match": tag,
                                                            "Content-Type": "application/merge-patch+json"})
                times.append(time.perf_counter() - t)
                if r.status_code != 200 or r.headers.get("ETag") == tag:
                    raise SystemExit(f"PATCH {key} answered {r.status_code}: {r.text[:300]}")
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    ms = np.array(times) * 1000
    result = {"machine": machine.describe(), "store": str(args.store), "edits": len(ms),
              "p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95)),
              "p99_ms": float(np.percentile(ms, 99))}
    print(f"{len(ms)} conditional PATCHes: p50 {result['p50_ms']:.2f} ms, p95 {result['p95_ms']:.2f} ms, "
          f"p99 {result['p99_ms']:.2f} ms", flush=True)
    save(result, "edits", args.json)


if __name__ == "__main__":
    main()
