"""Spotting components imported twice: new rows that name a component the layer already has, nearby.

Location keys recognise a component whose geometry is unchanged; the same hydrant or district
surveyed again (another source, another offset, another digitisation) has a new geometry and would
be inserted beside the old one. The layer's identity fields (``identity`` in ``layers/*.yaml``, by
default ``name``) tell them apart from real new components: a row to be inserted whose identity
values equal those of an existing component within :data:`NEAR_METRES` (between the shapes) is
counted as a likely duplicate. Existing components are read with the store's bounding-box query,
tile by tile around the new rows, so the check stays bounded on large layers; components written by
the import itself are not in the store's committed state and never match.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray

from twin.catalogue import LayerSpec
from twin.geodesy import METRES_PER_DEGREE, to_local
from twin.store.base import Store, WritePlan

#: New rows match existing components with the same identity at most this far away (metres, shape to shape):
#: more than the GCJ-02 offset (~500 m in Shanghai), so Amap data imported as WGS84 is caught too.
NEAR_METRES = 600.0
#: Existing components are read per tile of this size (degrees) around the new rows.
TILE_DEGREES = 0.05
_SEP = "\x1f"


@dataclass(frozen=True)
class Duplicate:
    """One new row and the existing component it repeats."""

    row: int
    values: dict[str, str]
    key: str
    metres: float


def identities(frame: pd.DataFrame, fields: tuple[str, ...]) -> NDArray[np.object_]:
    """Each row's identity as one comparable string (trimmed, case-folded), ``None`` where a field is empty."""
    missing = np.zeros(len(frame), dtype=bool)
    parts = []
    for name in fields:
        col = frame[name].astype(object)
        text = col.map(lambda v: "" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v).strip())
        missing |= (text == "").to_numpy()
        parts.append(text.str.casefold())
    # pandas takes a list of Series as ``others``; pandas-stubs do not say so
    joined = parts[0].str.cat(parts[1:], sep=_SEP) if len(parts) > 1 else parts[0]  # type: ignore[arg-type]
    out = np.array(joined.tolist(), dtype=object)
    out[missing] = None
    return out


class DuplicateCheck:
    """Counts, chunk by chunk, the rows an import would insert that repeat existing components."""

    def __init__(self, store: Store, spec: LayerSpec) -> None:
        self.store, self.spec = store, spec
        self.fields = spec.identity_fields
        self.active = bool(self.fields) and store.count(spec.id) > 0
        self.count = 0
        self.first: Duplicate | None = None

    def add(self, plan: WritePlan, rows: NDArray[np.int64]) -> None:
        """Look for the existing components that the chunk's inserts repeat."""
        if not self.active:
            return
        new = np.flatnonzero(plan.action == "insert")
        ids = identities(plan.frame.iloc[new], self.fields)
        new, ids = new[ids != None], ids[ids != None]  # noqa: E711
        if not len(new):
            return
        geoms = plan.frame.geometry.to_numpy()[new]
        centres = shapely.get_coordinates(shapely.centroid(geoms))
        tiles = pd.Series(np.arange(len(new))).groupby(
            [np.floor(centres[:, 0] / TILE_DEGREES), np.floor(centres[:, 1] / TILE_DEGREES)])
        best = np.full(len(new), np.inf)
        match = np.full(len(new), -1, dtype=np.int64)
        keys: list[str] = []
        for _, members in tiles:
            idx = members.to_numpy()
            found = self._nearest_same(geoms[idx], ids[idx], keys)
            if found is not None:
                best[idx], match[idx] = found
        hits = np.flatnonzero(best <= NEAR_METRES)
        self.count += len(hits)
        if len(hits):
            i = int(hits[np.argmin(rows[new][hits])])
            row = int(rows[new][i])
            if self.first is None or row < self.first.row:
                values = {f: str(plan.frame[f].iloc[new[i]]) for f in self.fields}
                self.first = Duplicate(row, values, keys[int(match[i])], float(best[i]))

    def _nearest_same(self, geoms: NDArray[np.object_], ids: NDArray[np.object_],
                      keys: list[str]) -> tuple[NDArray[np.float64], NDArray[np.int64]] | None:
        """Per new row, the distance to the nearest existing component with its identity (and that component's
        index in ``keys``, which it extends); ``None`` when no existing component around shares one."""
        minx, miny, maxx, maxy = shapely.total_bounds(geoms).tolist()
        lat0 = (miny + maxy) / 2
        dy = NEAR_METRES / METRES_PER_DEGREE * 1.01
        dx = dy / np.cos(np.radians(lat0))
        existing = self.store.features(self.spec.id, bbox=(minx - dx, miny - dy, maxx + dx, maxy + dy))
        if existing.empty:
            return None
        pairs = pd.DataFrame({"new": np.arange(len(ids)), "id": ids}).merge(
            pd.DataFrame({"old": np.arange(len(existing)), "id": identities(existing, self.fields)}), on="id")
        if pairs.empty:
            return None
        lon0 = (minx + maxx) / 2
        a = to_local(geoms[pairs["new"].to_numpy()], lon0, lat0)
        b = to_local(existing.geometry.to_numpy()[pairs["old"].to_numpy()], lon0, lat0)
        pairs["metres"] = shapely.distance(a, b)
        nearest = pairs.sort_values("metres").drop_duplicates("new")
        best = np.full(len(ids), np.inf)
        match = np.full(len(ids), -1, dtype=np.int64)
        best[nearest["new"].to_numpy()] = nearest["metres"].to_numpy()
        match[nearest["new"].to_numpy()] = len(keys) + nearest["old"].to_numpy()
        keys.extend(existing["key"].astype(str).tolist())
        return best, match

    def warning(self) -> str | None:
        """The report's warning: how many, the first example, and what to do instead."""
        if not self.count or self.first is None:
            return None
        d = self.first
        named = ", ".join(f"{k} {v!r}" for k, v in d.values.items())
        where = "overlapping it" if d.metres < 0.5 else f"{d.metres:,.0f} m away"
        return (f"{self.count:,} new row(s) repeat components the layer already has (same "
                f"{', '.join(self.fields)} within {NEAR_METRES:,.0f} m): for example row {d.row} ({named}) and "
                f"{d.key}, {where}. Imported as they are, they become duplicates. An import updates a component "
                "in place only when its geometry is unchanged (to about 1 cm): if these rows are new surveys of "
                "the same components, do not import them again; change an existing component by its key "
                "(store.edit(KEY, properties=..., geometry=...) keeps the key and its history)")
