"""The kept sums behind the indicators: per indicator, committee and changeset, what changed (``n`` components that
pass, ``v`` their value, ``d`` the whole of a share), so that an area's value as of any changeset is a sum of rows,
never a count over the components.

One process of the deployment brings them up to date from the change log (:meth:`Keeper.sync`, under the store's
``exclusive`` lock): it reads only the versions written or ended since the changeset the sums reflect
(:meth:`~twin.store.base.Snapshot.spans`), places them in committees and adds one row per (indicator, committee,
changeset) whose sums moved. Every so often (after :data:`CHECKPOINT` rows) it also writes each committee's totals
as a *base* at the latest changeset, so a value as of any moment reads one base and the rows after it. An indicator
whose file changed, or whose areas were redrawn, is rebuilt from the whole history.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import cast

import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray

from twin.model.changes import Spans
from twin.model.filter import Filter
from twin.store import Snapshot, Store
from twin.store.base import AccessDB, AccessWriter
from twin.vitals.areas import AreaIndex
from twin.vitals.spec import LEVELS, Indicator, Indicators, Measure

log = logging.getLogger("twin.vitals")
#: After this many rows of changes since an indicator's last base, a new base is written.
CHECKPOINT = 20_000
_SUMS = ["n", "v", "d"]


@dataclass(frozen=True)
class Kept:
    """An indicator's sums per committee as of a changeset."""

    changeset: int
    sums: dict[str, tuple[float, float, float]]  # committee key -> (n, v, d)


