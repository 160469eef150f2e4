"""``twin status push FILE|-``: status reports (NDJSON, one per line, or a JSON array) into the store;
``twin status log KEY``: the reports kept of a component, newest observation first."""

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
from twin.query.model import clamp_limit, parse_interval
from twin.query.versions import History
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


@status_app.command("log")
@friendly
def log(key: Annotated[str, typer.Argument(help="Location key.")],
        datetime: Annotated[str | None, typer.Option(help="Only reports observed in this instant or interval "
                                                         "(RFC 3339; start/end, .. for an open end).")] = None,
        limit: Annotated[int, typer.Option(help="Most reports.")] = 50,
        store: StoreOption = None, layers: LayersOption = None) -> None:
    """List the status reports kept of a component, newest observation first: when each was observed and recorded,
    what it said, and whether it changed the component or came late."""
    with opened(settings(store, layers)) as st:
        found = History(st, budget_s=600).reports(st.layer_of(key), key, local(load_policy(None, st.catalogue)),
                                                  None if datetime is None else parse_interval(datetime),
                                                  clamp_limit(limit))
    for r in found:
        values = "".join(f" {k}={v:g}" for k, v in r.values.items())
        console.print(f"{r.observed_at}  {r.status or '-'}{values}  from {r.source} by {r.author}; recorded "
                      f"{r.recorded_at} (changeset {r.changeset}), {'applied' if r.applied else 'late'}",
                      highlight=False, soft_wrap=True)
    console.print(f"{len(found)} report(s), newest observation first")
