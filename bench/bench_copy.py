"""Benchmark loading twin into PostGIS (issue 13: at least 80,000 components/s for the full 15 M demo twin).

    python bench/bench_copy.py --gpkg ~/.cache/twin/bench/demo-full.gpkg \\
        --postgis postgresql://postgres@127.0.0.1:55432/twin [--demo small|full|none] [--keep] [--json FILE]

Both parts run commands as a user does (child processes, timed with ``os.wait4`` for their peak memory):

- ``twin store copy GPKG 'postgresql://…?schema=bench_copy'`` into a fresh schema: the load and index phase
  (components/s: the source's components over the time to "copied and indexed", as the command reports it; rows/s:
  every row it wrote, history, changesets and tile aggregates included) and its verification, separately;
- ``twin demo --scale S`` into a GeoPackage and into a fresh PostGIS schema (``bench_demo``), one after the other
  in the same run, each with a fresh folder for the demo's files.

The schemas are dropped at the end unless ``--keep``; the script only ever drops schemas whose name starts with
``bench_`` (a schema of another name is refused, never replaced).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import machine

from twin.catalogue import load_catalogue
from twin.settings import DEFAULT_LAYERS_DIR
from twin.store import exists, open_store, remove
from twin.store.postgis.connect import parse_url

BENCH = Path.home() / ".cache" / "twin" / "bench"
PREFIX = "bench_"
#: The last line of ``twin store copy``: "copied and indexed in X s (Y rows/s; indexes Z s), verified in W s".
COPIED = re.compile(r"copied and indexed in ([\d,.]+) s \(([\d,.]+) rows/s; indexes ([\d,.]+) s\), "
                    r"verified in ([\d,.]+) s")
IDENTICAL = re.compile(r"identical: ([\d,]+) rows")


@dataclass
class Run:
    """One command: wall seconds, peak resident memory of the child and what it printed."""

    wall_s: float
    peak_mb: float
    output: str


def number(text: str) -> float:
    return float(text.replace(",", ""))


def with_schema(url: str, schema: str) -> str:
    """``url`` naming ``schema`` (any ``schema=`` it had replaced)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "schema"]
    return urlunsplit(parts._replace(query=urlencode([*query, ("schema", schema)])))


def fresh(url: str, schema: str) -> str:
    """The URL of ``schema``, emptied first if an earlier run of this script left it (never another schema)."""
    if not re.fullmatch(PREFIX + r"[a-z0-9_]+", schema):
        raise SystemExit(f"schema {schema!r}: this script only writes (and drops) schemas named {PREFIX}[a-z0-9_]+")
    target = with_schema(url, schema)
    if exists(target):
        remove(target)
    return target


def twin(*args: str) -> Run:
    """``twin ARGS`` in a child process, as a user runs it; exits the benchmark if it fails."""
    cmd = [sys.executable, "-c", "from twin.cli import main; main()", *args]
    with tempfile.TemporaryFile("w+", encoding="utf-8") as log:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "COLUMNS": "200"})
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        log.seek(0)
        output = log.read()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"twin {' '.join(args)} failed:\n{output[-3000:]}")
    return Run(wall, usage.ru_maxrss / 1024, output)


def components(target: str | Path) -> int:
    """Components of every layer of a store."""
    with open_store(target, load_catalogue(DEFAULT_LAYERS_DIR), create=False) as store:
        return sum(store.count(layer) for layer in store.catalogue)


def schema_size_mb(url: str, schema: str) -> float:
    """Tables, indexes and TOAST of ``schema``, in MiB (``psql``)."""
    sql = ("SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c JOIN pg_namespace n "
           f"ON n.oid = c.relnamespace WHERE n.nspname = '{schema}' AND c.relkind = 'r'")
    out = subprocess.run(["psql", "-XAtc", sql, parse_url(url).conninfo], capture_output=True, text=True, check=True)
    return float(out.stdout.strip()) / 2**20


