"""``twin audit`` (query the audit trail) and the trail of the command line's own writes.

``twin import``, ``twin export`` and ``twin demo`` record what they did (or why they did not) as the
local operator, ``local:<OS user>``, in the same access database the service writes to: every outcome,
including errors nobody expected and an interrupted command. A command on a store that does not exist
(and whose access database does not either) records nothing, since recording would create the files.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated

import orjson
import typer
from rich.markup import escape
from rich.table import Table

from twin.access.audit import AuditEvent, AuditLog
from twin.access.users import now
from twin.cli.access import opened_gate, operator
from twin.cli.common import LayersOption, StoreOption, console, err_console, friendly, opened, settings
from twin.errors import ImportRejectedError, InvalidQueryError, TwinError
from twin.settings import TwinSettings
from twin.store import exists

_AGE = re.compile(r"^(\d{1,6})([mhd])\Z")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}
_COLOURS = {"ok": "green", "denied": "yellow", "rejected": "yellow", "failed": "red"}
#: Errors that refuse the user's input, recorded as ``rejected``; any other error is ``failed``.
_REFUSALS = (ImportRejectedError, InvalidQueryError)


def register(app: typer.Typer) -> None:
    app.command("audit")(audit)


def parse_time(text: str, flag: str) -> str:
    """An ISO 8601 time (UTC unless it says otherwise) or an age (``30m``, ``24h``, ``7d``), as the trail writes
    times, so that they compare as text."""
    text = text.strip()
    age = _AGE.match(text)
    if age:
        moment = now() - timedelta(**{_UNITS[age.group(2)]: int(age.group(1))})
    else:
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise InvalidQueryError(f"{flag} {text!r}: give an ISO 8601 time (2026-11-25, 2026-11-25T08:00:00Z) "
                                    "or an age such as 30m, 24h or 7d") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:23] + "Z"


def _row(e: AuditEvent) -> list[str]:
    colour = _COLOURS.get(e.outcome, "white")
    request = " ".join(v for v in (e.method, e.path) if v)
    cells = (e.time, e.user or "(anonymous)", e.role or "", e.action)
    tail = ("" if e.status is None else str(e.status), e.layer or "", "" if e.count is None else f"{e.count:,}",
            request, e.detail or "")
    return [*map(escape, cells), f"[{colour}]{e.outcome}[/]", *map(escape, tail)]


@friendly
def audit(user: Annotated[str | None, typer.Option(help="Only this user (local:NAME for the command line).")
                          ] = None,
          action: Annotated[str | None, typer.Option(help="login, import, edit, delete, export, read, user or "
                                                          "denied.")] = None,
          outcome: Annotated[str | None, typer.Option(help="ok, denied, rejected or failed.")] = None,
          layer: Annotated[str | None, typer.Option(help="Only this layer.")] = None,
          since: Annotated[str | None, typer.Option(help="From this time: ISO 8601 (UTC unless it says otherwise) "
                                                         "or an age such as 24h or 7d.")] = None,
          until: Annotated[str | None, typer.Option(help="Up to this time, the same way.")] = None,
          limit: Annotated[int, typer.Option(help="How many events, newest first (1 to 10000).")] = 100,
          as_json: Annotated[bool, typer.Option("--json", help="One JSON object a line instead of a table.")] = False,
          store: StoreOption = None, layers: LayersOption = None) -> None:
    """Query the audit trail: imports, edits, exports, logins, user changes and denied requests."""
    start = parse_time(since, "--since") if since else None
    end = parse_time(until, "--until") if until else None
    with opened_gate(settings(store, layers)) as gate:
        events = gate.audit.query(user=user, action=action, outcome=outcome, layer=layer, since=start, until=end,
                                  limit=limit)
    if as_json:
        for e in events:
            typer.echo(orjson.dumps(asdict(e)).decode())
        return
    table = Table("time (UTC)", "user", "role", "action", "outcome", "status", "layer", "count", "request",
                  "detail")
    for e in events:
        table.add_row(*_row(e))
    console.print(table)
    console.print(f"{len(events)} event{'' if len(events) == 1 else 's'}, newest first", highlight=False)


def record(cfg: TwinSettings, action: str, outcome: str, *, layer: str | None, count: int | None = None,
           detail: str = "") -> None:
    """Write one event as the local operator. A trail that cannot be written is a warning: the command's own
    result (or error) matters more."""
    try:
        if not exists(cfg.store):
            return  # nothing was made, so there is nothing to keep a trail of
        with opened(cfg) as store:
            log = AuditLog(store.access(cfg.access_db))
            log.record(action, outcome, user=operator(), role="admin", layer=layer, count=count, detail=detail[:500])
            log.close()
            log.db.close()
    except (OSError, TwinError) as exc:
        err_console.print(f"[yellow]warning:[/] could not write the audit trail: {exc}", highlight=False)


@dataclass
class Done:
    """What an audited command reports when it succeeds."""

    count: int | None = None
    detail: str = ""


@contextmanager
def audited(cfg: TwinSettings, action: str, layer: str | None, subject: str) -> Iterator[Done]:
    """Record the command in the block: ``ok`` with what it set on :class:`Done`, ``rejected`` when the
    input was refused, ``failed`` with the error otherwise, interruptions included (the error is raised on)."""
    done = Done()
    try:
        yield done
    except BaseException as exc:
        if isinstance(exc, _REFUSALS):
            outcome, why = "rejected", str(exc)
        elif isinstance(exc, KeyboardInterrupt):
            outcome, why = "failed", "interrupted"
        else:
            outcome, why = "failed", str(exc) if isinstance(exc, TwinError) else f"{type(exc).__name__}: {exc}"
        record(cfg, action, outcome, layer=layer, detail=f"{subject}: {why}")
        raise
    record(cfg, action, "ok", layer=layer, count=done.count, detail=done.detail)
