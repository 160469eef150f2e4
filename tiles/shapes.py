"""Generalised shapes of line and polygon layers per grid cell: the networks and outlines of low-zoom tiles.

At a cell's level the members' geometries are cut to the cell, dissolved (overlapping pipes along one road
become one line, touching compounds one outline), simplified at the resolution of the tile the cell is drawn
in, and thinned to a vertex budget keeping the longest lines or largest areas. A coarser cell is built the
same way from its four children, so a whole pyramid is kept up to date by redoing only touched cells.
"""

from __future__ import annotations

from typing import cast

import numpy as np
import shapely
from numpy.typing import NDArray

from tiles.grid import EXTENT, cell_bounds, cell_index, cell_size

#: Vertices one cell's shape may keep; 256 cells of a tile x 192 stays far below the tile size limit.
CELL_VERTICES = 192
#: Simplification tolerance, in tile units of the zoom the cell is drawn at.
TOLERANCE_UNITS = 2.0


def tolerance(level: int, depth: int) -> float:
    """Simplification tolerance in metres for cells of ``level`` (drawn at zoom ``level - depth``)."""
    return cell_size(level - depth) / EXTENT * TOLERANCE_UNITS


def cells_touched(geoms: NDArray[np.object_], level: int) -> tuple[NDArray[np.int64], NDArray[np.int64],
                                                                   NDArray[np.int64]]:
    """Every (geometry index, cx, cy) whose cell at ``level`` the geometry's envelope meets."""
    b = shapely.bounds(geoms)
    cx0, cy0 = cell_index(b[:, 0], b[:, 3], level)
    cx1, cy1 = cell_index(b[:, 2], b[:, 1], level)
    w, h = cx1 - cx0 + 1, cy1 - cy0 + 1
    n = w * h
    idx = np.repeat(np.arange(len(geoms)), n)
    k = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
    return idx, cx0[idx] + k % w[idx], cy0[idx] + k // w[idx]


def cut(geoms: NDArray[np.object_], level: int, lines: bool) -> tuple[NDArray[np.int64], NDArray[np.int64],
                                                                      NDArray[np.object_]]:
    """The pieces of Web Mercator ``geoms`` in each cell of ``level`` they meet: ``(cx, cy, piece)``.

    ``lines`` says which kind of piece to keep (a line merely touching a cell leaves a point there).
    """
    if not len(geoms):
        empty = np.empty(0, dtype=np.int64)
        return empty, empty, np.empty(0, dtype=object)
    idx, cx, cy = cells_touched(geoms, level)
    b = cell_bounds(cx, cy, level)
    pieces = shapely.intersection(geoms[idx], shapely.box(b[:, 0], b[:, 1], b[:, 2], b[:, 3]))
    mixed = shapely.get_type_id(pieces) == 7  # a polygon touching a cell's edge also leaves lines there
    if mixed.any():
        pieces[mixed] = [shapely.union_all(p[shapely.get_dimensions(p) == (1 if lines else 2)])
                         for p in (shapely.get_parts(g) for g in pieces[mixed])]
    keep = ~shapely.is_empty(pieces) & (shapely.get_dimensions(pieces) == (1 if lines else 2))
    return cx[keep], cy[keep], pieces[keep]


def generalise(pieces: NDArray[np.object_], tol: float, lines: bool) -> shapely.Geometry | None:
    """One cell's shape from its pieces: dissolved, simplified by ``tol`` metres, thinned to a vertex budget."""
    merged = shapely.union_all(pieces)
    if lines:
        merged = shapely.line_merge(merged)
    parts = shapely.get_parts(shapely.simplify(merged, tol, preserve_topology=not lines))
    dims = shapely.get_dimensions(parts)
    parts = parts[(dims == 1) if lines else (dims == 2)]
    if not lines:
        parts = parts[shapely.area(parts) >= tol * tol]
    if not len(parts):
        return None
    size = shapely.length(parts) if lines else shapely.area(parts)
    order = np.argsort(-size, kind="stable")
    parts = parts[order]
    budget = np.cumsum(shapely.get_num_coordinates(parts)) <= CELL_VERTICES
    budget[0] = True
    parts = parts[budget]
    # one multi-part geometry of all ``parts``: the stubs cannot tell it from an array of them
    return cast(shapely.Geometry, shapely.multilinestrings(parts) if lines else shapely.multipolygons(parts))


def grouped(cx: NDArray[np.int64], cy: NDArray[np.int64], pieces: NDArray[np.object_], tol: float,
            lines: bool) -> dict[tuple[int, int], shapely.Geometry | None]:
    """:func:`generalise` for every cell that has pieces."""
    out: dict[tuple[int, int], shapely.Geometry | None] = {}
    if not len(pieces):
        return out
    order = np.lexsort((cy, cx))
    cx, cy, pieces = cx[order], cy[order], pieces[order]
    starts = np.flatnonzero(np.r_[True, (np.diff(cx) != 0) | (np.diff(cy) != 0)])
    for start, stop in zip(starts, np.r_[starts[1:], len(pieces)], strict=True):
        out[(int(cx[start]), int(cy[start]))] = generalise(pieces[start:stop], tol, lines)
    return out
