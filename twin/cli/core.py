"""Commands over the catalogue and the store: ``layers``, ``info``, ``get``, ``history``, ``changesets``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from twin.cli.common import LayersOption, StoreOption, catalogue, console, friendly, opened, settings


def register(app: typer.Typer) -> None:
    app.command("layers")(layers)
    app.command("info")(info)
    app.command("get")(get)
    app.command("history")(history)
    app.command("changesets")(changesets)


@friendly
def layers(layers: LayersOption = None) -> None:
    """Validate the layer catalogue and list its layers."""
    cat = catalogue(settings(layers=layers))
    table = Table("id", "code", "标题", "title", "group", "geometry", "min zoom", "fields")
    for spec in cat.values():
        table.add_row(spec.id, spec.code, spec.title_zh, spec.title_en, spec.group.value, spec.geometry.value,
                      str(spec.min_zoom), ", ".join(spec.field_names))
    console.print(table)


@friendly
def info(store: StoreOption = None, layers: LayersOption = None) -> None:
    """Summarise a store: components per layer, extents and the latest changeset."""
    with opened(settings(store, layers)) as st:
        table = Table("layer", "标题", "components", "extent (lon/lat)", "last changeset")
        for spec in st.catalogue.values():
            ext = st.extent(spec.id)
            extent = "-" if ext is None else ", ".join(f"{v:.4f}" for v in ext)
            table.add_row(spec.id, spec.title_zh, f"{st.count(spec.id):,}", extent, str(st.last_changeset(spec.id)))
        console.print(f"store: {st.location} ({st.engine})")
        console.print(table)


@friendly
def get(key: Annotated[str, typer.Argument(help="Location key, such as HY-wtw3sjq6-0.")],
        as_of: Annotated[str | None, typer.Option(help="ISO 8601 UTC time to read the past state at.")] = None,
        store: StoreOption = None, layers: LayersOption = None) -> None:
    """Show the component a location key resolves to."""
    with opened(settings(store, layers)) as st:
        row = st.get(key, as_of=as_of).iloc[0]
        for name, value in row.items():
            if name != "fid":
                console.print(f"[bold]{name}[/]: {value}", highlight=False)


@friendly
def history(key: Annotated[str, typer.Argument(help="Location key.")],
            store: StoreOption = None, layers: LayersOption = None) -> None:
    """List every version of a component, oldest first."""
    with opened(settings(store, layers)) as st:
        frame = st.history(key)
        table = Table("version", "status", "valid from", "valid to", "changeset", "op")
        for _, r in frame.iterrows():
            table.add_row(str(r.version), str(r.status), str(r.valid_from), str(r.valid_to or ""),
                          str(r.changeset), str(r.op))
        console.print(table)


@friendly
def changesets(layer: Annotated[str | None, typer.Option(help="Only this layer.")] = None,
               limit: Annotated[int, typer.Option(help="How many, newest first.")] = 20,
               store: StoreOption = None, layers: LayersOption = None) -> None:
    """List the latest changesets: who changed what, when, from where."""
    with opened(settings(store, layers)) as st:
        table = Table("id", "time", "author", "kind", "layer", "source", "+", "~", "-", "=", "source CRS")
        for cs in st.changesets(layer=layer, limit=limit):
            table.add_row(str(cs.id), cs.time, cs.author, cs.kind, cs.layer, cs.source, str(cs.inserted),
                          str(cs.updated), str(cs.deleted), str(cs.unchanged), cs.source_crs or "")
        console.print(table)
