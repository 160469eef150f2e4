"""Aggregate cells of an area-scoped tile: precomputed counts where the area covers a cell, exact work only
along the area's edge.

The tile's cells are split level by level into cells the area covers (their precomputed counts are
exactly the scoped ones, see :mod:`tiles.scope`), cells outside it (nothing) and cells on its edge, which
are split again while they hold many components, down at most to the layer's finest aggregate level
(edge cells holding none are dropped). Components are then read and placed only for the remaining edge
cells and, for lines and polygons, where they straddle the area's boundary: one whose representative
point lies outside the area is counted at a point inside it, which may fall in any cell of the tile.
"""

from __future__ import annotations

from typing import cast

import numpy as np
from numpy.typing import NDArray

from tiles.aggregate import Plan
from tiles.grid import (
    TileID,
    cell_bounds,
    cell_index,
    cell_range,
    lonlat_box,
    lonlat_boxes,
    mercator_bounds,
    xy_to_mercator,
)
from tiles.scope import Box, Scope, meeting_both
from twin.store import Snapshot
from twin.store.base import CellRow

#: Edge cells are split further while they are estimated to hold more components than this.
EXACT_MEMBERS = 32
#: Degrees added around edge boxes, so rounding between Web Mercator and lon/lat never loses a point.
_PAD = 1e-9
Cells = tuple[NDArray[np.int64], NDArray[np.int64]]


class _Sums:
    """Count, measure and point sums per ``(cx, cy, status)`` of the tile's cells (level ``level``)."""

    def __init__(self, level: int) -> None:
        self.level = level
        self.cells: dict[tuple[int, int, str], list[float]] = {}

    def add(self, lvl: int, cx: NDArray[np.int64], cy: NDArray[np.int64], statuses: list[str], n: NDArray[np.int64],
            measure: NDArray[np.float64], sx: NDArray[np.float64], sy: NDArray[np.float64]) -> None:
        """Add cells of ``lvl`` (point sums relative to their own lower-left corner) into their parents."""
        shift = lvl - self.level
        px, py = cx >> shift, cy >> shift
        if shift:
            child, parent = cell_bounds(cx, cy, lvl), cell_bounds(px, py, self.level)
            sx, sy = sx + (child[:, 0] - parent[:, 0]) * n, sy + (child[:, 1] - parent[:, 1]) * n
        for key in zip(px.tolist(), py.tolist(), statuses, n.tolist(), measure.tolist(), sx.tolist(), sy.tolist(),
                       strict=True):
            acc = self.cells.setdefault(key[:3], [0, 0.0, 0.0, 0.0])
            acc[0] += key[3]
            acc[1] += key[4]
            acc[2] += key[5]
            acc[3] += key[6]

    def rows(self) -> list[CellRow]:
        return [(*key, int(v[0]), v[1], v[2], v[3]) for key, v in self.cells.items() if v[0]]


def scoped_cells(snap: Snapshot, plan: Plan, tile: TileID, scope: Scope, points_only: bool) -> list[CellRow]:
    """``(cx, cy, status, n, measure, sx, sy)`` of the tile's cells, counting only what the area's user sees.

    ``points_only``: the layer holds nothing but points, so no component straddles the area's boundary.
    """
    sums = _Sums(tile.z + plan.depth)
    level, edge = _stored(snap, plan, tile, scope, sums)
    _exact(snap, plan, tile, scope, level, edge, points_only, sums)
    return sums.rows()


def _stored(snap: Snapshot, plan: Plan, tile: TileID, scope: Scope, sums: _Sums) -> tuple[int, Cells]:
    """Add the stored counts of the cells the area covers; returns the level and cells of the edge left."""
    lvl, side = sums.level, 1 << plan.depth
    b = scope.area.bounds
    x, y = xy_to_mercator(np.array([b[0], b[2]]), np.array([b[1], b[3]]))
    cx0, cy0, cx1, cy1 = cell_range((x[0], y[0], x[1], y[1]), lvl)
    gx, gy = np.meshgrid(np.arange(max(cx0, tile.x * side), min(cx1, tile.x * side + side - 1) + 1, dtype=np.int64),
                         np.arange(max(cy0, tile.y * side), min(cy1, tile.y * side + side - 1) + 1, dtype=np.int64))
    cx, cy = gx.ravel(), gy.ravel()
    while len(cx):
        covered, meets = scope.classify(cx, cy, lvl)
        cx, cy, covered = cx[meets], cy[meets], covered[meets]
        rows = snap.cells_at(plan.layer, lvl, cx, cy)
        if not rows:
            break
        rx = np.array([r[0] for r in rows], dtype=np.int64)
        ry = np.array([r[1] for r in rows], dtype=np.int64)
        width = np.int64(1) << lvl
        inside = np.isin(rx * width + ry, cx[covered] * width + cy[covered])
        pick = np.flatnonzero(inside)
        if len(pick):
            sums.add(lvl, rx[pick], ry[pick], [rows[i][2] for i in pick.tolist()],
                     *(np.array([rows[i][k] for i in pick.tolist()]) for k in (3, 4, 5, 6)))
        held = ~inside  # edge cells that hold components (an edge cell with none needs nothing more)
        cx, cy = np.unique(np.column_stack([rx[held], ry[held]]), axis=0).T.reshape(2, -1)
        n = np.array([r[3] for r in rows], dtype=np.float64)[held]
        if lvl == plan.fine or _estimate(rx[held], ry[held], n, lvl, scope.area.bounds) <= EXACT_MEMBERS:
            return lvl, (cx, cy)
        cx = (cx[:, None] * 2 + np.array([0, 1, 0, 1])).ravel()
        cy = (cy[:, None] * 2 + np.array([0, 0, 1, 1])).ravel()
        lvl += 1
    return lvl, (np.empty(0, np.int64), np.empty(0, np.int64))


