"""PostGIS's ``ST_AsMVT`` against twin's Python encoder, drawing the same raw tiles from the same PostGIS store.

For each layer and zoom it picks ``--tiles`` tiles under random components of the layer (so none is empty) at
zooms where twin draws components rather than aggregate cells, and times, per tile, cold (no tile cache):

* ``twin``: the tile engine's renderer (the rows read through the store's snapshot, then clipped, simplified,
  masked and encoded in Python), exactly what a cache miss costs a request;
* ``twin rows``: the snapshot's row read alone (the share of the database in the above);
* ``ST_AsMVT``: one statement returning the encoded tile (``ST_AsMVTGeom`` on the 3857 tile envelope, the
  same buffer, extent and columns, ``fid`` as the feature id), as tipg or Martin would draw it.

    python bench/bench_mvt_encoders.py --store 'postgresql://postgres@127.0.0.1:55432/twin?schema=full15'

It prints p50/p95 per encoder and the ratio ``ST_AsMVT p50 / twin p50`` (above 1: twin is faster).
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import machine
import psycopg

from tiles.grid import TileID, buffered_mercator, lonlat_box
from tiles.query import NO_FILTER
from tiles.render import Renderer
from tiles.view import MASKED
from twin.catalogue import MaskRule, load_catalogue
from twin.settings import DEFAULT_LAYERS_DIR, TileSettings
from twin.store import open_store
from twin.store.postgis.connect import parse_url

CASES = (("street_light", (14, 16)), ("hydrant", (14, 16)), ("pipeline", (14, 16)),
         ("residential_compound", (14, 16)))


def tiles_under(conn: psycopg.Connection, table: str, z: int, n: int) -> list[TileID]:
    """``n`` distinct tiles at zoom ``z`` holding a component of ``table`` (sampled from its rows)."""
    rows = conn.execute(f"SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM {table} "
                        f"TABLESAMPLE SYSTEM_ROWS(%s)) s ORDER BY random()", (n * 500,)).fetchall()
    found: list[TileID] = []
    for lon, lat in rows:
        tile = _containing(z, lon, lat)
        if tile not in found:
            found.append(tile)
        if len(found) == n:
            break
    return found


def _containing(z: int, lon: float, lat: float) -> TileID:
    n = 1 << z
    y = (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2
    return TileID(z, int((lon + 180) / 360 * n), int(y * n))


def st_asmvt_sql(table: str, layer: str, fields: list[str], buffer: int) -> str:
    columns = ", ".join(f'"{f}"' for f in ["key", "status", *fields])
    return (f"SELECT ST_AsMVT(q, '{layer}', 4096, 'geom', 'fid') FROM ("
            f"SELECT fid, {columns}, ST_AsMVTGeom(ST_Transform(geom, 3857), ST_TileEnvelope(%s, %s, %s), "
            f"4096, {buffer}, true) AS geom FROM {table} "
            f"WHERE geom && ST_Transform(ST_TileEnvelope(%s, %s, %s, margin => {buffer / 4096}), 4326)) q "
            f"WHERE geom IS NOT NULL")


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--store", required=True, help="a PostGIS store URL (?schema=...)")
    parser.add_argument("--tiles", type=int, default=40, help="tiles per layer and zoom")
    args = parser.parse_args()
    print(machine.describe())
    catalogue = load_catalogue(DEFAULT_LAYERS_DIR)
    store = open_store(args.store, catalogue, create=False)
    settings = TileSettings()
    renderer = Renderer(store, _NoAggregates(), buffer=settings.buffer, max_bytes=10**9)
    target = parse_url(args.store)
    schema = target.schema
    ratios = []
    with psycopg.connect(target.conninfo, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS tsm_system_rows")
        print(f"{'layer':22} {'z':>3} {'tiles':>5} {'twin p50/p95 ms':>18} {'rows p50':>9} "
              f"{'ST_AsMVT p50/p95 ms':>20} {'ratio':>6}")
        for layer, zooms in CASES:
            spec = catalogue[layer]
            table = f'"{schema}"."{layer}"'
            # the fields twin's masked view sends (masked values, which SQL is spared computing here)
            fields = [f for f in spec.field_names if spec.sensitive_fields.get(f) is not MaskRule.drop]
            sql = st_asmvt_sql(table, layer, fields, settings.buffer)
            for z in zooms:
                tiles = tiles_under(conn, table, z, args.tiles)
                ours, reads, theirs = [], [], []
                for tile in tiles:
                    box = lonlat_box(buffered_mercator(tile, settings.buffer))
                    with store.read(30) as snap:
                        reads.append(timed(lambda s=snap, b=box, n=layer: s.tile_rows(n, b)))
                    ours.append(timed(lambda t=tile, n=layer: renderer.render((n,), t, NO_FILTER, MASKED)))
                    args_ = (tile.z, tile.x, tile.y) * 2
                    theirs.append(timed(lambda a=args_, q=sql: conn.execute(q, a).fetchone()))
                p = _p50_p95
                ratio = statistics.median(theirs) / statistics.median(ours)
                ratios.append(ratio)
                print(f"{layer:22} {z:>3} {len(tiles):>5} {p(ours):>18} {statistics.median(reads) * 1e3:>9.1f} "
                      f"{p(theirs):>20} {ratio:>6.2f}")
    print(f"geometric mean of ST_AsMVT/twin: {statistics.geometric_mean(ratios):.2f}")
    store.close()


def _p50_p95(values: list[float]) -> str:
    ordered = sorted(values)
    return f"{statistics.median(ordered) * 1e3:.1f} / {ordered[int(0.95 * (len(ordered) - 1))] * 1e3:.1f}"


class _NoAggregates:
    """No aggregate plans: every tile is drawn from its components, as ``ST_AsMVT`` draws it."""

    depth = 0

    def plan(self, layer: str) -> None:
        return None


if __name__ == "__main__":
    main()
