"""City vital signs at city scale (issue 15): how long the indicators take to follow a change, and how fast an
indicator's values for every area of a level are read as of a past instant.

    python bench/bench_vitals.py --store ~/.cache/twin/bench/demo-full.gpkg [--edits 20] [--batches 5]
        [--requests 300] [--json FILE]

The store and its access database (where the kept sums live) are copied first (SQLite's backup, into
``~/.cache/twin/bench/vitals-scratch.gpkg``; the original is never written). Then, with every indicator of
``indicators/`` (79 in the repository):

- **build**: the sums of every indicator kept from the whole history, as ``twin demo`` and ``twin vitals sync`` do
  (skipped when the copy already holds them: timed on an empty access database with ``--rebuild``);
- **after a change**: one component edited (a hydrant, a street light or a pipeline changes status), then the
  indicators of its layer brought up to date (what a server's follower does after the changeset) and every one of
  them read at all three levels: the time from the commit to the last value read; the same for a batch of 10,000
  status reports on random hydrants (one changeset, as ``POST /status`` writes at city rate);
- **as of**: over HTTP (``twin serve`` with default settings, as a user starts it), a random indicator at a random
  level as of a random instant between the copy's first change and its last: ``/indicators/{id}?level=&as_of=``,
  every area of the level in one answer (16, ~215 or ~6,000); and the same in process.

Printed: p50 / p95 / max of each.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import machine
import numpy as np
from bench_status import save, serve
from tokens import token_for

from twin.catalogue import load_catalogue
from twin.model.reports import Report
from twin.settings import DEFAULT_INDICATORS_DIR, DEFAULT_LAYERS_DIR
from twin.store import open_store
from twin.vitals.service import VitalSigns
from twin.vitals.spec import LEVELS, load_indicators

BENCH = Path.home() / ".cache" / "twin" / "bench"
EDITED = ("hydrant", "street_light", "pipeline")


def copy(source: Path, rebuild: bool, name: str = "vitals-scratch") -> Path:
    """The scratch copy of the store and of its access database (unless ``rebuild``: then the sums start empty)."""
    target = BENCH / f"{name}.gpkg"
    for suffix in ("", "-wal", "-shm", ".lock"):
        Path(str(target) + suffix).unlink(missing_ok=True)
    access = target.with_name(target.stem + ".access.db")
    access.unlink(missing_ok=True)
    pairs = [(source, target)]
    source_access = source.with_name(source.stem + ".access.db")
    if source_access.exists() and not rebuild:
        pairs.append((source_access, access))
    for a, b in pairs:
        with sqlite3.connect(a) as src, sqlite3.connect(b) as dst:
            src.backup(dst)
    return target


def pct(values: list[float]) -> dict[str, float]:
    ms = np.array(values) * 1000
    return {"p50_ms": round(float(np.percentile(ms, 50)), 1), "p95_ms": round(float(np.percentile(ms, 95)), 1),
            "max_ms": round(float(ms.max()), 1), "n": len(values)}


def read_all(vitals: VitalSigns, layer: str) -> int:
    """Every indicator of ``layer`` at each of its levels; how many area values were read."""
    read = 0
    for ind in vitals.indicators.of_layer(layer):
        for level in ind.spec.levels:
            read += len(vitals.read(ind, level).areas)
    return read


def follow(path: Path, edits: int, batches: int) -> dict[str, object]:
    catalogue = load_catalogue(DEFAULT_LAYERS_DIR)
    store = open_store(path, catalogue, create=False)
    vitals = VitalSigns(store, load_indicators(DEFAULT_INDICATORS_DIR, catalogue), store.access(), follow=False)
    rng = np.random.default_rng(7)
    out: dict[str, object] = {"indicators": len(vitals.indicators)}
    try:
        started = time.perf_counter()
        vitals.sync()
        out["build_s"] = round(time.perf_counter() - started, 1)
        print(f"kept sums up to date in {out['build_s']} s", flush=True)
        single, values = [], 0
        for i in range(edits):
            layer = EDITED[i % len(EDITED)]
            count = store.count(layer)
            frame = store.features(layer, offset=int(rng.integers(0, count)), limit=1)
            status = "faulty" if frame.status.iloc[0] != "faulty" else "in_service"
            store.edit(str(frame.key.iloc[0]), author="bench", properties={"status": status})
            t = time.perf_counter()
            vitals.keeper.sync(layer)
            values = read_all(vitals, layer)
            single.append(time.perf_counter() - t)
        out["after_edit"] = pct(single)
        print(f"one edit -> every indicator of its layer at 3 levels ({values:,} area values): {out['after_edit']}",
              flush=True)
        batch, keys = [], store.features("hydrant", limit=200_000).key.tolist()
        when = datetime.now(UTC)
        for _ in range(batches):
            picked = rng.choice(len(keys), 10_000, replace=False)
            when += timedelta(seconds=1)
            reports = [Report(n + 1, keys[j], str(rng.choice(["in_service", "faulty", "under_repair"])),
                              {}, when.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "bench") for n, j in enumerate(picked)]
            store.report("hydrant", reports, author="bench")
            t = time.perf_counter()
            vitals.keeper.sync("hydrant")
            read_all(vitals, "hydrant")
            batch.append(time.perf_counter() - t)
        out["after_batch_10000"] = pct(batch)
        print(f"10,000 status reports -> every hydrant indicator at 3 levels: {out['after_batch_10000']}", flush=True)
    finally:
        vitals.close()
        store.close()
    return out


def span(path: Path) -> tuple[str, str]:
    with sqlite3.connect(path) as conn:
        first, last = conn.execute("SELECT min(time), max(time) FROM twin_changesets").fetchone()
    return str(first), str(last)


def instants(n: int, bounds: tuple[str, str], seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    a, b = (datetime.strptime(t, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp() for t in bounds)
    return [datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            for t in rng.uniform(a, b, n)]


def as_of(path: Path, requests: int) -> dict[str, object]:
    catalogue = load_catalogue(DEFAULT_LAYERS_DIR)
    indicators = load_indicators(DEFAULT_INDICATORS_DIR, catalogue)
    rng = np.random.default_rng(11)
    asks = [(str(rng.choice(list(indicators))), None, moment) for moment in instants(requests, span(path), 12)]
    asks = [(i, str(rng.choice(indicators[i].spec.levels)), m) for i, _, m in asks]
    out: dict[str, object] = {}
    store = open_store(path, catalogue, create=False)
    vitals = VitalSigns(store, indicators, store.access(), follow=False)
    local: dict[str, list[float]] = {lv: [] for lv in LEVELS}
    try:
        for ind, level, moment in asks:
            t = time.perf_counter()
            with store.read() as snap:
                changeset = snap.log_at(moment.removesuffix("Z") + "999Z")
            vitals.read(indicators[ind], level, changeset)
            local[level].append(time.perf_counter() - t)
    finally:
        vitals.close()
        store.close()
    out["in_process"] = {lv: pct(v) for lv, v in local.items() if v}
    token = token_for(path, "bench-planner", "planner")
    proc, url = serve(path)
    http: dict[str, list[float]] = {lv: [] for lv in LEVELS}
    areas = 0
    try:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=120) as client:
            client.get(f"/indicators/{asks[0][0]}").raise_for_status()  # the first answer of a fresh server
            for ind, level, moment in asks:
                t = time.perf_counter()
                r = client.get(f"/indicators/{ind}", params={"level": level, "as_of": moment})
                http[level].append(time.perf_counter() - t)
                r.raise_for_status()
                areas = max(areas, r.json()["numberReturned"])
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    out["http"] = {lv: pct(v) for lv, v in http.items() if v}
    out["http_all"] = pct([x for v in http.values() for x in v])
    out["most_areas"] = areas
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--store", type=Path, required=True)
    ap.add_argument("--edits", type=int, default=21)
    ap.add_argument("--batches", type=int, default=5)
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--rebuild", action="store_true", help="time the build of every indicator from empty sums")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    print(machine.describe(), flush=True)
    path = copy(args.store, args.rebuild)
    result: dict[str, object] = {"machine": machine.describe(), "store": str(args.store)}
    result["follow"] = follow(path, args.edits, args.batches)
    result["as_of"] = as_of(path, args.requests)
    for where in ("in_process", "http"):
        for level, figures in result["as_of"][where].items():  # type: ignore[index]
            print(f"as of a random instant, every {level} of a random indicator, {where}: {figures}", flush=True)
    print(f"over HTTP, all levels: {result['as_of']['http_all']}", flush=True)  # type: ignore[index]
    save(result, "vitals", args.json)


if __name__ == "__main__":
    sys.exit(main())
