"""The PostGIS side of the tile aggregates: one transaction on a layer's cells and shapes.

A per-layer advisory lock serialises the servers that would bring the same layer's aggregates up to date; the
tile engine's compare-and-set on the state row then lets only the first apply a given step.
"""

from __future__ import annotations

import psycopg

from twin.store.base import CellRow
from twin.store.postgis import ddl


class PgAggregateWriter:
    """:class:`~twin.store.base.AggregateWriter` inside one transaction of the store's schema."""

    def __init__(self, conn: psycopg.Connection, schema: str, layer: str) -> None:
        self.conn, self.layer = conn, layer
        self.s = ddl.schema_ident(schema)

    def state(self) -> tuple[int, str] | None:
        row = self.conn.execute(f"SELECT changeset, signature FROM {self.s}.twin_tiles_state WHERE layer = %s",
                                (self.layer,)).fetchone()
        return None if row is None else (int(row[0]), str(row[1]))

    def clear(self) -> None:
        self.conn.execute(f"DELETE FROM {self.s}.twin_tiles_cells WHERE layer = %s", (self.layer,))
        self.conn.execute(f"DELETE FROM {self.s}.twin_tiles_shapes WHERE layer = %s", (self.layer,))

    def add_cells(self, level: int, cells: list[CellRow]) -> None:
        if not cells:
            return
        cols = list(zip(*cells, strict=True))
        self.conn.execute(
            f"INSERT INTO {self.s}.twin_tiles_cells AS c (layer, level, cx, cy, status, n, measure, sx, sy) "
            "SELECT %s, %s, * FROM unnest(%s::bigint[], %s::bigint[], %s::text[], %s::bigint[], "
            "%s::float8[], %s::float8[], %s::float8[]) "
            "ON CONFLICT (layer, level, cx, cy, status) DO UPDATE SET n = c.n + excluded.n, "
            "measure = c.measure + excluded.measure, sx = c.sx + excluded.sx, sy = c.sy + excluded.sy",
            (self.layer, level, *[list(c) for c in cols]))
        self.conn.execute(
            f"DELETE FROM {self.s}.twin_tiles_cells c USING unnest(%s::bigint[], %s::bigint[], %s::text[]) "
            "AS p(cx, cy, status) WHERE c.layer = %s AND c.level = %s AND c.cx = p.cx AND c.cy = p.cy "
            "AND c.status = p.status AND c.n <= 0", (list(cols[0]), list(cols[1]), list(cols[2]), self.layer, level))

    def shapes_in(self, level: int, x: tuple[int, int], y: tuple[int, int]) -> list[bytes]:
        return [bytes(r[0]) for r in self.conn.execute(
            f"SELECT geom FROM {self.s}.twin_tiles_shapes WHERE layer = %s AND level = %s "
            "AND cx BETWEEN %s AND %s AND cy BETWEEN %s AND %s", (self.layer, level, x[0], x[1], y[0], y[1]))]

    def put_shapes(self, level: int, shapes: dict[tuple[int, int], bytes | None]) -> None:
        gone = [(cx, cy) for (cx, cy), g in shapes.items() if g is None]
        kept = [(cx, cy, g) for (cx, cy), g in shapes.items() if g is not None]
        if gone:
            self.conn.execute(f"DELETE FROM {self.s}.twin_tiles_shapes t USING unnest(%s::bigint[], %s::bigint[]) "
                              "AS p(cx, cy) WHERE t.layer = %s AND t.level = %s AND t.cx = p.cx AND t.cy = p.cy",
                              ([g[0] for g in gone], [g[1] for g in gone], self.layer, level))
        if kept:
            self.conn.execute(
                f"INSERT INTO {self.s}.twin_tiles_shapes (layer, level, cx, cy, geom) SELECT %s, %s, * FROM "
                "unnest(%s::bigint[], %s::bigint[], %s::bytea[]) ON CONFLICT (layer, level, cx, cy) "
                "DO UPDATE SET geom = excluded.geom",
                (self.layer, level, [k[0] for k in kept], [k[1] for k in kept], [k[2] for k in kept]))

    def set_state(self, changeset: int, signature: str) -> None:
        self.conn.execute(f"INSERT INTO {self.s}.twin_tiles_state VALUES (%s, %s, %s) ON CONFLICT (layer) "
                          "DO UPDATE SET changeset = excluded.changeset, signature = excluded.signature",
                          (self.layer, changeset, signature))