class Keeper:
    """Keeps the indicators' sums in the store's tables and reads them back as of any changeset."""

    def __init__(self, store: Store, indicators: Indicators, db: AccessDB, budget_s: float = 3600.0) -> None:
        self.store = store
        self.indicators = indicators
        self.db = db
        self.budget_s = budget_s
        self._areas: AreaIndex | None = None
        self._lock = threading.Lock()

    # -- areas --------------------------------------------------------------------------------
    def areas(self, fresh: bool = False) -> AreaIndex:
        """The areas, read again once the store's feed has published a change to an area layer (no I/O per call:
        requests and rules ask for them all the time); with ``fresh``, checked against the store itself (what
        keeping the sums needs, whatever the feed has seen)."""
        levels = range(len(LEVELS))
        with self._lock:
            built = self._areas
            if built is not None:
                if fresh:
                    now = tuple(self.store.last_changeset(lv) if lv in set(self.store.catalogue) else 0
                                for lv in LEVELS)
                    stale = now != built.versions
                else:
                    seen = [self.store.feed.version(lv) or 0 for lv in LEVELS]
                    stale = any(seen[i] > built.versions[i] for i in levels)
                if not stale:
                    return built
            self._areas = AreaIndex(self.store)
            return self._areas

    # -- keeping ------------------------------------------------------------------------------
    def layers(self) -> list[str]:
        return sorted({i.layer.id for i in self.indicators.values()})

    def sync(self, layer: str | None = None, wait: bool = True) -> bool:
        """Bring the sums of ``layer``'s indicators (of all, by default) up to its latest changeset. One process of
        the deployment does it at a time; unless ``wait``, the others go on at once and get ``False``."""
        done = True
        for name in [layer] if layer is not None else self.layers():
            if self.indicators.of_layer(name):
                done &= self._sync(name, wait)
        return done

    def _sync(self, layer: str, wait: bool) -> bool:
        with self.store.exclusive(f"vitals:{layer}", wait) as held:
            if not held:
                return False
            areas = self.areas(fresh=True)
            inds = self.indicators.of_layer(layer)
            state = self._state([i.id for i in inds])
            groups: dict[int, list[Indicator]] = {}
            for ind in inds:
                found = state.get(ind.id)
                since = found[0] if found is not None and found[1] == _signature(ind, areas) else -1
                groups.setdefault(since, []).append(ind)
            with self.store.read(self.budget_s) as snap:
                last = snap.last_changeset(layer)
                plans = [(since, group, _tally(snap, areas, layer, group, max(since, 0)))
                         for since, group in groups.items() if since < last or since < 0]
            if not plans:
                return True
            with self.db.write() as w:
                for since, group, frame in plans:
                    self._write(w, areas, group, since, last, frame)
            log.info("vital signs of %s kept up to changeset %d", layer, last)
            return True

    def _state(self, ids: list[str]) -> dict[str, tuple[int, str, int, int]]:
        rows = self.db.read("SELECT indicator, changeset, signature, base, pending FROM {vitals_state}")
        return {r[0]: (int(r[1]), str(r[2]), int(r[3]), int(r[4])) for r in rows if r[0] in ids}

    def _write(self, w: AccessWriter, areas: AreaIndex, group: list[Indicator], since: int, last: int,
               frame: pd.DataFrame) -> None:
        state = {r[0]: (int(r[1]), int(r[2])) for r in w.execute(
            "SELECT indicator, base, pending FROM {vitals_state}").rows}
        for k, ind in enumerate(group):
            rows = frame[frame.ind == k]
            if since < 0:
                w.execute("DELETE FROM {vitals} WHERE indicator = ?", [ind.id])
                base, pending = 0, 0
            else:
                base, pending = state.get(ind.id, (0, 0))
            w.executemany("INSERT INTO {vitals} (indicator, area, changeset, base, n, v, d) "
                          "VALUES (?, ?, ?, 0, ?, ?, ?)",
                          [(ind.id, areas.committees[c], int(cs), float(n), float(v), float(d))
                           for c, cs, n, v, d in rows[["area", "changeset", *_SUMS]].itertuples(index=False)])
            pending += len(rows)
            if since < 0 or pending > CHECKPOINT:
                totals = _sum_rows(w.execute(_AS_OF, [ind.id, base, base, last]).rows)
                w.execute("DELETE FROM {vitals} WHERE indicator = ? AND base = 1 AND changeset = ?", [ind.id, last])
                w.executemany("INSERT INTO {vitals} (indicator, area, changeset, base, n, v, d) "
                              "VALUES (?, ?, ?, 1, ?, ?, ?)",
                              [(ind.id, area, last, *sums) for area, sums in totals.items()])
                base, pending = last, 0
            w.execute("DELETE FROM {vitals_state} WHERE indicator = ?", [ind.id])
            w.execute("INSERT INTO {vitals_state} (indicator, changeset, signature, base, pending) "
                      "VALUES (?, ?, ?, ?, ?)", [ind.id, last, _signature(ind, areas), base, pending])

    # -- reading ------------------------------------------------------------------------------
    def kept(self, indicator: str, changeset: int | None = None) -> Kept | None:
        """The indicator's sums per committee as of ``changeset`` (the latest kept, by default, and never past it);
        ``None`` while it has never been kept."""
        state = self.db.read("SELECT changeset FROM {vitals_state} WHERE indicator = ?", [indicator])
        if not state:
            return None
        upto = int(state[0][0]) if changeset is None else min(int(state[0][0]), changeset)
        found = self.db.read("SELECT max(changeset) FROM {vitals} WHERE indicator = ? AND base = 1 AND changeset <= ?",
                             [indicator, upto])
        base = int(found[0][0]) if found and found[0][0] is not None else 0
        return Kept(upto, _sum_rows(self.db.read(_AS_OF, [indicator, base, base, upto])))

    def state(self) -> dict[str, int]:
        """The changeset each indicator's sums reflect."""
        return {str(r[0]): int(r[1]) for r in self.db.read("SELECT indicator, changeset FROM {vitals_state}")}


#: An indicator's sums per committee from a base (at a changeset, 0 for none) and the changes after it up to one.
_AS_OF = ("SELECT area, sum(n), sum(v), sum(d) FROM {vitals} WHERE indicator = ? AND ((base = 1 AND changeset = ?) "
          "OR (base = 0 AND changeset > ? AND changeset <= ?)) GROUP BY area")


def _sum_rows(rows: list[tuple[object, ...]]) -> dict[str, tuple[float, float, float]]:
    out: dict[str, tuple[float, float, float]] = {}
    for area, n, v, d in rows:
        sums = (float(n or 0), float(v or 0), float(d or 0))  # type: ignore[arg-type]
        if any(abs(s) > 1e-9 for s in sums):
            out[str(area)] = sums
    return out


