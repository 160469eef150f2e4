"""Commands over the catalogue and the store: ``layers``, ``info``, ``get``, ``history``, ``diff``, ``changesets``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from twin.access.policy import load_policy
from twin.access.principal import local
from twin.cli.common import LayersOption, StoreOption, catalogue, console, friendly, opened, settings
from twin.query.changes import ChangeReader, diff
from twin.query.crs import CRS84
from twin.query.model import parse_bbox
from twin.query.versions import as_of_stamp


def register(app: typer.Typer) -> None:
    app.command("layers")(layers)
    app.command("info")(info)
    app.command("get")(get)
    app.command("history")(history)
    app.command("diff")(diff_command)
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
        as_of: Annotated[str | None, typer.Option(help="An instant (RFC 3339 with a time zone, or a date: its "
                                                      "end) to read the component as it was then.")] = None,
        store: StoreOption = None, layers: LayersOption = None) -> None:
    """Show the component a location key resolves to."""
    with opened(settings(store, layers)) as st:
        row = st.get(key, as_of=None if as_of is None else as_of_stamp(as_of)).iloc[0]
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
def diff_command(start: Annotated[str, typer.Argument(metavar="FROM", help="An instant (RFC 3339 or a date).")],
                 end: Annotated[str, typer.Argument(metavar="TO", help="A later instant.")],
                 layer: Annotated[list[str] | None, typer.Option(help="Only this layer (repeatable).")] = None,
                 bbox: Annotated[str | None, typer.Option(help="minlon,minlat,maxlon,maxlat: only components "
                                                                 "meeting it at either end.")] = None,
                 limit: Annotated[int, typer.Option(help="List at most this many.")] = 1000,
                 store: StoreOption = None, layers: LayersOption = None) -> None:
    """List the components that differ between two instants: added, removed or changed."""
    box = None if bbox is None else parse_bbox(bbox, CRS84, name="--bbox").parts[0]
    with opened(settings(store, layers)) as st:
        who = local(load_policy(None, st.catalogue))
        found = diff(ChangeReader(st, budget_s=600), who, as_of_stamp(start), as_of_stamp(end), layer, box, limit)
    table = Table("layer", "key", "change", "versions")
    for e in found.entries:
        versions = str(e["toVersion"]) if e["change"] == "added" else f"{e['fromVersion']} → {e['toVersion']}"
        table.add_row(str(e["layer"]), str(e["key"]), str(e["change"]), versions)
    console.print(table)
    counts = {c: sum(e["change"] == c for e in found.entries) for c in ("added", "removed", "changed")}
    console.print(f"changesets {found.start + 1}–{found.end}: " + ", ".join(f"{n} {c}" for c, n in counts.items())
                  + (f" (the first {limit}; more changed)" if found.truncated else ""))


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
