"""Benchmark: build the demo twin (``twin demo --scale full`` by default); wall time, peak memory, profile.

Usage::

    python bench/bench_demo.py                      # full scale into ~/.cache/twin/bench/demo-full.gpkg
    python bench/bench_demo.py --scale small        # the newcomer's build
    python bench/bench_demo.py --profile            # the same under cProfile, with where the time goes

The build runs in a child process (``twin demo``, exactly as a user runs it). Its memory is sampled
twice a second as the summed resident set of the child and its own worker process (``peak_rss_gb``);
``max_process_rss_gb`` is the largest single process (``ru_maxrss``). The store and the demo's files are deleted
first and kept afterwards under ``~/.cache/twin/bench`` for inspection. With ``--profile`` the report
lists the functions with the most own time and the cumulative time of the stages of the import path.
"""

from __future__ import annotations

import argparse
import json
import pstats
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from twin.catalogue import load_catalogue
from twin.settings import DEFAULT_LAYERS_DIR
from twin.store import open_store

CACHE = Path.home() / ".cache" / "twin" / "bench"
#: Stages of the build and import path, as (file suffix, function): their cumulative time is reported.
STAGES = [
    ("twin/demo/build.py", "run"),
    ("twin/demo/build.py", "admin"),
    ("twin/demo/pipelines.py", "pipelines"),
    ("twin/demo/build.py", "parcels"),
    ("twin/demo/build.py", "points"),
    ("twin/demo/build.py", "frames"),
    ("twin/io/rows.py", "add"),
    ("twin/io/rows.py", "_absurd"),
    ("twin/io/rows.py", "_destroyed"),
    ("twin/store/gpkg/writing.py", "add"),
    ("twin/store/planning.py", "plan_write"),
    ("twin/schema.py", "conform"),
    ("twin/keys.py", "fingerprints"),
    ("twin/keys.py", "row_hashes"),
    ("twin/keys.py", "assign_keys"),
    ("twin/store/planning.py", "check_geometries"),
    ("twin/store/planning.py", "stored_values"),
    ("twin/store/gpkg/writing.py", "_write_rows"),
    ("twin/store/gpkg/blob.py", "encode"),
    ("~", "<method 'executemany' of 'sqlite3.Connection' objects>"),
    ("~", "<method 'execute' of 'sqlite3.Connection' objects>"),
]
RUNNER = ("import cProfile, sys; from twin.cli import main; out = sys.argv[1]; sys.argv = ['twin', *sys.argv[2:]]; "
          "cProfile.run('main()', out)")


def _tree_rss(pid: int) -> int:
    """Resident bytes of ``pid`` and all its descendants, from /proc (0 once it is gone)."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            status = Path(f"/proc/{p}/status").read_text()
            total += int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS"))) * 1024
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, StopIteration, ValueError):
            continue
    return total


def _watch(proc: subprocess.Popen, peak: list[int]) -> None:
    while proc.poll() is None:
        peak[0] = max(peak[0], _tree_rss(proc.pid))
        time.sleep(0.5)


def build(args: argparse.Namespace, store: Path, files: Path, profile: Path | None
          ) -> tuple[float, float, float, int]:
    """Run the build in a child process: wall seconds, peak summed RSS and largest process RSS (GB), exit code."""
    for p in (store, Path(f"{store}-wal"), Path(f"{store}-shm")):
        p.unlink(missing_ok=True)
    shutil.rmtree(files, ignore_errors=True)
    cli = ["demo", "--scale", args.scale, "--seed", str(args.seed), "--store", str(store), "--cache", str(files)]
    cmd = [sys.executable, "-c", RUNNER, str(profile), *cli] if profile else \
        [sys.executable, "-c", "from twin.cli import main; main()", *cli]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd)
    peak = [0]
    watcher = threading.Thread(target=_watch, args=(proc, peak), daemon=True)
    watcher.start()
    code = proc.wait()
    wall = time.perf_counter() - started
    watcher.join()
    return wall, peak[0] / 1024**3, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2, code


def stages(profile: Path) -> list[tuple[str, float, float]]:
    """(stage, cumulative seconds, own seconds) for each of :data:`STAGES` found in the profile."""
    stats = pstats.Stats(str(profile))
    out = []
    for (file, _line, name), (_cc, _nc, own, cum, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        for suffix, fn in STAGES:
            if name == fn and file.endswith(suffix):
                out.append((f"{suffix.removeprefix('twin/')}:{fn}" if suffix != "~" else fn, cum, own))
    order = {f"{s.removeprefix('twin/')}:{f}" if s != "~" else f: i for i, (s, f) in enumerate(STAGES)}
    return sorted(out, key=lambda r: order.get(r[0], 99))


def report(args: argparse.Namespace, store: Path, wall: float, rss: tuple[float, float], profile: Path | None
           ) -> dict:
    st = open_store(store, load_catalogue(DEFAULT_LAYERS_DIR), create=False)
    try:
        counts = {layer: st.count(layer) for layer in st.catalogue}
    finally:
        st.close()
    result = {"scale": args.scale, "seed": args.seed, "wall_s": round(wall, 1), "peak_rss_gb": round(rss[0], 2),
              "max_process_rss_gb": round(rss[1], 2),
              "components": sum(counts.values()), "per_layer": counts,
              "store_gb": round(store.stat().st_size / 1024**3, 2), "profiled": profile is not None}
    if profile:
        total = pstats.Stats(str(profile)).total_tt  # type: ignore[attr-defined]
        result["stages"] = [{"stage": s, "cum_s": round(c, 1), "cum_share": round(c / total, 3), "own_s": round(o, 1)}
                            for s, c, o in stages(profile)]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="full", choices=["small", "full"])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--profile", action="store_true", help="run under cProfile (slower) and report stages")
    args = parser.parse_args()
    CACHE.mkdir(parents=True, exist_ok=True)
    store = CACHE / f"demo-{args.scale}.gpkg"
    profile = CACHE / f"demo-{args.scale}.prof" if args.profile else None
    wall, rss, biggest, code = build(args, store, CACHE / f"demo-{args.scale}-files", profile)
    if code != 0:
        sys.exit(f"twin demo failed (exit code {code}) after {wall:.0f} s")
    result = report(args, store, wall, (rss, biggest), profile)
    print(json.dumps(result, indent=2, ensure_ascii=False))
    if profile:
        pstats.Stats(str(profile)).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
