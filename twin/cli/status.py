"""``twin status push FILE|-``: status reports (NDJSON, one per line, or a JSON array) into the store."""

from __future__ import annotations

import getpass
import itertools
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, BinaryIO

import typer

from twin.access.policy import load_policy
from twin.access.principal import local
from twin.cli.common import LayersOption, StoreOption, console, err_console, friendly, opened, settings
from twin.status import Intake, items_of, lines_of

status_app = typer.Typer(help="Status reports: what was observed about components, and when.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(status_app, name="status")


def _chunks(stream: BinaryIO) -> Iterator[bytes]:
    while chunk := stream.read(1 << 20):
        yield chunk


@status_app.command("push")
@friendly
def push(file: Annotated[str, typer.Argument(metavar="FILE|-", help="NDJSON (one report per line) or a JSON array; "
                                                                   "- reads standard input.")],
         source: Annotated[str, typer.Option(help="Where reports that do not say come from.")] = "status",
         store: StoreOption = None, layers: LayersOption = None) -> None:
    """Keep status reports: the newest of a component changes it, a late one is kept as history; refused lines
    are listed (exit 1 when every report was refused)."""
    with opened(settings(store, layers)) as st, (sys.stdin.buffer if file == "-" else Path(file).open("rb")) as f:
        intake = Intake(st, local(load_policy(None, st.catalogue)), author=f"local:{getpass.getuser()}",
                        source=source)
        chunks = _chunks(f)
        first = next(chunks, b"")
        if first.lstrip().startswith(b"["):  # a JSON array is read whole
            done = intake.push(items_of(b"".join([first, *chunks])))
        else:
            done = intake.push(lines_of(itertools.chain([first], chunks)))
    for r in done.rejected:
        err_console.print(f"line {r.line}: {r.key or '?'}: {r.error}", highlight=False, soft_wrap=True)
    kept = done.applied + done.late
    console.print(f"{kept} reports kept ({done.applied} applied, {done.late} late, kept as history), "
                  f"{len(done.rejected)} refused; changesets {', '.join(map(str, done.changesets)) or 'none'}")
    if done.rejected and not kept:
        raise typer.Exit(1)
