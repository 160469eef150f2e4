"""Generalised shapes of line and polygon layers per grid cell: the networks and outlines of low-zoom tiles.

At a cell's level the members' geometries are cut to the cell, simplified at the resolution of the tile the cell
is drawn in, and thinned to a vertex budget keeping the longest lines or largest areas; polygons are first
dissolved (touching compounds become one outline, which stays visible where each alone would be too small). A
coarser cell is built the same way from its four children, so a whole pyramid is kept up to date by redoing only
touched cells, and a network of millions of pipe segments is generalised in vectorised passes.
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
    pieces = geoms[idx]
    # a geometry whose envelope lies in one cell is its own piece; only those across a cell edge are cut
    edge = np.bincount(idx, minlength=len(geoms))[idx] > 1
    if edge.any():
        b = cell_bounds(cx[edge], cy[edge], level)
        pieces[edge] = shapely.intersection(pieces[edge], shapely.box(b[:, 0], b[:, 1], b[:, 2], b[:, 3]))
    mixed = shapely.get_type_id(pieces) == 7  # a polygon touching a cell's edge also leaves lines there
    if mixed.any():
        pieces[mixed] = [shapely.union_all(p[shapely.get_dimensions(p) == (1 if lines else 2)])
                         for p in (shapely.get_parts(g) for g in pieces[mixed])]
    keep = ~shapely.is_empty(pieces) & (shapely.get_dimensions(pieces) == (1 if lines else 2))
    return cx[keep], cy[keep], pieces[keep]


def generalise(pieces: NDArray[np.object_], tol: float) -> shapely.Geometry | None:
    """One cell's outline from its polygon pieces: dissolved, simplified by ``tol`` metres, thinned to a vertex
    budget keeping the largest areas."""
    merged = shapely.union_all(pieces)
    parts = shapely.get_parts(shapely.simplify(merged, tol, preserve_topology=True))
    parts = parts[shapely.get_dimensions(parts) == 2]
    parts = parts[shapely.area(parts) >= tol * tol]
    if not len(parts):
        return None
    parts = parts[np.argsort(-shapely.area(parts), kind="stable")]
    budget = np.cumsum(shapely.get_num_coordinates(parts)) <= CELL_VERTICES
    budget[0] = True
    # one multi-part geometry of all ``parts``: the stubs cannot tell it from an array of them
    return cast(shapely.Geometry, shapely.multipolygons(parts[budget]))


def grouped(cx: NDArray[np.int64], cy: NDArray[np.int64], pieces: NDArray[np.object_], tol: float,
            lines: bool) -> dict[tuple[int, int], shapely.Geometry | None]:
    """The shape of every cell that has pieces: lines thinned all cells at once (:func:`thinned_lines`), polygons
    dissolved cell by cell (:func:`generalise`), as touching compounds must become one outline to stay visible."""
    out: dict[tuple[int, int], shapely.Geometry | None] = {}
    if not len(pieces):
        return out
    if lines:
        return thinned_lines(cx, cy, pieces, tol)
    order = np.lexsort((cy, cx))
    cx, cy, pieces = cx[order], cy[order], pieces[order]
    starts = np.flatnonzero(np.r_[True, (np.diff(cx) != 0) | (np.diff(cy) != 0)])
    for start, stop in zip(starts, np.r_[starts[1:], len(pieces)], strict=True):
        out[(int(cx[start]), int(cy[start]))] = generalise(pieces[start:stop], tol)
    return out


def thinned_lines(cx: NDArray[np.int64], cy: NDArray[np.int64], pieces: NDArray[np.object_],
                  tol: float) -> dict[tuple[int, int], shapely.Geometry | None]:
    """Each cell's network: its pieces simplified by ``tol`` metres one by one and thinned to the vertex budget,
    longest first, for every cell in one vectorised pass.

    Nothing is dissolved: a network of millions of segments costs a few array operations, not a union per cell,
    and at the zooms that draw cells two pipes along one road look as one.
    """
    parts, index = shapely.get_parts(shapely.simplify(pieces, tol, preserve_topology=False), return_index=True)
    keep = (shapely.get_dimensions(parts) == 1) & ~shapely.is_empty(parts)
    parts, cx, cy = parts[keep], cx[index[keep]], cy[index[keep]]
    if not len(parts):
        return {}
    order = np.lexsort((-shapely.length(parts), cy, cx))
    parts, cx, cy = parts[order], cx[order], cy[order]
    first = np.r_[True, (np.diff(cx) != 0) | (np.diff(cy) != 0)]
    group = np.cumsum(first) - 1
    size = shapely.get_num_coordinates(parts)
    total = np.cumsum(size)
    within = total - (total - size)[first][group]  # vertices of the cell's pieces up to and including this one
    kept = (within <= CELL_VERTICES) | first
    shapes = shapely.multilinestrings(parts[kept], indices=group[kept])
    cells = np.flatnonzero(first)
    return {(int(cx[i]), int(cy[i])): shape for i, shape in zip(cells.tolist(), shapes, strict=True)}
