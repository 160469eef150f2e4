"""Showing import and export reports in the terminal with rich (the JSON form is ``ImportReport.to_dict``)."""

from __future__ import annotations

from rich.console import Console, Group
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from twin.io.report import ExportReport, ImportReport

#: Per-row problems shown on screen; ``--report FILE.json`` has them all.
SHOWN_PROBLEMS = 20


def _summary(r: ImportReport) -> Table:
    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold")
    t.add_column()
    verb = "would be " if r.dry_run else ""
    t.add_row("source", f"{r.source} ({r.format})")
    t.add_row("layer", r.layer)
    t.add_row("encoding", f"{r.encoding or '-'}  [dim]{r.encoding_how or ''}[/]")
    t.add_row("CRS", f"{r.crs}  [dim]{r.crs_how}[/]")
    if r.coordinates:
        t.add_row("coordinates", f"{escape(coordinates_text(r))}  [dim]{escape(r.coordinates_how)}[/]")
    t.add_row("rows read", f"{r.read:,}")
    t.add_row(f"{verb}inserted", f"[green]{r.inserted:,}[/]")
    t.add_row(f"{verb}updated", f"[cyan]{r.updated:,}[/]")
    t.add_row("unchanged", f"{r.unchanged:,}")
    t.add_row("rejected", f"[red]{r.rejected:,}[/]" if r.rejected else "0")
    t.add_row("held back (outside)", f"[yellow]{r.held_back:,}[/]" if r.held_back else "0")
    t.add_row("geometries repaired", f"{r.repaired:,}")
    if r.bbox:
        t.add_row("bbox (lon/lat)", ", ".join(f"{v:.5f}" for v in r.bbox))
    t.add_row("fields", ", ".join(f"{s} → {d}" for s, d in r.mapping.items()) or "-")
    if r.ignored_columns:
        t.add_row("ignored columns", ", ".join(r.ignored_columns))
    if r.changeset is not None:
        t.add_row("changeset", str(r.changeset))
    return t


def coordinates_text(r: ImportReport) -> str:
    """Which CSV columns held the coordinates: ``lon: 东坐标, lat: 北坐标`` or ``WKT: geom``."""
    return ", ".join(f"{'WKT' if role == 'wkt' else role}: {column}" for role, column in r.coordinates.items())


def _problems(r: ImportReport) -> Table:
    t = Table("row", "field", "problem", title=f"problems ({r.problem_count:,})", title_justify="left")
    for p in r.problems[:SHOWN_PROBLEMS]:
        t.add_row(str(p.row), p.field, p.message)
    if r.problem_count > SHOWN_PROBLEMS:
        t.add_row("…", "", f"{r.problem_count - SHOWN_PROBLEMS:,} more (write them all with --report FILE.json)")
    return t


def _samples(r: ImportReport) -> list[Table]:
    out = []
    for action, rows in r.samples.items():
        cols = list(dict.fromkeys(k for row in rows for k in row))
        t = Table(*cols, title=f"sample: {action}", title_justify="left")
        for row in rows:
            t.add_row(*(str(row.get(c, "")) for c in cols))
        out.append(t)
    return out


def show_import(console: Console, r: ImportReport) -> None:
    """Print an import report: summary, warnings, problems and (for dry runs) sample rows."""
    title = "twin import (dry run: nothing written)" if r.dry_run else "twin import"
    parts: list[object] = [_summary(r)]
    parts += [f"[yellow]warning:[/] {w}" for w in r.warnings]
    console.print(Panel(Group(*parts), title=title, title_align="left"))  # type: ignore[arg-type]
    if r.problems:
        console.print(_problems(r))
    if r.dry_run:
        for table in _samples(r):
            console.print(table)


def show_export(console: Console, r: ExportReport) -> None:
    """Print what an export wrote, with any shapefile field renaming."""
    console.print(f"exported {r.count:,} component(s) of {r.layer} as {r.format} in {r.crs} to "
                  f"{', '.join(r.paths)}", highlight=False)
    if r.renamed_fields:
        t = Table("field", "shapefile name", title="field names cut to 10 characters", title_justify="left")
        for a, b in r.renamed_fields.items():
            t.add_row(a, b)
        console.print(t)
    for w in r.warnings:
        console.print(f"[yellow]warning:[/] {w}", highlight=False)