def _estimate(cx: NDArray[np.int64], cy: NDArray[np.int64], n: NDArray[np.float64], level: int, bounds: Box) -> float:
    """Components expected in the cells' parts inside ``bounds`` (evenly spread over each cell)."""
    if not len(n):
        return 0.0
    box = lonlat_boxes(cell_bounds(cx, cy, level))
    w = np.clip(np.minimum(box[:, 2], bounds[2]) - np.maximum(box[:, 0], bounds[0]), 0, None)
    h = np.clip(np.minimum(box[:, 3], bounds[3]) - np.maximum(box[:, 1], bounds[1]), 0, None)
    share = w * h / np.maximum((box[:, 2] - box[:, 0]) * (box[:, 3] - box[:, 1]), 1e-30)
    return float((n * share).sum())


def _exact(snap: Snapshot, plan: Plan, tile: TileID, scope: Scope, level: int, edge: Cells, points_only: bool,
           sums: _Sums) -> None:
    """Add the components placed in the edge cells (of ``level``) or moved into the tile from outside the area."""
    boxes = edge_boxes(*edge, level, scope.area.bounds)
    if not points_only:
        here = lonlat_box(mercator_bounds(tile))
        boxes += [meeting_both(rim, here) for rim in scope.rims]
    members = snap.members(plan.layer, boxes)
    rows = members.rows
    if not rows:
        return
    geoms = members.geometries()
    placed = scope.place(geoms, plan.kind, plan.fine)
    width = np.int64(1) << level
    ex, ey = cell_index(placed.x, placed.y, level)
    on_edge = np.isin(ex * width + ey, edge[0] * width + edge[1])
    tx, ty = cell_index(placed.x, placed.y, sums.level)
    in_tile = ((tx >> plan.depth) == tile.x) & ((ty >> plan.depth) == tile.y)
    pick = np.flatnonzero(placed.seen & np.where(placed.at_rep, on_edge, in_tile))
    if not len(pick):
        return
    corner = cell_bounds(tx[pick], ty[pick], sums.level)
    statuses = np.array([rows[i][1] for i in pick.tolist()], dtype=object)
    names, code = np.unique(statuses, return_inverse=True)
    keys, group = np.unique(np.column_stack([tx[pick], ty[pick], code]), axis=0, return_inverse=True)
    group = group.ravel()

    def total(values: NDArray[np.float64]) -> NDArray[np.float64]:
        # numpy's stubs type bincount as intp, also when weighted (it is float64 then)
        return cast(NDArray[np.float64], np.bincount(group, weights=values, minlength=len(keys)))

    sums.add(sums.level, keys[:, 0], keys[:, 1], names[keys[:, 2]].tolist(),
             np.bincount(group, minlength=len(keys)), total(placed.measure[pick]),
             total(placed.x[pick] - corner[:, 0]), total(placed.y[pick] - corner[:, 1]))


def edge_boxes(cx: NDArray[np.int64], cy: NDArray[np.int64], level: int, bounds: Box) -> list[Box]:
    """Lon/lat boxes of runs of adjacent cells along rows, cut to ``bounds`` (slightly padded)."""
    if not len(cx):
        return []
    order = np.lexsort((cx, cy))
    cx, cy = cx[order], cy[order]
    starts = np.flatnonzero(np.r_[True, (np.diff(cy) != 0) | (np.diff(cx) != 1)])
    stops = np.r_[starts[1:], len(cx)] - 1
    first, last = cell_bounds(cx[starts], cy[starts], level), cell_bounds(cx[stops], cy[stops], level)
    boxes = lonlat_boxes(np.column_stack([first[:, 0], first[:, 1], last[:, 2], last[:, 3]]))
    lo = np.maximum(boxes[:, :2], np.array(bounds[:2])) - _PAD
    hi = np.minimum(boxes[:, 2:], np.array(bounds[2:])) + _PAD
    return [(a, b, c, d) for a, b, c, d in np.column_stack([lo, hi]).tolist()]
