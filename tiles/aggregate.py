"""Low-zoom aggregates, precomputed per zoom in the store and kept up to date from changesets.

Below a layer's ``min_zoom`` a tile carries grid cells instead of components: each tile of zoom ``z`` is
cut into ``2**depth`` x ``2**depth`` cells, which are the tiles of matrix ``z + depth``, so cells nest in
tiles and every component is counted in exactly one cell (the one holding its representative point)
at every zoom. Counts by status and a measure (length in metres for lines, area in m² for polygons) are
kept for every level in ``twin_tiles_cells``; line and polygon layers also keep a generalised network or
outline per cell in ``twin_tiles_shapes`` (see :mod:`tiles.shapes`). ``twin_tiles_state`` records the
changeset each layer's aggregates reflect; :meth:`Aggregates.sync` applies what changed since then.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely

from tiles import shapes as shp
from tiles.grid import TileID, cell_bounds, cell_index, cell_size, lonlat_box, to_mercator, xy_to_mercator
from twin.catalogue import GeometryKind
from twin.store import Snapshot, Store
from twin.store.base import AggregateWriter, CellRow

log = logging.getLogger("tiles")
#: Cells per tile side are ``2**DEPTH``: 16 x 16 cells of 256 tile units.
DEPTH = 4
_VERSION = 2
_CELL_COLUMNS = ["layer", "level", "cx", "cy", "status", "n", "measure", "sx", "sy"]
#: Above this many touched cells a sync rebuilds a layer's shapes from a full scan.
_REBUILD_CELLS = 20_000
_EARTH_RADIUS = 6378137.0
@dataclass(frozen=True)
class Plan:
    """How one layer is aggregated: its kind, the zooms aggregated and the cell levels kept."""

    layer: str
    kind: str  # "point", "line" or "polygon"
    min_zoom: int
    depth: int

    @property
    def fine(self) -> int:
        """The finest cell level: the cells of the last aggregated zoom."""
        return self.min_zoom - 1 + self.depth

    @property
    def signature(self) -> str:
        return f"{self.kind}:{self.min_zoom}:{self.depth}:{_VERSION}"

    @property
    def has_shapes(self) -> bool:
        return self.kind != "point"


def representative(merc: np.ndarray, kind: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Representative point (x, y, Web Mercator) and measure (m or m²) of each member."""
    rep = shapely.point_on_surface(merc)
    x, y = shapely.get_x(rep), shapely.get_y(rep)
    scale = 1.0 / np.cosh(y / _EARTH_RADIUS)  # Web Mercator's scale factor at each latitude
    if kind == "line":
        measure = shapely.length(merc) * scale
    elif kind == "polygon":
        measure = shapely.area(merc) * scale * scale
    else:
        measure = np.zeros(len(merc))
    return x, y, measure


def cell_counts(merc: np.ndarray, statuses: Sequence[object], kind: str, level: int, sign: int = 1) -> pd.DataFrame:
    """Members counted per cell of ``level`` and status: cx, cy, status, n, measure and the sums sx, sy of their
    representative points (Web Mercator, relative to the cell's corner), which place the cell's point."""
    return counts_at(*representative(merc, kind), statuses, level, sign)


def counts_at(x: np.ndarray, y: np.ndarray, measure: np.ndarray, statuses: Sequence[object] | np.ndarray, level: int,
              sign: int = 1) -> pd.DataFrame:
    """:func:`cell_counts` of members counted at the Web Mercator points ``x, y``."""
    cx, cy = cell_index(x, y, level)
    corner = cell_bounds(cx, cy, level)
    frame = pd.DataFrame({"cx": cx, "cy": cy, "status": statuses, "n": sign, "measure": sign * measure,
                          "sx": sign * (x - corner[:, 0]), "sy": sign * (y - corner[:, 1])})
    return frame.groupby(["cx", "cy", "status"], as_index=False, sort=False).sum()


