"""The change feed as one user sees it: the events of the layers they may read, inside their area, masked.

An update that takes a component out of the user's area reaches them as ``leave`` (its key only), so that a
client mirroring its area drops it; events outside the area move the cursor on without being shown.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import NamedTuple, cast

import shapely
import shapely.geometry

from twin.access.principal import Principal
from twin.errors import CursorGoneError, InvalidQueryError
from twin.model.changes import BEYOND, LayerLog, Position
from twin.query import encode
from twin.query.crs import CRS84
from twin.query.search import in_area
from twin.store import Store

DEFAULT_PAGE = 1_000
MAX_PAGE = 10_000
#: A diff folds the events between its two instants in memory: at most this many.
MAX_DIFF_EVENTS = 1_000_000


class _Event(NamedTuple):
    position: Position
    layer: str
    op: str
    key: str
    version: int
    feature: dict[str, object] | None


@dataclass
class ChangePage:
    """Events after a cursor, and where the next page starts (``caught_up``: nothing more was committed)."""

    changes: list[dict[str, object]]
    next: Position
    caught_up: bool


class ChangeReader:
    """Pages of the change log for a user, each read in one snapshot."""

    def __init__(self, store: Store, *, budget_s: float = 5.0) -> None:
        self.store = store
        self.catalogue = store.catalogue
        self.budget_s = budget_s

    def end(self) -> Position:
        """The position after the latest event (where a reader starts who wants only what comes next)."""
        with self.store.read(self.budget_s) as snap:
            return Position(snap.log_end())

    def page(self, who: Principal, since: Position, limit: int = DEFAULT_PAGE,
             layers: Sequence[str] | None = None, until: int | None = None) -> ChangePage:
        """The events after ``since`` that ``who`` may see, at most ``limit``, in log order (up to changeset
        ``until`` when given: ``caught_up`` then means it was reached)."""
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidQueryError(f"limit must be between 1 and {MAX_PAGE}, not {limit}")
        names = who.check_read_any([self.catalogue[n].id for n in layers] if layers else list(self.catalogue))
        with self.store.read(self.budget_s) as snap:
            end = snap.log_end()
            upto = end if until is None else min(until, end)
            if since.changeset > end:
                raise CursorGoneError(f"cursor {since} is past this store's last change ({end}): it was given by "
                                      "another store or before a restore; read the layers again, then follow from "
                                      f"cursor {end}")
            changesets = snap.log_changesets(since, upto, names, limit)
            horizon = Position(changesets[-1].id if len(changesets) == limit else upto)
            events: list[_Event] = []
            for layer in dict.fromkeys(c.layer for c in changesets):
                log = snap.layer_log(layer, since, horizon.changeset, limit)
                found, cut = self._events(layer, log, who, limit)
                events += found
                horizon = min(horizon, cut)
        shown = sorted((e for e in events if e.position <= horizon), key=lambda e: e.position)
        if len(shown) > limit:
            shown = shown[:limit]
            horizon = shown[-1].position
        times = {c.id: (c.time, c.kind) for c in changesets}
        changes = [{"id": str(e.position), "changeset": e.position.changeset, "time": times[e.position.changeset][0],
                    "kind": times[e.position.changeset][1], "layer": e.layer, "key": e.key, "op": e.op,
                    "version": e.version, **({"feature": e.feature} if e.feature is not None else {})}
                   for e in shown]
        return ChangePage(changes, horizon, horizon == Position(upto))

    def _events(self, layer: str, log: LayerLog, who: Principal, limit: int) -> tuple[list[_Event], Position]:
        """The events of one layer's log that ``who`` sees, and the position up to which the log is complete."""
        spec = self.catalogue[layer]
        written_at = [Position(w[0], r[0]) for w, r in zip(log.written_at, log.written.rows, strict=True)]
        ended_at = [Position(e[0], r[0]) for e, r in zip(log.ended_at, log.ended.rows, strict=True)]
        cut = BEYOND
        for positions in (written_at, ended_at):
            if len(positions) >= limit:
                cut = min(cut, positions[-1])
        new_in, old_in = in_area(log.written, who), in_area(log.ended, who)
        superseded = {p: bool(old_in[i]) for i, (p, (_, _, op)) in enumerate(zip(ended_at, log.ended_at, strict=True))
                      if op == "update"}
        rows = replace(log.written, unmasked=who.unmasked(spec))
        shown = [i for i, p in enumerate(written_at) if new_in[i]]
        features = encode.features(encode.prepare(rows.take([rows.rows[i] for i in shown]), CRS84)) if shown else []
        by_row = dict(zip(shown, features, strict=True))
        keys = log.written.column("key")
        out: list[_Event] = []
        for i, p in enumerate(written_at):
            version = log.written_at[i][1]
            if i in by_row:
                out.append(_Event(p, layer, "update" if p in superseded else "create", str(keys[i]), version,
                                  by_row[i]))
            elif superseded.get(p):
                out.append(_Event(p, layer, "leave", str(keys[i]), version, None))
        ended_keys = log.ended.column("key")
        for i, p in enumerate(ended_at):
            _, version, op = log.ended_at[i]
            if op == "delete" and old_in[i]:
                out.append(_Event(p, layer, "delete", str(ended_keys[i]), version, None))
        return out, cut


