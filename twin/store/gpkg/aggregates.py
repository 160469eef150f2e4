"""The GeoPackage side of the tile aggregates: one write transaction on a layer's cells and shapes.

The tables belong to the store (``sql/tiles.sql``, created with it or by its migration); the tile engine works
out what to add (:mod:`tiles.aggregate`) and hands it here, under the store's write lock.
"""

from __future__ import annotations

import sqlite3

from twin.store.base import CellRow


class GpkgAggregateWriter:
    """:class:`~twin.store.base.AggregateWriter` inside the store writer's ``BEGIN IMMEDIATE`` transaction."""

    def __init__(self, conn: sqlite3.Connection, layer: str) -> None:
        self.conn, self.layer = conn, layer

    def state(self) -> tuple[int, str] | None:
        row = self.conn.execute("SELECT changeset, signature FROM twin_tiles_state WHERE layer = ?",
                                (self.layer,)).fetchone()
        return None if row is None else (int(row[0]), str(row[1]))

    def clear(self) -> None:
        self.conn.execute("DELETE FROM twin_tiles_cells WHERE layer = ?", (self.layer,))
        self.conn.execute("DELETE FROM twin_tiles_shapes WHERE layer = ?", (self.layer,))

    def add_cells(self, level: int, cells: list[CellRow]) -> None:
        rows = [(self.layer, level, *c) for c in cells]
        self.conn.executemany(
            "INSERT INTO twin_tiles_cells VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (layer, level, cx, cy, status) DO UPDATE SET n = n + excluded.n, "
            "measure = measure + excluded.measure, sx = sx + excluded.sx, sy = sy + excluded.sy", rows)
        self.conn.executemany(
            "DELETE FROM twin_tiles_cells WHERE layer = ? AND level = ? AND cx = ? AND cy = ? AND status = ? "
            "AND n <= 0", [r[:5] for r in rows])

    def shapes_in(self, level: int, x: tuple[int, int], y: tuple[int, int]) -> list[bytes]:
        return [r[0] for r in self.conn.execute(
            "SELECT geom FROM twin_tiles_shapes WHERE layer = ? AND level = ? AND cx BETWEEN ? AND ? "
            "AND cy BETWEEN ? AND ?", (self.layer, level, x[0], x[1], y[0], y[1]))]

    def put_shapes(self, level: int, shapes: dict[tuple[int, int], bytes | None]) -> None:
        gone = [(self.layer, level, cx, cy) for (cx, cy), g in shapes.items() if g is None]
        kept = [(self.layer, level, cx, cy, g) for (cx, cy), g in shapes.items() if g is not None]
        self.conn.executemany("DELETE FROM twin_tiles_shapes WHERE layer = ? AND level = ? AND cx = ? AND cy = ?",
                              gone)
        self.conn.executemany("INSERT OR REPLACE INTO twin_tiles_shapes VALUES (?, ?, ?, ?, ?)", kept)

    def set_state(self, changeset: int, signature: str) -> None:
        self.conn.execute("INSERT OR REPLACE INTO twin_tiles_state VALUES (?, ?, ?)",
                          (self.layer, changeset, signature))
