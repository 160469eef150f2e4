"""``twin map``: a self-contained HTML map of chosen layers, for reports and for computers with no network."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from twin.cli.common import LayersOption, StoreOption, catalogue, console, friendly, settings
from twin.errors import InvalidQueryError


def register(app: typer.Typer) -> None:
    app.command("map")(map_command)


def _bbox(text: str | None) -> tuple[float, float, float, float] | None:
    if text is None:
        return None
    try:
        box = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise InvalidQueryError(f"--bbox must be four numbers minlon,minlat,maxlon,maxlat, not {text!r}") from None
    if len(box) != 4 or box[0] >= box[2] or box[1] >= box[3]:
        raise InvalidQueryError(f"--bbox must be minlon,minlat,maxlon,maxlat with min < max, not {text!r}")
    return box


@friendly
def map_command(
    out: Annotated[Path, typer.Option("--out", help="HTML file to write.")],
    layer: Annotated[list[str] | None, typer.Option("--layer", help="Layer id to draw (repeat; default: all).")] = None,
    bbox: Annotated[str | None, typer.Option(help="minlon,minlat,maxlon,maxlat to draw and open on.")] = None,
    filter: Annotated[str | None, typer.Option("--filter", help="CQL2 filter for every layer drawn.")] = None,
    source: Annotated[str | None, typer.Option(help="A twin service URL to read from instead of --store.")] = None,
    title: Annotated[str | None, typer.Option(help="Title of the page and the legend.")] = None,
    max_features: Annotated[int, typer.Option(help="Most components drawn per layer.")] = 20_000,
    store: StoreOption = None, layers: LayersOption = None,
) -> None:
    """Write a static map (Leaflet and the data inlined: no external URL) of the store or a service."""
    from twin.maps import build_map  # folium is only loaded by the commands that draw

    cfg = settings(store, layers)
    names = [n for item in layer or [] for n in item.split(",") if n.strip()] or None
    fmap = build_map(source or cfg.store, layers=names, bbox=_bbox(bbox), filter=filter, catalogue=catalogue(cfg),
                     max_features=max_features, title=title)
    out.parent.mkdir(parents=True, exist_ok=True)
    fmap.save(str(out))
    console.print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB); it opens in any browser, offline", highlight=False)