@dataclass
class Diff:
    """What changed between two instants, one entry per component (``added``, ``removed`` or ``changed``), as one
    user sees it; ``truncated`` when more than the limit changed."""

    start: int
    end: int
    entries: list[dict[str, object]]
    truncated: bool


def diff(reader: ChangeReader, who: Principal, start: str, end: str, layers: Sequence[str] | None = None,
         bbox: tuple[float, float, float, float] | None = None, limit: int = DEFAULT_PAGE) -> Diff:
    """Components that differ between the store at ``start`` and at ``end`` (store times, :func:`as_of_stamp`):
    the change log between the two, folded per component (one created and deleted in between is no difference).
    ``bbox`` keeps the components whose geometry at either end meets it."""
    if end < start:
        raise InvalidQueryError(f"the diff ends ({end}) before it starts ({start})")
    with reader.store.read(reader.budget_s) as snap:
        first, last = snap.log_at(start), snap.log_at(end)
    folded: dict[tuple[str, str], dict[str, object]] = {}
    position = Position(first)
    seen = 0
    while True:
        page = reader.page(who, position, MAX_PAGE, layers, until=last)
        seen += len(page.changes)
        if seen > MAX_DIFF_EVENTS:
            raise InvalidQueryError(f"more than {MAX_DIFF_EVENTS:,} changes lie between {start} and {end}: diff a "
                                    "shorter window or fewer layers, or follow /changes from a cursor")
        for c in page.changes:
            before = cast(int, c["version"]) - (c["op"] in ("update", "leave"))  # delete: the version it ended
            entry = folded.setdefault((str(c["layer"]), str(c["key"])), {"first": c["op"], "from": before})
            entry.update(last=c["op"], to=c["version"], feature=c.get("feature"))
        position = page.next
        if page.caught_up:
            break
    box = None if bbox is None else shapely.box(*bbox)
    entries: list[dict[str, object]] = []
    for (layer, key), e in folded.items():
        born, gone = e["first"] == "create", e["last"] in ("delete", "leave")
        if born and gone:
            continue
        change = "added" if born else "removed" if gone else "changed"
        if box is not None and not _meets(reader, who, layer, key, e, box):
            continue
        entries.append({"layer": layer, "key": key, "change": change,
                        **({"fromVersion": e["from"]} if not born else {}), "toVersion": e["to"],
                        **({"feature": e["feature"]} if not gone else {})})
    return Diff(first, last, entries[:limit], len(entries) > limit)


def _meets(reader: ChangeReader, who: Principal, layer: str, key: str, entry: dict[str, object],
           box: shapely.Geometry) -> bool:
    """Whether the component met ``box`` at the end of the diff, or in the last version the user saw of it."""
    feature = entry.get("feature")
    if isinstance(feature, dict):
        return bool(shapely.intersects(box, shapely.geometry.shape(feature["geometry"])))
    with reader.store.read(reader.budget_s) as snap:
        rows, _ = snap.versions_of(layer, key)
    seen = rows.geometries()[in_area(rows, who)]
    return bool(len(seen)) and bool(shapely.intersects(box, seen[-1]))