class Aggregates:
    """A store's aggregate cells and shapes: planning, syncing from the store's changesets, reading per tile.

    The tables belong to the store (:meth:`~twin.store.base.Store.aggregate_writer`); this class works out what to
    put in them. A store that cannot keep them (a read-only file) gets cells computed per tile instead.
    """

    def __init__(self, store: Store, depth: int = DEPTH, budget_s: float = 600.0) -> None:
        self.store = store
        self.catalogue = store.catalogue
        self.depth = depth
        self.budget_s = budget_s

    def plan(self, layer: str) -> Plan | None:
        """The layer's aggregation plan, or ``None`` when it is drawn raw at every zoom."""
        spec = self.catalogue[layer]
        if spec.min_zoom <= 0:
            return None
        kind = {GeometryKind.line: "line", GeometryKind.polygon: "polygon"}.get(spec.geometry, "point")
        return Plan(spec.id, kind, spec.min_zoom, self.depth)

    # -- reading ---------------------------------------------------------------------------------
    @staticmethod
    def state(snap: Snapshot, plan: Plan) -> int | None:
        """The changeset the layer's aggregates reflect, or ``None`` when they must be (re)built."""
        found = snap.aggregate_state(plan.layer)
        return None if found is None or found[1] != plan.signature else found[0]

    @staticmethod
    def cells(snap: Snapshot, plan: Plan, tile: TileID) -> list[CellRow]:
        """``(cx, cy, status, n, measure, sx, sy)`` of the cells inside ``tile``."""
        level, x, y = _in_tile(plan, tile)
        return list(snap.cells(plan.layer, level, x, y))

    @staticmethod
    def shapes(snap: Snapshot, plan: Plan, tile: TileID) -> list[tuple[int, int, bytes]]:
        """``(cx, cy, wkb)`` of the generalised shapes inside ``tile`` (Web Mercator)."""
        level, x, y = _in_tile(plan, tile)
        return list(snap.shapes(plan.layer, level, x, y))

    # -- syncing ---------------------------------------------------------------------------------
    def sync(self, layer: str, wait: bool = True) -> bool:
        """Bring the layer's aggregates up to its latest changeset. One process of the deployment builds them while
        the others wait for it, or, unless ``wait``, go on at once and get ``False``."""
        plan = self.plan(layer)
        if plan is None:
            return True
        with self.store.exclusive(f"tiles:{plan.layer}", wait) as held:
            if not held:
                return False
            while True:
                with self.store.read(self.budget_s) as snap:
                    last = snap.last_changeset(layer)
                    since = self.state(snap, plan)
                    if since == last:
                        return True
                    delta, fine_shapes = _Delta(plan, snap).read(since or 0, rebuild=since is None)
                applied = self._apply(plan, since, last, delta, fine_shapes)
                if applied is None or applied:  # None: the store cannot keep them, tiles compute their cells
                    return True

    def _apply(self, plan: Plan, since: int | None, last: int, delta: pd.DataFrame,
               fine_shapes: dict[tuple[int, int], shapely.Geometry | None]) -> bool | None:
        """Write one sync in one transaction: ``False`` when another process got there first, ``None`` when the
        store keeps no aggregates."""
        with self.store.aggregate_writer(plan.layer) as w:
            if w is None:
                return None
            found = w.state()
            if (None if found is None or found[1] != plan.signature else found[0]) != since:
                return False
            if since is None:
                w.clear()
            _apply_counts(w, plan, delta)
            if plan.has_shapes:
                _apply_shapes(w, plan, fine_shapes, rebuild=since is None)
            w.set_state(last, plan.signature)
        return True


