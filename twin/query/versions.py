"""A component's past as one user may see it: its versions (who wrote each, when it was current, what it changed)
and the version current at an instant (``as_of``). Versions that lay outside the user's area are not shown."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from twin.access.principal import Principal
from twin.errors import FeatureNotFoundError, OutOfScopeError
from twin.model.changes import VersionMeta
from twin.model.query import TimeInterval
from twin.model.reports import KeptReport
from twin.model.rows import Rows
from twin.query.model import instant
from twin.query.search import in_area
from twin.store import Store


@dataclass
class Versions:
    """Versions of one component, oldest first: their rows (masked for the reader) and when each was current."""

    rows: Rows
    meta: list[VersionMeta]

    def changed(self) -> list[list[str]]:
        """Per version, the fields (``geometry`` and ``status`` included) that differ from the version before it;
        every field for the first one shown."""
        names = [c for c in self.rows.columns if c not in ("fid", "key", "updated_at")]
        index = [self.rows.columns.index(n) for n in names]
        out, before = [], None
        for row in self.rows.rows:
            out.append([n for n, i in zip(names, index, strict=True) if before is None or row[i] != before[i]])
            before = row
        return [["geometry" if n == "geom" else n for n in fields] for fields in out]


def as_of_stamp(text: str) -> str:
    """An RFC 3339 instant (or a date: its end) as a store's microsecond UTC text, at the end of its millisecond."""
    return instant(text, name="as_of")[1].removesuffix("Z") + "999Z"


class History:
    """Reads of components' versions, each in one snapshot."""

    def __init__(self, store: Store, *, budget_s: float = 2.0) -> None:
        self.store = store
        self.budget_s = budget_s

    def versions(self, layer: str, key: str, who: Principal) -> Versions:
        """Every version of ``key`` that ``who`` may see; 404 when there is none (never stored, or never in their
        area)."""
        spec = self.store.catalogue[layer]
        with self.store.read(self.budget_s) as snap:
            rows, meta = snap.versions_of(spec.id, key)
        if not rows.rows:
            raise FeatureNotFoundError(key)
        rows = replace(rows, unmasked=who.unmasked(spec))
        keep = np.flatnonzero(in_area(rows, who))
        if not len(keep):
            raise OutOfScopeError(key)
        return Versions(rows.take([rows.rows[i] for i in keep]), [meta[i] for i in keep])

    def reports(self, layer: str, key: str, who: Principal, when: TimeInterval | None, limit: int
                ) -> list[KeptReport]:
        """The status reports kept of ``key`` (observed within ``when``, if given), newest observation first, for a
        user who may see the component (404 otherwise, as for :meth:`versions`); measured values of personal fields
        the user sees masked are left out."""
        spec = self.store.catalogue[layer]
        self.versions(spec.id, key, who)
        hidden = {f.name for f in spec.fields if f.sensitive is not None} - who.unmasked(spec)
        start = "" if when is None or when.start is None else when.start.removesuffix("Z") + "000Z"
        end = "~" if when is None or when.end is None else when.end.removesuffix("Z") + "999Z"
        with self.store.read(self.budget_s) as snap:
            found = snap.reports_of(spec.id, key, start, end, limit)
        if not hidden:
            return found
        return [r._replace(values={k: v for k, v in r.values.items() if k not in hidden}) for r in found]

    def at(self, layer: str, key: str, who: Principal, moment: str) -> Versions:
        """The version of ``key`` current at ``moment`` (a store time, :func:`as_of_stamp`), as one version;
        404 when the component did not exist then (or lay outside ``who``'s area)."""
        found = self.versions(layer, key, who)
        for row, meta in zip(found.rows.rows, found.meta, strict=True):
            if meta.valid_from <= moment and (meta.valid_to is None or moment < meta.valid_to):
                return Versions(found.rows.take([row]), [meta])
        raise FeatureNotFoundError(key)
