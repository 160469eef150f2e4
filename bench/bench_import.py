"""Benchmark: ``twin import`` of a 1,000,000-point shapefile against ``ogr2ogr -f GPKG`` of the same file.

Both run as child processes in the same session on the same input, alternated ``--repeat`` times; the script
prints each wall time, the ratio of the medians, and each child's peak resident memory (from ``os.wait4``; it
counts from what this script held when it forked, ~115 MiB, so a smaller peak reads as that floor; the input is
generated in a child of its own so that this floor stays small).
The input (street lights spread over Shanghai, with Chinese road names) is generated once and cached in
``~/.cache/twin``.

    python bench/bench_import.py [--n 1000000] [--repeat 3] [--chunk 100000] [--profile]

``--profile`` also runs the import in-process under cProfile and prints where the time goes, split
into the importer (twin/io) and the store (twin/store, twin/schema, twin/keys).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

CACHE = Path.home() / ".cache" / "twin"
ROADS = ["人民路", "南京东路", "淮海中路", "延安西路", "世纪大道", "中山北路", "四平路", "漕溪北路", "沪闵路",
         "浦东南路"]


def generate(n: int) -> Path:
    """The cached ``n``-point street-light shapefile (UTF-8, EPSG:4326), built once."""
    path = CACHE / f"street_lights_{n}.shp"
    if path.exists() and path.with_suffix(".dbf").exists():
        return path
    CACHE.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(42)
    x, y = rng.uniform(121.20, 121.80, n), rng.uniform(30.95, 31.40, n)
    frame = gpd.GeoDataFrame(
        pd.DataFrame({
            "lamp_type": rng.choice(["led", "sodium", "metal_halide"], n),
            "power": rng.choice([60, 100, 150, 250], n),
            "pole_heigh": rng.uniform(6, 12, n).round(1),
            "road": rng.choice(ROADS, n),
            "circuit": np.char.add("C", rng.integers(0, 5000, n).astype(str)),
        }),
        geometry=shapely.points(x, y), crs="EPSG:4326",
    )
    tmp = path.with_name(path.stem + ".tmp.shp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        pyogrio.write_dataframe(frame, tmp, encoding="UTF-8", layer_options={"RESIZE": "YES"})
    for part in tmp.parent.glob(tmp.stem + ".*"):
        part.rename(path.with_suffix(part.suffix))
    return path


def timed(cmd: list[str]) -> tuple[float, int]:
    """Run ``cmd``; its wall time in seconds and peak resident memory in MiB."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{err}")
    return elapsed, usage.ru_maxrss // 1024


def profile(src: Path, work: Path, chunk: int) -> None:
    """Import in-process under cProfile and print the top functions and the store's share."""
    from twin.catalogue import load_catalogue
    from twin.io import ImportOptions, import_file
    from twin.settings import DEFAULT_LAYERS_DIR
    from twin.store import open_store

    store = open_store(work / "profiled.gpkg", load_catalogue(DEFAULT_LAYERS_DIR))
    prof = cProfile.Profile()
    prof.enable()
    import_file(store, src, "street_light", ImportOptions(chunk_size=chunk))
    prof.disable()
    store.close()
    stats = pstats.Stats(prof)
    total = stats.total_tt  # type: ignore[attr-defined]
    print("\nwhere the time goes (cumulative, top 25):")
    stats.sort_stats("cumulative").print_stats(25)
    for label, needle in (("store.writer add (plan + write)", "writing.py"), ("importer (twin/io)", "twin/io/")):
        cum = max((v[3] for k, v in stats.stats.items() if needle in k[0]), default=0.0)  # type: ignore[attr-defined]
        print(f"{label}: up to {cum:.1f} s of {total:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--chunk", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each, alternated; medians are reported")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--generate-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    ogr2ogr = shutil.which("ogr2ogr")
    if ogr2ogr is None:
        sys.exit("ogr2ogr not found: apt-get install -y gdal-bin")
    twin = Path(sys.executable).with_name("twin")
    if args.generate_only:
        generate(args.n)
        return
    # generated in a child: the children's peak memory (os.wait4) counts from what their parent held when forked
    subprocess.run([sys.executable, __file__, "--n", str(args.n), "--generate-only"], check=True)
    src = generate(args.n)
    print(f"input: {src} ({args.n:,} points, {sum(p.stat().st_size for p in src.parent.glob(src.stem + '.*')):,} "
          "bytes)")
    runs: list[tuple[float, int, float, int]] = []
    with tempfile.TemporaryDirectory(prefix="twin-bench-") as tmp:
        work = Path(tmp)
        for i in range(args.repeat):  # alternate the two, so that a slow spell of the machine hits both
            for old in work.glob("*"):
                old.unlink()
            t_ogr, m_ogr = timed([ogr2ogr, "-f", "GPKG", str(work / "ogr.gpkg"), str(src)])
            t_twin, m_twin = timed([str(twin), "import", str(src), "--layer", "street_light",
                                    "--store", str(work / "twin.gpkg"), "--report", str(work / "report.json")])
            runs.append((t_ogr, m_ogr, t_twin, m_twin))
            print(f"run {i + 1}: ogr2ogr {t_ogr:6.2f} s, twin import {t_twin:6.2f} s, ratio {t_twin / t_ogr:.2f}x")
        t_ogr, t_twin = (statistics.median(r[k] for r in runs) for k in (0, 2))
        m_ogr, m_twin = (max(r[k] for r in runs) for k in (1, 3))
        print(f"ogr2ogr -f GPKG : {t_ogr:7.2f} s   peak {m_ogr:6,} MiB   (median of {len(runs)})")
        print(f"twin import     : {t_twin:7.2f} s   peak {m_twin:6,} MiB   (median of {len(runs)})")
        print(f"ratio twin/ogr2ogr: {t_twin / t_ogr:.2f}x (medians; target: within 1.5x)")
        if args.profile:
            profile(src, work, args.chunk)


if __name__ == "__main__":
    main()