class _Delta:
    """What changed in a layer since a changeset, as cell count deltas and rebuilt fine-level shapes."""

    def __init__(self, plan: Plan, snap: Snapshot) -> None:
        self.plan, self.snap = plan, snap

    def read(self, since: int, rebuild: bool) -> tuple[pd.DataFrame, dict[tuple[int, int], shapely.Geometry | None]]:
        plan = self.plan
        counts: list[pd.DataFrame] = []
        versions: list[tuple[int, list[object], list[bytes | None], np.ndarray]] = []
        pieces: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        for sign, rows in self.snap.changed(plan.layer, since, removed=not rebuild):
            xy = rows.point_xy() if plan.kind == "point" else None
            if xy is not None:  # plain points: counted from their coordinates, without a geometry object each
                x, y = xy_to_mercator(xy[:, 0], xy[:, 1])
                counts.append(counts_at(x, y, np.zeros(len(x)), rows.column("status"), plan.fine, sign))
                continue
            merc = to_mercator(rows.geometries())
            counts.append(cell_counts(merc, rows.column("status"), plan.kind, plan.fine, sign))
            if plan.has_shapes and rebuild:
                pieces.append(shp.cut(merc, plan.fine, plan.kind == "line"))
            elif plan.has_shapes:
                versions.append((sign, rows.column("fid"), rows.blobs(), merc))
        delta = pd.concat(counts) if counts else pd.DataFrame(columns=_CELL_COLUMNS[2:])
        delta = delta.groupby(["cx", "cy", "status"], as_index=False, sort=False).sum()
        if not plan.has_shapes:
            return delta, {}
        touched = set() if rebuild else self._moved_cells(versions)
        if not rebuild:
            pieces = [self._pieces_in(touched)]
        cx = np.concatenate([p[0] for p in pieces]) if pieces else np.empty(0, np.int64)
        cy = np.concatenate([p[1] for p in pieces]) if pieces else np.empty(0, np.int64)
        geoms = np.concatenate([p[2] for p in pieces]) if pieces else np.empty(0, object)
        built = shp.grouped(cx, cy, geoms, shp.tolerance(plan.fine, plan.depth), plan.kind == "line")
        return delta, {**dict.fromkeys(touched), **built}

    def _moved_cells(self, versions: list[tuple[int, list[object], list[bytes | None], np.ndarray]]
                     ) -> set[tuple[int, int]]:
        """The fine cells met by a geometry that changed; a component whose geometry is the same before and after
        (a status or attribute edit, the live twin's usual change) leaves the shapes as they are."""
        before = {f: b for sign, fids, blobs, _ in versions if sign < 0 for f, b in zip(fids, blobs, strict=True)}
        after = {f: b for sign, fids, blobs, _ in versions if sign > 0 for f, b in zip(fids, blobs, strict=True)}
        touched: set[tuple[int, int]] = set()
        for sign, fids, blobs, merc in versions:
            other = after if sign < 0 else before
            moved = np.array([other.get(f) != b for f, b in zip(fids, blobs, strict=True)], dtype=bool)
            if moved.any():
                _, cx, cy = shp.cells_touched(merc[moved], self.plan.fine)
                touched.update(zip(cx.tolist(), cy.tolist(), strict=True))
        return touched

    def _pieces_in(self, cells: set[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Pieces of the current members in ``cells`` (every member meeting one is read again)."""
        plan = self.plan
        if len(cells) > _REBUILD_CELLS:
            parts = [rows.geometries() for _, rows in self.snap.changed(plan.layer, 0, removed=False)]
            geoms = np.concatenate(parts) if parts else np.empty(0, object)
        else:
            cx, cy = np.array([c[0] for c in cells]), np.array([c[1] for c in cells])
            boxes = [lonlat_box(tuple(box)) for box in cell_bounds(cx, cy, plan.fine).tolist()]
            geoms = self.snap.members(plan.layer, boxes).geometries() if boxes else np.empty(0, object)
        merc = to_mercator(geoms) if len(geoms) else np.empty(0, object)
        cx, cy, pieces = shp.cut(merc, plan.fine, plan.kind == "line")
        inside = np.array([(a, b) in cells for a, b in zip(cx.tolist(), cy.tolist(), strict=True)], dtype=bool)
        return cx[inside], cy[inside], pieces[inside]


#: Up to this many changed cells, the counts are summed level by level in plain Python: a pandas groupby per level
#: costs a millisecond whatever its size, and a one-component edit paid ~20 ms for it.
SMALL_DELTA = 2_000


def _apply_counts(w: AggregateWriter, plan: Plan, delta: pd.DataFrame) -> None:
    """Add count deltas at every level from the finest up to the zoom-0 cells; drop cells that reach 0.

    A parent cell's point sums are its children's, moved to the parent's corner.
    """
    if len(delta) <= SMALL_DELTA:
        _apply_few_counts(w, plan, delta)
        return
    frame = delta
    for level in range(plan.fine, plan.depth - 1, -1):
        if level < plan.fine:
            size = cell_size(level + 1)
            frame = frame.assign(sx=frame.sx + (frame.cx % 2) * size * frame.n,
                                 sy=frame.sy + (1 - frame.cy % 2) * size * frame.n,
                                 cx=frame.cx // 2, cy=frame.cy // 2)
        frame = frame.groupby(["cx", "cy", "status"], as_index=False, sort=False).sum()
        rows = [(int(a), int(b), st, int(n), float(m), float(x), float(y))
                for a, b, st, n, m, x, y in frame[_CELL_COLUMNS[2:]].itertuples(index=False, name=None)
                if n != 0 or m != 0 or x != 0 or y != 0]
        w.add_cells(level, rows)


def _apply_few_counts(w: AggregateWriter, plan: Plan, delta: pd.DataFrame) -> None:
    """:func:`_apply_counts` for a small delta, summed in dictionaries."""
    cells: dict[tuple[int, int, str], list[float]] = {}
    for cx, cy, st, n, m, sx, sy in delta[_CELL_COLUMNS[2:]].itertuples(index=False, name=None):
        acc = cells.setdefault((int(cx), int(cy), st), [0, 0.0, 0.0, 0.0])
        acc[0] += n
        acc[1] += m
        acc[2] += sx
        acc[3] += sy
    for level in range(plan.fine, plan.depth - 1, -1):
        if level < plan.fine:
            size = cell_size(level + 1)
            parents: dict[tuple[int, int, str], list[float]] = {}
            for (cx, cy, st), (n, m, sx, sy) in cells.items():
                acc = parents.setdefault((cx // 2, cy // 2, st), [0, 0.0, 0.0, 0.0])
                acc[0] += n
                acc[1] += m
                acc[2] += sx + (cx % 2) * size * n
                acc[3] += sy + (1 - cy % 2) * size * n
            cells = parents
        w.add_cells(level, [(cx, cy, st, int(n), float(m), float(x), float(y))
                            for (cx, cy, st), (n, m, x, y) in cells.items() if n != 0 or m != 0 or x != 0 or y != 0])


def _apply_shapes(w: AggregateWriter, plan: Plan, fine: dict[tuple[int, int], shapely.Geometry | None],
                  rebuild: bool) -> None:
    """Replace the fine cells' shapes, then rebuild each coarser touched cell from its four children (all touched
    cells of a level in one pass; on a rebuild the children are those just built, else read back from the store)."""
    changed = fine
    lines = plan.kind == "line"
    for level in range(plan.fine, plan.depth - 1, -1):
        w.put_shapes(level, {cell: None if g is None else shapely.to_wkb(g) for cell, g in changed.items()})
        if level == plan.depth:
            break
        parents = sorted({(cx >> 1, cy >> 1) for cx, cy in changed})
        if rebuild:
            kids = [(cx >> 1, cy >> 1, g) for (cx, cy), g in changed.items() if g is not None]
        else:
            kids = [(px, py, g) for px, py in parents
                    for g in shapely.from_wkb(w.shapes_in(level, (2 * px, 2 * px + 1), (2 * py, 2 * py + 1)))]
        geoms = np.array([g for _, _, g in kids], dtype=object)
        parts, index = shapely.get_parts(geoms, return_index=True)
        px = np.array([k[0] for k in kids], dtype=np.int64)[index]
        py = np.array([k[1] for k in kids], dtype=np.int64)[index]
        built = shp.grouped(px, py, parts, shp.tolerance(level - 1, plan.depth), lines)
        changed = {**dict.fromkeys(parents), **built}


def _in_tile(plan: Plan, tile: TileID) -> tuple[int, tuple[int, int], tuple[int, int]]:
    """The level and the cell ranges of ``tile``'s cells."""
    side = 1 << plan.depth
    return tile.z + plan.depth, (tile.x * side, tile.x * side + side - 1), (tile.y * side, tile.y * side + side - 1)
