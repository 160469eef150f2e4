"""Benchmark ``twin tiles build`` against tippecanoe: the same layers, zooms and area, into PMTiles.

Both run as child processes in the same run; each is timed alone (wall clock, CPU time, peak RSS from
``wait4``), and each output is read back for its tile count, bytes and largest tile.

* twin draws from the store directly (aggregate cells below a layer's ``min_zoom``, raw components from it).
* tippecanoe needs the components as a file: ``twin export --bbox`` writes each layer to FlatGeobuf once
  (cached in ``~/.cache/twin/bench/tippecanoe``, keyed by store, changeset and box); the export is timed
  apart and reported. tippecanoe then keeps every feature at every zoom (``-r1 --no-feature-limit
  --no-tile-size-limit``), clipped to the same box.

    python bench/bench_pyramid.py --store ~/.cache/twin/bench/demo-full.gpkg [--layers street_light,hydrant]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import os
import subprocess
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import machine
import orjson
from peers import tippecanoe
from peers.store_layers import last_changeset
from pmtiles.reader import MmapSource, all_tiles

CENTRE = (121.40, 31.15, 121.55, 31.30)  # central Shanghai, as in bench_tiles.py
WORK = Path.home() / ".cache" / "twin" / "bench" / "tippecanoe"
TWIN = Path(__file__).resolve().parents[1] / ".venv" / "bin" / "twin"


@dataclass
class Run:
    """One timed child process."""

    what: str
    seconds: float
    cpu_seconds: float
    peak_rss_mb: float
    returncode: int


@dataclass
class Output:
    """What a pyramid holds."""

    tiles: int
    per_zoom: dict[int, int]
    file_mb: float
    largest_kb: float
    largest_raw_kb: float


def timed(what: str, argv: list[str]) -> Run:
    """Run ``argv`` to its end; wall time, user + system CPU and peak RSS of it and its children."""
    t0 = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = process.stdout.read() if process.stdout else ""
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    run = Run(what, round(time.perf_counter() - t0, 2), round(usage.ru_utime + usage.ru_stime, 2),
              round(usage.ru_maxrss / 1024, 1), process.returncode)
    if run.returncode:
        raise SystemExit(f"{what} failed ({run.returncode}):\n{out[-3000:]}")
    return run


def contents(path: Path) -> Output:
    """Tiles per zoom, file size and largest tile (gzip as stored, and raw MVT) of a PMTiles file."""
    per_zoom: Counter[int] = Counter()
    largest = largest_raw = 0
    with open(path, "rb") as f:
        for (z, _, _), data in all_tiles(MmapSource(f)):
            per_zoom[z] += 1
            largest = max(largest, len(data))
            largest_raw = max(largest_raw, len(gzip.decompress(data)) if data[:2] == b"\x1f\x8b" else len(data))
    return Output(sum(per_zoom.values()), dict(sorted(per_zoom.items())), round(path.stat().st_size / 2**20, 2),
                  round(largest / 1000, 1), round(largest_raw / 1000, 1))


def export(store: Path, layer: str, bbox: tuple[float, float, float, float]) -> tuple[Path, Run | None]:
    """The layer's components in ``bbox`` as FlatGeobuf, exported once per store state (``None``: cached)."""
    tag = hashlib.blake2b(f"{store.resolve()}|{last_changeset(store)}|{bbox}".encode(), digest_size=6).hexdigest()
    path = WORK / f"{layer}-{tag}.fgb"
    if path.exists():
        return path, None
    part = WORK / "part" / path.name  # the file's name is its layer's name inside
    part.parent.mkdir(parents=True, exist_ok=True)
    part.unlink(missing_ok=True)
    run = timed(f"twin export {layer}", [str(TWIN), "export", layer, "--out", str(part), "--format", "fgb",
                                         "--bbox", ",".join(map(str, bbox)), "--store", str(store)])
    part.rename(path)
    (path.with_suffix(".json")).write_bytes(orjson.dumps(asdict(run)))
    return path, run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--layers", default="street_light,hydrant")
    parser.add_argument("--minzoom", type=int, default=10)
    parser.add_argument("--maxzoom", type=int, default=16)
    parser.add_argument("--bbox", type=lambda t: tuple(float(v) for v in t.split(",")), default=CENTRE)
    parser.add_argument("--only", choices=["twin", "tippecanoe"], help="run one side only")
    parser.add_argument("--json", type=Path, help="write every figure here")
    args = parser.parse_args()
    layers = args.layers.split(",")
    print(f"{machine.describe()}\n{tippecanoe.version()}; store {args.store}; layers {','.join(layers)}; "
          f"zooms {args.minzoom}-{args.maxzoom}; bbox {args.bbox}")
    results: dict[str, object] = {"machine": machine.describe(), "bbox": args.bbox, "layers": layers}
    if args.only != "tippecanoe":
        out = WORK / "twin.pmtiles"
        WORK.mkdir(parents=True, exist_ok=True)
        run = timed("twin tiles build", [str(TWIN), "tiles", "build", "--layers", ",".join(layers), "--out", str(out),
                                         "--minzoom", str(args.minzoom), "--maxzoom", str(args.maxzoom), "--bbox",
                                         ",".join(map(str, args.bbox)), "--store", str(args.store)])
        results["twin"] = {"run": asdict(run), "output": asdict(contents(out))}
        print(f"\ntwin tiles build: {run}\n  {contents(out)}; {machine.load()}", flush=True)
    if args.only != "twin":
        inputs, exports = {}, {}
        for layer in layers:
            inputs[layer], run = export(args.store, layer, args.bbox)
            exports[layer] = asdict(run) if run else orjson.loads(inputs[layer].with_suffix(".json").read_bytes())
            print(f"export {layer}: {inputs[layer].stat().st_size / 2**20:,.0f} MiB FlatGeobuf; "
                  f"{'cached, exported in' if run is None else 'exported:'} {exports[layer]}", flush=True)
        out = WORK / "tippecanoe.pmtiles"
        run = timed("tippecanoe", tippecanoe.command(out, inputs, args.minzoom, args.maxzoom, args.bbox))
        results["tippecanoe"] = {"run": asdict(run), "output": asdict(contents(out)), "exports": exports,
                                 "version": tippecanoe.version()}
        print(f"\ntippecanoe: {run}\n  {contents(out)}; {machine.load()}", flush=True)
    if args.json:
        args.json.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS))


if __name__ == "__main__":
    main()
