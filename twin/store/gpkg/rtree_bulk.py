"""Bulk loading of an empty SQLite R-tree (the GeoPackage spatial index) in one pass.

SQLite inserts R-tree entries one at a time with R*-tree splits, which dominates the cost of a large
first import. When a layer's index is empty, twin instead packs every entry with the Sort-Tile-Recursive
algorithm and writes the nodes in SQLite's documented format (``ext/rtree/rtree.c``: per node a 2-byte
depth, a 2-byte cell count, then cells of a big-endian 64-bit id and 32-bit float min/max per dimension;
plus the ``_rowid`` and ``_parent`` mapping tables). ``rtreecheck()`` verifies the result in the tests.
"""

from __future__ import annotations

import math
import sqlite3

import numpy as np
from numpy.typing import NDArray

from twin.store.gpkg import ddl

_CELL = np.dtype([("id", ">i8"), ("minx", ">f4"), ("maxx", ">f4"), ("miny", ">f4"), ("maxy", ">f4")])
_TOWARDS = 1.0 - 1.0 / 8388608.0  # SQLite's RNDTOWARDS
_AWAY = 1.0 + 1.0 / 8388608.0  # SQLite's RNDAWAY


def round_down(d: NDArray[np.float64]) -> NDArray[np.float32]:
    """Lower bounds as SQLite's R-tree stores them (``rtreeValueDown``)."""
    f = d.astype(np.float32)
    low = f.astype(np.float64) > d
    f[low] = (d[low] * np.where(d[low] < 0, _AWAY, _TOWARDS)).astype(np.float32)
    return f


def round_up(d: NDArray[np.float64]) -> NDArray[np.float32]:
    """Upper bounds as SQLite's R-tree stores them (``rtreeValueUp``)."""
    f = d.astype(np.float32)
    high = f.astype(np.float64) < d
    f[high] = (d[high] * np.where(d[high] < 0, _TOWARDS, _AWAY)).astype(np.float32)
    return f


def _str_groups(boxes: NDArray[np.float32], fanout: int) -> list[NDArray[np.int64]]:
    """Sort-Tile-Recursive: group box indexes into nodes of at most ``fanout`` spatially close boxes."""
    n = len(boxes)
    nodes = math.ceil(n / fanout)
    slices = math.ceil(math.sqrt(nodes))
    cx = (boxes[:, 0].astype(np.float64) + boxes[:, 1]) / 2
    cy = (boxes[:, 2].astype(np.float64) + boxes[:, 3]) / 2
    by_x = np.argsort(cx, kind="stable")
    per_slice = slices * fanout
    groups: list[NDArray[np.int64]] = []
    for s in range(0, n, per_slice):
        part = by_x[s:s + per_slice]
        part = part[np.argsort(cy[part], kind="stable")]
        groups.extend(part[i:i + fanout] for i in range(0, len(part), fanout))
    return groups


def bulk_load(conn: sqlite3.Connection, layer: str, fids: NDArray[np.int64], bounds: NDArray[np.float64]) -> None:
    """Fill the layer's empty R-tree with ``fids`` and their ``bounds`` (minx, miny, maxx, maxy rows)."""
    name = f"rtree_{layer}_geom"
    table = ddl.q(name)
    if conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]:
        raise ValueError(f"{name} is not empty; bulk loading only fills an empty index")
    size = conn.execute(f'SELECT length(data) FROM "{name}_node" WHERE nodeno = 1').fetchone()[0]
    fanout = (size - 4) // _CELL.itemsize
    level_ids = fids.astype(np.int64)
    level_boxes = np.column_stack([round_down(bounds[:, 0]), round_up(bounds[:, 2]),
                                   round_down(bounds[:, 1]), round_up(bounds[:, 3])])
    levels: list[tuple[list[NDArray[np.int64]], NDArray[np.int64], NDArray[np.float32]]] = []
    while True:
        groups = _str_groups(level_boxes, fanout) if len(level_ids) > fanout else [np.arange(len(level_ids))]
        levels.append((groups, level_ids, level_boxes))
        if len(groups) == 1:
            break
        level_boxes = np.array([[level_boxes[g, 0].min(), level_boxes[g, 1].max(),
                                 level_boxes[g, 2].min(), level_boxes[g, 3].max()] for g in groups], dtype=np.float32)
        level_ids = np.zeros(len(groups), dtype=np.int64)  # node numbers, filled in below
    # number nodes: the root is 1, the others follow level by level from the top
    numbers: list[NDArray[np.int64]] = []
    next_no = 1
    for groups, _, _ in reversed(levels):
        numbers.insert(0, np.arange(next_no, next_no + len(groups), dtype=np.int64))
        next_no += len(groups)
    depth = len(levels) - 1
    node_rows: list[tuple[int, bytes]] = []
    parent_rows: list[tuple[int, int]] = []
    rowid_rows: list[tuple[int, int]] = []
    for level, (groups, ids, boxes) in enumerate(levels):
        if level > 0:
            ids = numbers[level - 1]  # children of this level are the nodes of the level below
        for node_no, g in zip(numbers[level].tolist(), groups, strict=True):
            cells = np.empty(len(g), dtype=_CELL)
            cells["id"] = ids[g]
            cells["minx"], cells["maxx"], cells["miny"], cells["maxy"] = boxes[g].T
            header = (depth if node_no == 1 else 0).to_bytes(2, "big") + len(g).to_bytes(2, "big")
            node_rows.append((node_no, (header + cells.tobytes()).ljust(size, b"\0")))
            if level == 0:
                rowid_rows.extend(zip(ids[g].tolist(), [node_no] * len(g), strict=True))
            else:
                parent_rows.extend(zip(ids[g].tolist(), [node_no] * len(g), strict=True))
    conn.execute(f'DELETE FROM "{name}_node"')
    conn.executemany(f'INSERT INTO "{name}_node" (nodeno, data) VALUES (?, ?)', node_rows)
    conn.executemany(f'INSERT INTO "{name}_rowid" (rowid, nodeno) VALUES (?, ?)', rowid_rows)
    conn.executemany(f'INSERT INTO "{name}_parent" (nodeno, parentnode) VALUES (?, ?)', parent_rows)
