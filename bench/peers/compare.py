"""Run the shared workloads against the peers (and optionally a running twin) and print one table.

With twin's venv (it has httpx, numpy, twin), after ``setup.sh`` and ``load.sh STORE.gpkg`` or with
``--store STORE.gpkg`` (which runs them as needed):

    python bench/peers/compare.py [--store S.gpkg] [--layers street_light pipeline] [--n 200] [--duration 5]
                                  [--pygeoapi ogr sqlite] [--twin http://127.0.0.1:8000] [--json out.json]

Servers are measured one after another (only the one measured is running, apart from an external
twin), each on the same seeded requests, so the per-request feature counts can be compared: the
``count≠`` column says how many requests returned a different number of features than the first
server that answered the same workload.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/: loadgen and the peers package

import loadgen
from tokens import token_for

from peers.servers import loaded_store, prepare, running_peers
from peers.urls import PeerUrls, TwinUrls
from peers.workloads import Seeds, build, draw_seeds


def run_server(urls: PeerUrls, all_seeds: list[Seeds], args: argparse.Namespace,
               headers: dict[str, str] | None = None) -> list[loadgen.Result]:
    """Every workload of every layer against one server (``headers`` with every request)."""
    out = []
    for seeds in all_seeds:
        for work in build(urls, seeds, box_m=args.box, limit=args.limit):
            if work.name.split()[0] not in args.workloads:
                continue
            print(f"  {urls.name}: {seeds.layer} {work.name} ({len(work.paths)} requests)", file=sys.stderr)
            out.append(loadgen.measure(urls.name, f"{seeds.layer} {work.name}", work.base, work.paths,
                                       duration_s=args.duration, concurrency=tuple(args.concurrency),
                                       headers=headers))
    return out


def mismatches(results: list[loadgen.Result]) -> dict[tuple[str, str], int]:
    """Per (server, workload): requests whose feature count differs from the first server's."""
    first: dict[str, list[int]] = {}
    out = {}
    for r in results:
        reference = first.setdefault(r.workload, r.probe.counts)
        out[(r.server, r.workload)] = sum(a != b for a, b in zip(reference, r.probe.counts, strict=True))
    return out


def report(results: list[loadgen.Result]) -> str:
    """The loadgen table sorted by workload, with the count-mismatch column added."""
    results = sorted(results, key=lambda r: r.workload)
    diff = mismatches(results)
    lines = loadgen.table(results).splitlines()
    lines[0] += "  count≠"
    lines[1] += "-" * 8
    for i, r in enumerate(results):
        lines[i + 2] += f"  {diff[(r.server, r.workload)]}/{r.urls}"
    if results:
        lines.append(f"count≠: requests whose feature count differs from the first server's ({results[0].server})")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, help="set up and load this store first (default: the loaded one)")
    parser.add_argument("--layers", nargs="+", default=["street_light", "pipeline"])
    parser.add_argument("--n", type=int, default=200, help="seeded requests per workload")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=1000, help="limit= of the bbox and filter workloads")
    parser.add_argument("--box", type=float, default=1000, help="side of the bbox workload's box, metres")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per timed run")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--workloads", nargs="+", default=["bbox", "by_id", "filter", "tile"])
    parser.add_argument("--pygeoapi", nargs="*", default=["ogr"], choices=["ogr", "sqlite"],
                        help="pygeoapi providers to measure, one after the other")
    parser.add_argument("--no-tipg", action="store_true")
    parser.add_argument("--twin", help="base URL of a twin already serving the same store on 127.0.0.1")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if args.store:
        prepare(args.store, with_sqlite="sqlite" in args.pygeoapi)
    store = loaded_store()
    print(f"store {store}; seeds: {args.n} per layer, seed {args.seed}", file=sys.stderr)
    all_seeds = [draw_seeds(store, layer, args.n, args.seed) for layer in args.layers]
    results: list[loadgen.Result] = []
    if args.twin:
        # twin serves nothing anonymously: it reads as a planner (every layer, personal fields masked)
        token = token_for(store, "bench-planner", "planner")
        results += run_server(TwinUrls(args.twin), all_seeds, args, {"Authorization": f"Bearer {token}"})
    if not args.no_tipg:
        with running_peers(("tipg",)) as peers:
            results += run_server(peers["tipg"], all_seeds, args)
    for provider in args.pygeoapi:
        with running_peers(("pygeoapi",), pygeoapi_provider=provider) as peers:
            results += run_server(peers["pygeoapi"], all_seeds, args)
    print(report(results))
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
