"""Check a store's vector tiles at full scale: no tile over the size limit at any zoom, aggregates that add up.

1. **Size.** For every zoom from 0 to 16 and every layer set, it draws the densest tiles (found from the
   aggregate cells: a cell of level ``z`` is the tile ``z/cx/cy``) and a seeded sample of the city's tiles,
   and reports the largest MVT, in which mode the renderer drew it (``full``; ``lean``, fewer attributes;
   ``cells``, aggregated above ``min_zoom``: the size guard's fall-backs) and the slowest draw.
2. **Sums.** For each aggregated layer and each zoom of ``--sum-zooms`` below its ``min_zoom``, it draws
   every tile covering the layer's extent, decodes it, and checks that the cells' ``count`` add up to
   ``store.count(layer)`` and each ``count_<status>`` to the layer's count of that status.

    python bench/verify_tiles.py --store ~/.cache/twin/bench/demo-full.gpkg [--densest 5] [--sample 5]

Exits with 1 when a check fails.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import sys
import time
from collections import Counter
from pathlib import Path

import machine
import mapbox_vector_tile

from tiles import TileEngine, TileSettings
from tiles.grid import TileID, tiles_in
from tiles.query import NO_FILTER
from twin.catalogue import load_catalogue
from twin.settings import DEFAULT_LAYERS_DIR
from twin.store import Store, open_store
from twin.store.gpkg.ddl import q

CITY = (121.10, 30.90, 121.80, 31.45)
#: Each layer alone, the two point layers together, and what the planners' map asks for in one request.
SETS = "street_light;hydrant;street_light,hydrant;hydrant,pipeline,residential_compound,street_light"


def densest(conn: sqlite3.Connection, engine: TileEngine, layers: tuple[str, ...], zoom: int, k: int) -> \
        list[TileID]:
    """The ``k`` tiles of ``zoom`` holding the most components of ``layers`` (by their aggregate cells)."""
    usable = [p.layer for p in map(engine.aggregates.plan, layers) if p and p.depth <= zoom <= p.fine]
    if not usable:
        return []
    marks = ",".join("?" * len(usable))
    rows = conn.execute(f"SELECT cx, cy FROM twin_tiles_cells WHERE level = ? AND layer IN ({marks}) "
                        "GROUP BY cx, cy ORDER BY sum(n) DESC LIMIT ?", (zoom, *usable, k)).fetchall()
    return [TileID(zoom, int(cx), int(cy)) for cx, cy in rows]


def sizes(engine: TileEngine, conn: sqlite3.Connection, sets: list[tuple[str, ...]], zooms: list[int],
          k_dense: int, k_sample: int, limit: int) -> bool:
    """Draw the densest and sampled tiles of every set and zoom; ``False`` when one is over ``limit`` bytes."""
    ok = True
    print(f"\nsize: limit {limit / 1000:,.0f} KB; densest {k_dense} + {k_sample} seeded tiles over the city "
          f"per zoom\n{'layers':<52} {'zoom':>4} {'tiles':>5} {'max KB':>8} {'largest tile':>18} "
          f"{'modes':<24} {'slowest':>8}")
    for layers in sets:
        for z in zooms:
            city = tiles_in(CITY, z)
            picked = list(dict.fromkeys(densest(conn, engine, layers, z, k_dense) +
                                        random.Random(z).sample(city, min(k_sample, len(city)))))
            biggest, worst, modes, slowest = -1, None, Counter(), 0.0
            for tile in picked:
                t0 = time.perf_counter()
                try:
                    rendered = engine.renderer.render(layers, tile, NO_FILTER)
                except AssertionError as exc:  # the renderer's own guard: nothing it can draw fits
                    print(f"  FAIL {tile}: {exc}")
                    ok = False
                    continue
                slowest = max(slowest, time.perf_counter() - t0)
                modes[rendered.mode] += 1
                if len(rendered.data) > biggest:
                    biggest, worst = len(rendered.data), tile
                if len(rendered.data) > limit:
                    print(f"  FAIL {tile}: {len(rendered.data):,} bytes")
                    ok = False
            where = f"{worst.z}/{worst.x}/{worst.y}" if worst else "-"
            print(f"{','.join(layers):<52} {z:>4} {len(picked):>5} {biggest / 1000:>8,.1f} {where:>18} "
                  f"{' '.join(f'{m}:{n}' for m, n in sorted(modes.items())):<24} {slowest * 1000:>6,.0f}ms",
                  flush=True)
    return ok


def truth(conn: sqlite3.Connection, layer: str) -> Counter[str]:
    """The layer's components counted by status, straight from its table."""
    return Counter(dict(conn.execute(f"SELECT status, count(*) FROM {q(layer)} GROUP BY status").fetchall()))