def _signature(ind: Indicator, areas: AreaIndex) -> str:
    return f"{ind.signature}:{areas.signature}"


def _conditions(group: list[Indicator]) -> tuple[list[Filter | None], list[tuple[int, int | None]]]:
    """The distinct conditions a group needs, and per indicator the positions of its filter and its whole."""
    conds: list[Filter | None] = []
    at: list[tuple[int, int | None]] = []

    def slot(f: Filter | None) -> int:
        for i, c in enumerate(conds):
            if c == f:
                return i
        conds.append(f)
        return len(conds) - 1

    for ind in group:
        at.append((slot(ind.where), slot(ind.whole) if ind.spec.measure == Measure.share else None))
    return conds, at


def _tally(snap: Snapshot, areas: AreaIndex, layer: str, group: list[Indicator], since: int) -> pd.DataFrame:
    """Changes of the group's sums per (indicator position, committee index, changeset) from the versions written
    or ended after ``since``."""
    conds, at = _conditions(group)
    fields = sorted({i.spec.field for i in group if i.spec.field is not None})
    parts: list[pd.DataFrame] = []
    for chunk in snap.spans(layer, since, conds, fields):
        pieces = list(_chunk(chunk, areas, group, at, fields, since))
        if pieces:  # summed per chunk: a chunk's rows shrink to at most one per indicator, committee and changeset
            parts.append(pd.concat(pieces).groupby(["ind", "area", "changeset"], as_index=False, sort=False)[_SUMS]
                         .sum())
    if not parts:
        return pd.DataFrame({"ind": [], "area": [], "changeset": [], "n": [], "v": [], "d": []})
    frame = pd.concat(parts).groupby(["ind", "area", "changeset"], as_index=False, sort=False)[_SUMS].sum()
    moved = (frame[_SUMS].abs() > 1e-9).any(axis=1)
    return frame[moved]


def _chunk(chunk: Spans, areas: AreaIndex, group: list[Indicator], at: list[tuple[int, int | None]],
           fields: list[str], since: int) -> Iterator[pd.DataFrame]:
    xy = chunk.rows.point_xy()
    geoms: NDArray[np.object_] = shapely.points(xy) if xy is not None else chunk.rows.geometries()  # type: ignore
    place = areas.place(geoms)
    pieces = areas.split(geoms) if any(i.by_length for i in group) else None
    values = {f: np.array([np.nan if x is None else float(cast(float, x)) for x in chunk.rows.column(f)])
              for f in fields}
    # each version adds at the changeset that wrote it and takes away at the one that ended it, when after since
    events = [(chunk.start, 1.0, chunk.start > since), (chunk.end, -1.0, (chunk.end > since) & (chunk.end > 0))]
    for k, ind in enumerate(group):
        where, whole = at[k]
        passes = chunk.holds[:, where]
        v = np.zeros(len(passes))
        if ind.spec.field is not None:
            vals = values[ind.spec.field]
            if ind.spec.measure == Measure.mean:
                passes = passes & ~np.isnan(vals)
            v = np.where(passes, np.nan_to_num(vals), 0.0)
        if whole is not None:  # a share counts, of the whole, those that also pass
            passes = passes & chunk.holds[:, whole]
        d = chunk.holds[:, whole].astype(float) if whole is not None else np.zeros(len(passes))
        n = passes.astype(float)
        keep = place >= 0
        for changeset, sign, when in events:
            sel = keep & when & ((n != 0) | (v != 0) | (d != 0))
            if sel.any():
                yield pd.DataFrame({"ind": k, "area": place[sel], "changeset": changeset[sel], "n": sign * n[sel],
                                    "v": sign * v[sel] * (not ind.by_length), "d": sign * d[sel]})
            if ind.by_length and pieces is not None:
                line, com, m = pieces
                sel = when[line] & passes[line]
                if sel.any():
                    yield pd.DataFrame({"ind": k, "area": com[sel], "changeset": changeset[line][sel], "n": 0.0,
                                        "v": sign * m[sel], "d": 0.0})
