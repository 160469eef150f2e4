"""Status reports inside a store's write transaction, alike on every engine: which are refused, which change their
component (the newest, when newer than what the component already shows) and which are kept as history only."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

import geopandas as gpd
import orjson
import pandas as pd

from twin.catalogue import LayerSpec
from twin.crs import WGS84
from twin.model.reports import Rejected, Report, Reported
from twin.store.base import Changeset

#: Columns of ``twin_reports`` a store writes, in the order of :func:`report_rows`.
REPORT_COLUMNS = ("layer", "key", "status", "measured", "observed_at", "recorded_at", "source", "author",
                  "changeset", "applied")


class _NothingKept(Exception):
    """Every report of a batch was refused: raised inside the writer, whose transaction then writes nothing."""


class ReportWriter(Protocol):
    """What :func:`keep` needs of an engine's layer writer."""

    @property
    def pending(self) -> Changeset:
        ...

    def edit(self, frame: gpd.GeoDataFrame, fids: Sequence[int], keys: Sequence[str]) -> object:
        ...


W = TypeVar("W", bound=ReportWriter)


def keep(spec: LayerSpec, reports: Sequence[Report], author: str, writer: Callable[[], AbstractContextManager[W]],
         read: Callable[[W], tuple[gpd.GeoDataFrame, dict[str, str], list[tuple[str, str, str, object]]]],
         insert: Callable[[W, list[tuple[object, ...]]], None]) -> Reported:
    """One batch in one write transaction of ``writer()``: ``read`` gives the reported components, when each first
    existed and the reports already kept of them; the decided edits are written, the kept reports ``insert``-ed."""
    done = Reported()
    try:
        with writer() as w:
            decision = decide(spec, reports, *read(w))
            done.rejected = decision.rejected
            if not decision.kept:
                raise _NothingKept
            if decision.edits is not None:
                w.edit(decision.edits, decision.fids, decision.keys)
            cs = w.pending
            insert(w, report_rows(spec.id, decision.kept, cs.id, cs.time, author))
    except _NothingKept:
        return done
    done.changesets = [cs.id]
    done.applied = sum(a for _, a in decision.kept)
    done.late = len(decision.kept) - done.applied
    return done


def insert_sql(table: str, mark: str) -> str:
    """``INSERT`` of :func:`report_rows` into ``table`` with the engine's parameter ``mark``."""
    return (f"INSERT INTO {table} ({', '.join(f'{chr(34)}{c}{chr(34)}' for c in REPORT_COLUMNS)}) "
            f"VALUES ({', '.join([mark] * len(REPORT_COLUMNS))})")


@dataclass
class Decision:
    """The reports to keep (with whether each was applied), the refused ones, and the edits to write."""

    kept: list[tuple[Report, bool]] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    edits: gpd.GeoDataFrame | None = None
    fids: list[int] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)


def decide(spec: LayerSpec, reports: Sequence[Report], current: gpd.GeoDataFrame, first_seen: Mapping[str, str],
           known: Sequence[tuple[str, str, str, object]]) -> Decision:
    """``current``: the reported components as stored (a store frame); ``first_seen``: when each first existed;
    ``known``: ``(key, observed_at, source, applied)`` of the reports of these components already kept."""
    latest: dict[str, str] = {}
    for k, at, _, was_applied in known:
        if was_applied and at > latest.get(k, ""):
            latest[k] = at
    recorded = {(k, at, src) for k, at, src, _ in known}
    out = Decision()
    records = current.drop(columns=current.geometry.name).to_dict("records")
    geometries = current.geometry.to_numpy()
    rows = {str(r["key"]): i for i, r in enumerate(records)}
    accepted: list[Report] = []
    seen = set(recorded)
    for r in reports:
        if r.key not in rows:
            out.rejected.append(Rejected(r.line, r.key, f"no component with key {r.key!r} in {spec.id}"))
        elif r.observed_at < first_seen.get(r.key, ""):
            out.rejected.append(Rejected(r.line, r.key, f"observed at {r.observed_at}, before the component "
                                                        f"existed ({first_seen[r.key]})"))
        elif (r.key, r.observed_at, r.source) in seen:
            out.rejected.append(Rejected(r.line, r.key, "a duplicate: a report of this component at this time "
                                                        f"from {r.source!r} is already recorded"))
        else:
            seen.add((r.key, r.observed_at, r.source))
            accepted.append(r)
    newest: dict[str, Report] = {}
    for r in accepted:
        if r.key not in newest or r.observed_at >= newest[r.key].observed_at:
            newest[r.key] = r
    applied = [r for key, r in newest.items()
               if r.observed_at > max(latest.get(key, ""), str(records[rows[key]]["valid_from"]))]
    chosen = {id(r) for r in applied}
    out.kept = [(r, id(r) in chosen) for r in accepted]
    if applied:
        names = ("status", *spec.field_names)
        edits = []
        for r in applied:
            values = {c: records[rows[r.key]][c] for c in names}
            values.update(r.values)
            if r.status is not None:
                values["status"] = r.status
            values["updated_at"] = r.observed_at[:23] + "Z"
            edits.append(values)
            out.fids.append(int(records[rows[r.key]]["fid"]))
            out.keys.append(r.key)
        out.edits = gpd.GeoDataFrame(pd.DataFrame(edits), geometry=[geometries[rows[r.key]] for r in applied],
                                     crs=WGS84)
    return out


def report_rows(layer: str, kept: Sequence[tuple[Report, bool]], changeset: int, recorded_at: str, author: str
                ) -> list[tuple[object, ...]]:
    """The ``twin_reports`` rows of the reports kept, in :data:`REPORT_COLUMNS` order."""
    return [(layer, r.key, r.status, orjson.dumps(r.values).decode(), r.observed_at, recorded_at, r.source, author,
             changeset, applied) for r, applied in kept]
