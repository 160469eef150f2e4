"""``twin store copy`` and ``twin store verify``: a whole twin between a GeoPackage file and PostGIS."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from twin.cli.common import LayersOption, catalogue, console, friendly, settings
from twin.errors import StoreError
from twin.store import exists, open_store
from twin.store.copy import Check, copy_store, verify

store_app = typer.Typer(help="Move a whole twin between engines (GeoPackage file, PostGIS database).",
                        no_args_is_help=True)
Target = Annotated[str, typer.Argument(help="A GeoPackage file, or postgresql://USER@HOST:PORT/DB[?schema=NAME].")]


def register(app: typer.Typer) -> None:
    app.add_typer(store_app, name="store")


@store_app.command("copy")
@friendly
def copy(src: Target, dst: Target, layers: LayersOption = None,
         chunk: Annotated[int, typer.Option(help="Rows per committed chunk.", min=1000)] = 50_000,
         access_db: Annotated[Path | None, typer.Option(help="The access database of a GeoPackage source, when "
                                                              "not beside it.")] = None) -> None:
    """Copy SRC into DST (new or empty; a copy that stopped halfway resumes): layers, history, changesets, users,
    audit trail and tile aggregates, then verify every part."""
    cfg = settings(None, layers)
    if not exists(src):
        raise StoreError(f"{src}: no store here to copy")
    started = time.perf_counter()
    cat = catalogue(cfg)
    with open_store(src, cat, create=False) as source, open_store(dst, cat, create=True) as target, Progress(
            TextColumn("[bold]{task.description}"), TextColumn("{task.completed:,} rows"), TimeElapsedColumn(),
            console=console, transient=True) as bar:
        task = bar.add_task("copying", total=None)
        phases: dict[str, float] = {}

        def progress(part: str, done: int, _total: int) -> None:
            phase = part.split(" ", 1)[0] if part.startswith(("indexes", "verifying")) else "copying"
            phases.setdefault(phase, time.perf_counter())
            bar.update(task, description=part if phase != "copying" else f"copying {part}", completed=done)

        checks = copy_store(source, target, progress=progress, access=access_db, chunk=chunk)
    ended = time.perf_counter()
    _report(checks, ended - started)
    loaded = phases.get("verifying", ended) - started
    rows = sum(c.rows for c in checks)
    console.print(f"copied and indexed in {loaded:,.0f} s ({rows / max(loaded, 1e-9):,.0f} rows/s; indexes "
                  f"{phases.get('verifying', ended) - phases.get('indexes', ended):,.0f} s), verified in "
                  f"{ended - phases.get('verifying', ended):,.0f} s", highlight=False)


@store_app.command("verify")
@friendly
def verify_command(src: Target, dst: Target, layers: LayersOption = None) -> None:
    """Compare two stores part by part (row counts and digests), e.g. a copy with its source."""
    cat = catalogue(settings(None, layers))
    with open_store(src, cat, create=False) as source, open_store(dst, cat, create=False) as target:
        _report(verify(source.bulk(), target.bulk()), None)


def _report(checks: list[Check], seconds: float | None) -> None:
    table = Table(title="store copy: every part checked in both stores")
    for name in ("part", "rows", "digest", "same"):
        table.add_column(name, justify="right" if name == "rows" else "left")
    for c in checks:
        if c.rows or not c.same:
            table.add_row(c.part, f"{c.rows:,}", c.source[:12], "yes" if c.same else "[red]NO[/]")
    console.print(table)
    rows = sum(c.rows for c in checks)
    rate = f" in {seconds:,.0f} s ({rows / max(seconds, 1e-9):,.0f} rows/s)" if seconds else ""
    if all(c.same for c in checks):
        console.print(f"[green]identical[/]: {rows:,} rows{rate}")
        return
    bad = ", ".join(c.part for c in checks if not c.same)
    raise StoreError(f"the stores differ in: {bad}")