def sums(engine: TileEngine, store: Store, conn: sqlite3.Connection, layers: list[str],
         zooms: list[int]) -> bool:
    """Decode every tile over each layer's extent at each aggregated zoom and add its cells up."""
    ok = True
    print(f"\nsums: cells of every tile over the layer's extent, decoded\n{'layer':<22} {'zoom':>4} {'tiles':>6} "
          f"{'sum of count':>14} {'store.count':>14} {'by status':>10} {'time':>7}")
    for layer in layers:
        plan = engine.aggregates.plan(layer)
        extent = store.extent(layer)
        if plan is None or extent is None:
            continue
        expected, by_status = store.count(layer), truth(conn, layer)
        for z in (z for z in zooms if z < plan.min_zoom):
            t0 = time.perf_counter()
            total, statuses, tiles = 0, Counter(), tiles_in(extent, z)
            for tile in tiles:
                data, _ = engine.draw((layer,), tile)
                if not data:
                    continue
                for feature in mapbox_vector_tile.decode(data)[layer]["features"]:
                    props = feature["properties"]
                    total += props["count"]
                    statuses.update({k.removeprefix("count_"): v for k, v in props.items()
                                     if k.startswith("count_") and v})
            good = total == expected == sum(by_status.values()) and statuses == by_status
            ok = ok and good
            print(f"{layer:<22} {z:>4} {len(tiles):>6} {total:>14,} {expected:>14,} "
                  f"{'equal' if statuses == by_status else 'DIFFER':>10} {time.perf_counter() - t0:>6.1f}s"
                  f"{'' if good else '  FAIL'}", flush=True)
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--sets", default=SETS, help="layer sets, ';' between sets, ',' within one")
    parser.add_argument("--zooms", default=",".join(map(str, range(17))))
    parser.add_argument("--densest", type=int, default=5, help="densest tiles per zoom and set")
    parser.add_argument("--sample", type=int, default=5, help="seeded random tiles over the city per zoom and set")
    parser.add_argument("--sum-layers", default="street_light,hydrant,pipeline,residential_compound")
    parser.add_argument("--sum-zooms", default="0,4,8,10,12")
    args = parser.parse_args()
    print(machine.describe())
    store = open_store(args.store, load_catalogue(DEFAULT_LAYERS_DIR), create=False)
    engine = TileEngine(store, TileSettings(memory_mb=0, warm=False))
    for layer in store.catalogue:
        engine.refresh(layer)
    conn = sqlite3.connect(f"{args.store.resolve().as_uri()}?mode=ro", uri=True)
    try:
        sets = [tuple(s.split(",")) for s in args.sets.split(";")]
        ok = sizes(engine, conn, sets, [int(z) for z in args.zooms.split(",")], args.densest, args.sample,
                   engine.settings.max_tile_kb * 1000)
        ok = sums(engine, store, conn, args.sum_layers.split(","), [int(z) for z in args.sum_zooms.split(",")]) \
            and ok
    finally:
        conn.close()
        engine.close()
        store.close()
    print(f"\n{'all checks passed' if ok else 'FAILED'}; {machine.load()}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