def copy(gpkg: Path, url: str, schema: str) -> dict[str, object]:
    """``twin store copy`` into a fresh schema, its phases as the command reports them."""
    target = fresh(url, schema)
    n = components(gpkg)
    run = twin("store", "copy", str(gpkg), target)
    copied, rows = COPIED.search(run.output), IDENTICAL.search(run.output)
    if copied is None or rows is None:
        sys.exit(f"twin store copy printed no summary:\n{run.output[-3000:]}")
    rate = number(copied.group(2))
    load_s = number(rows.group(1)) / rate  # the command rounds seconds; its rate is exact
    result = {"target": target, "components": n, "rows": int(number(rows.group(1))), "wall_s": run.wall_s,
              "load_and_index_s": load_s, "components_per_s": n / load_s, "rows_per_s": rate,
              "indexes_s": number(copied.group(3)), "verify_s": number(copied.group(4)), "peak_mb": run.peak_mb,
              "schema_mb": schema_size_mb(url, schema), "summary": copied.group(0)}
    print(f"twin store copy: {n:,} components ({result['rows']:,} rows) loaded and indexed in {load_s:,.1f} s: "
          f"{n / load_s:,.0f} components/s, {rate:,.0f} rows/s (indexes {result['indexes_s']:,.0f} s); verified in "
          f"{result['verify_s']:,.0f} s; {run.wall_s:,.1f} s in all, peak {run.peak_mb:,.0f} MB; "
          f"schema {result['schema_mb']:,.0f} MiB", flush=True)
    print(f"  target (full demo twin): >= 80,000 components/s: {'met' if n / load_s >= 80_000 else 'NOT met'}"
          + ("" if n > 10_000_000 else " (this is not the full twin: rerun with demo-full.gpkg)"), flush=True)
    return result


def demo(scale: str, url: str, schema: str, work: Path) -> dict[str, object]:
    """``twin demo --scale`` into a GeoPackage, then into a fresh PostGIS schema, in the same run."""
    out: dict[str, object] = {}
    for engine, target in (("geopackage", str(work / f"demo-{scale}.gpkg")), ("postgis", fresh(url, schema))):
        run = twin("demo", "--scale", scale, "--store", target, "--cache", str(work / f"files-{engine}"))
        n = components(target)
        out[engine] = {"target": target, "components": n, "wall_s": run.wall_s, "components_per_s": n / run.wall_s,
                       "peak_mb": run.peak_mb}
        print(f"twin demo --scale {scale} into {engine}: {n:,} components in {run.wall_s:,.1f} s "
              f"({n / run.wall_s:,.0f} /s), peak {run.peak_mb:,.0f} MB", flush=True)
    gp, pg = out["geopackage"], out["postgis"]
    out["postgis_over_geopackage"] = pg["wall_s"] / gp["wall_s"]  # type: ignore[index]
    print(f"  PostGIS build time ÷ GeoPackage build time: {out['postgis_over_geopackage']:.2f}", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gpkg", type=Path, required=True, help="the GeoPackage store to copy")
    ap.add_argument("--postgis", required=True, help="postgresql://USER@HOST:PORT/DB (any schema= is replaced)")
    ap.add_argument("--schema", default="bench_copy", help=f"schema of the copy (named {PREFIX}*)")
    ap.add_argument("--demo", default="small", choices=["small", "full", "none"], help="scale of the demo builds")
    ap.add_argument("--demo-schema", default="bench_demo", help=f"schema of the PostGIS demo build ({PREFIX}*)")
    ap.add_argument("--keep", action="store_true", help="keep the schemas (default: dropped at the end)")
    ap.add_argument("--json", type=Path, help=f"default: {BENCH}/copy-<date>.json")
    args = ap.parse_args()
    print(machine.describe(), flush=True)
    result: dict[str, object] = {"machine": machine.describe(), "args": {k: str(v) for k, v in vars(args).items()}}
    made = []
    try:
        made.append(with_schema(args.postgis, args.schema))
        result["copy"] = copy(args.gpkg.resolve(), args.postgis, args.schema)
        if args.demo != "none":
            made.append(with_schema(args.postgis, args.demo_schema))
            with tempfile.TemporaryDirectory(prefix="twin-bench-demo-") as tmp:
                result["demo"] = demo(args.demo, args.postgis, args.demo_schema, Path(tmp))
    finally:
        if not args.keep:
            for target in made:
                if exists(target):
                    remove(target)
    print(f"{machine.load()}")
    out = args.json or BENCH / f"copy-{time.strftime('%Y%m%d-%H%M')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, ensure_ascii=False, default=str), encoding="utf-8")
    print(f"written {out}")


if __name__ == "__main__":
    main()
