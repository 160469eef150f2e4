"""``twin tiles build``: pre-generate a vector tile pyramid into one PMTiles file for static hosting."""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from tiles import TileEngine, TileSettings
from tiles import metadata as meta
from tiles.aggregate import Aggregates
from tiles.grid import parse_zoom
from tiles.pyramid import FORMAT, build, plan_tiles, tile_ranges
from twin.cli.common import StoreOption, console, friendly, opened, settings
from twin.errors import InvalidQueryError
from twin.store import Store

tiles_app = typer.Typer(help="Vector tiles: pre-built PMTiles pyramids (矢量瓦片).", no_args_is_help=True)
CatalogueOption = Annotated[
    Path | None,
    typer.Option("--catalogue", help="Layer catalogue folder (default: $TWIN_LAYERS, else the bundled layers/).",
                 show_default=False),
]


def register(app: typer.Typer) -> None:
    app.add_typer(tiles_app, name="tiles")


def update_aggregates(st: Store, layers: Iterable[str]) -> None:
    """Bring the tile aggregates of ``layers`` up to date now, in the process that wrote them, so that a server
    starting on the store (however many workers) finds them built."""
    aggregates = Aggregates(st)
    for layer in layers:
        if aggregates.plan(layer) is None:
            continue
        started = time.perf_counter()
        aggregates.sync(layer)
        console.print(f"  tile aggregates of {layer} up to date ({time.perf_counter() - started:.1f} s)",
                      highlight=False)


def parse_bbox(text: str) -> tuple[float, float, float, float]:
    """``minlon,minlat,maxlon,maxlat`` checked for order and range."""
    try:
        box = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise InvalidQueryError(f"--bbox must be four numbers minlon,minlat,maxlon,maxlat, not {text[:80]!r}") from None
    if len(box) != 4:
        raise InvalidQueryError(f"--bbox needs 4 numbers minlon,minlat,maxlon,maxlat, got {len(box)}")
    if not (-180 <= box[0] < box[2] <= 180 and -85.06 <= box[1] < box[3] <= 85.06):
        raise InvalidQueryError(f"--bbox {text!r}: needs minlon < maxlon within ±180 and minlat < maxlat within ±85")
    return box


@tiles_app.command("build")
@friendly
def build_command(
    layers: Annotated[str, typer.Option("--layers", help="Layer ids, comma-separated (one combined tile set).")],
    out: Annotated[Path, typer.Option("--out", help="The .pmtiles file to write.")],
    minzoom: Annotated[int, typer.Option("--minzoom", help="First zoom.")] = 10,
    maxzoom: Annotated[int, typer.Option("--maxzoom", help="Last zoom.")] = 16,
    bbox: Annotated[str | None, typer.Option("--bbox", help="minlon,minlat,maxlon,maxlat (default: the layers' "
                                                           "extent).")] = None,
    store: StoreOption = None,
    catalogue: CatalogueOption = None,
) -> None:
    """Draw every tile of LAYERS from MINZOOM to MAXZOOM over BBOX into one PMTiles file (v3, gzip MVT)."""
    lo, hi = parse_zoom(minzoom, "--minzoom"), parse_zoom(maxzoom, "--maxzoom")
    if lo > hi:
        raise InvalidQueryError(f"--minzoom {lo} is above --maxzoom {hi}")
    if out.suffix != ".pmtiles":
        raise InvalidQueryError(f"--out {out}: the file name must end in .pmtiles")
    if not out.parent.is_dir():
        raise InvalidQueryError(f"--out {out}: folder {out.parent} does not exist")
    with opened(settings(store, catalogue)) as st:
        engine = TileEngine(st, TileSettings(cache_dir=None, pyramid=None, memory_mb=0, warm=False))
        try:
            names = engine.layers(layers)
            versions = engine.versions(names)
            box = parse_bbox(bbox) if bbox else _extent(st, names)
            tiles = plan_tiles(box, lo, hi)
            doc = meta.tilejson(",".join(names), [st.catalogue[n] for n in names], engine.aggregates, "", box)
            doc.pop("tiles")
            doc.update(minzoom=lo, maxzoom=hi, format="pbf")
            doc["twin"] = {"format": FORMAT, "store": engine.identity, "layers": list(names), "versions": versions,
                           "minzoom": lo,
                           "maxzoom": hi, "ranges": tile_ranges(tiles)}
            columns = (TextColumn("[bold]tiles"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                       TimeRemainingColumn())
            with Progress(*columns, console=console) as progress:
                task = progress.add_task("tiles", total=len(tiles))
                report = build(out, names, tiles, lambda t: engine.draw(names, t), doc, box,
                               lambda n: progress.advance(task, n))
        finally:
            engine.close()
    console.print(f"wrote {out}: {report.written:,} tiles with data of {report.tiles:,} (zooms {lo}–{hi}), "
                  f"{report.bytes / 2**20:,.1f} MiB; largest tile {report.largest / 1000:,.0f} KB")


def _extent(st: Store, names: tuple[str, ...]) -> tuple[float, float, float, float]:
    boxes = [b for b in (st.extent(n) for n in names) if b is not None]
    if not boxes:
        raise InvalidQueryError(f"{', '.join(names)}: no components, so no extent; give --bbox")
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))
