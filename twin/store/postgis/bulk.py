"""The PostGIS engine's :class:`~twin.store.base.Bulk`: a store's parts read and written as stored.

Loads go through ``COPY`` into a temporary table and one ``INSERT ... ON CONFLICT DO NOTHING`` (so a resumed
copy may send a chunk twice); a layer's indexes are dropped while its rows come in and built once at
:meth:`PgBulk.finish_layer`, with ``ANALYZE``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import psycopg

from twin.store.base import (
    ACCESS_COLUMNS,
    CHANGESET_COLUMNS,
    HISTORY_COLUMNS,
    REPORT_PART_COLUMNS,
    ROW_COLUMNS,
    TILE_PART_COLUMNS,
    LayerInfo,
    Part,
    digest_part,
    report_part_row,
)
from twin.store.postgis import ddl
from twin.store.postgis.columns import kind_of, read_expr, time_text
from twin.store.postgis.connect import scalar

if TYPE_CHECKING:
    from twin.store.postgis.store import PostgisStore

_ACCESS = {"users": ("twin_users", "name"), "tokens": ("twin_tokens", "id"), "audit": ("twin_audit", "id")}
_TILES = {"aggregate": "twin_tiles_state", "cells": "twin_tiles_cells", "shapes": "twin_tiles_shapes"}


def _q(names: tuple[str, ...] | list[str]) -> str:
    return ", ".join(f'"{n}"' for n in names)


class PgBulk:
    def __init__(self, store: PostgisStore) -> None:
        self.store = store
        self.catalogue = store.catalogue
        self.s = store.s

    def parts(self) -> list[Part]:
        out = [Part("changesets"), Part("reports"), *(Part(k) for k in ACCESS_COLUMNS)]
        for layer in self.catalogue:
            out += [Part("rows", layer), Part("history", layer), *(Part(k, layer) for k in TILE_PART_COLUMNS)]
        return out

    def _table(self, part: Part) -> str:
        if part.kind == "changesets":
            return f"{self.s}.twin_changesets"
        if part.kind == "reports":
            return f"{self.s}.twin_reports"
        if part.kind in _ACCESS:
            return f"{self.s}.{_ACCESS[part.kind][0]}"
        if part.kind in _TILES:
            return f"{self.s}.{_TILES[part.kind]}"
        return f"{self.s}.{ddl.q(str(part.layer) + ('_history' if part.kind == 'history' else ''))}"

    def _columns(self, part: Part) -> tuple[str, ...]:
        if part.kind == "changesets":
            return CHANGESET_COLUMNS
        if part.kind == "reports":
            return REPORT_PART_COLUMNS
        if part.kind in ACCESS_COLUMNS:
            return ACCESS_COLUMNS[part.kind]
        if part.kind in TILE_PART_COLUMNS:
            return TILE_PART_COLUMNS[part.kind]
        spec = self.catalogue[str(part.layer)]
        if part.kind == "rows":
            return (*ROW_COLUMNS, *spec.field_names, "geom")
        return ("hid", *ROW_COLUMNS, *spec.field_names, *HISTORY_COLUMNS, "geom")

    def _reads(self, part: Part) -> str:
        """The part's columns read as plain values (times as text, booleans 0/1, geometry as WKB)."""
        cols = self._columns(part)
        if part.kind == "changesets":
            return ", ".join(time_text('"time"', micros=True) if c == "time" else f'"{c}"' for c in cols)
        if part.kind == "reports":
            return ", ".join({"measured": "measured::text", "applied": "applied::int"}.get(c, f'"{c}"') for c in cols)
        if part.kind in ("rows", "history"):
            spec = self.catalogue[str(part.layer)]
            return ", ".join("hid" if c == "hid" else read_expr(c, "geometry" if c == "geom" else kind_of(spec, c), "")
                             for c in cols)
        return _q(cols)

    # -- reading -------------------------------------------------------------------------------
    def dump(self, part: Part, after: object, limit: int) -> tuple[list[tuple[Any, ...]], object]:
        table, cols = self._table(part), self._columns(part)
        with self.store.pool.connection() as conn:
            if part.kind in TILE_PART_COLUMNS:
                if after is not None:
                    return [], after
                rows = conn.execute(f"SELECT {_q(cols)} FROM {table} WHERE layer = %s ORDER BY {_q(cols[:-1])}",
                                    (part.layer,)).fetchall()
                return [_plain(r) for r in rows], "all"
            key = {"changesets": "id", "reports": "id", "rows": "fid", "history": "hid"}.get(part.kind) or \
                _ACCESS[part.kind][1]
            rows = conn.execute(f'SELECT {self._reads(part)} FROM {table} WHERE %s::text IS NULL OR "{key}" > %s '
                                f'ORDER BY "{key}" LIMIT %s', (after, after, limit)).fetchall()
        out = [report_part_row(_plain(r)) if part.kind == "reports" else _plain(r) for r in rows]
        return out, (out[-1][cols.index(key)] if out else after)

    def progress(self) -> str | None:
        row = self.store._one(f"SELECT value FROM {self.s}.twin_meta WHERE key = 'copy'")
        return None if row is None else str(row[0])

    def layer_info(self, layer: str) -> LayerInfo:
        row = self.store._one(f"SELECT feature_count, next_fid FROM {self.s}.twin_layers WHERE layer = %s", (layer,))
        assert row is not None
        return LayerInfo(int(row[0]), int(row[1]), self.store.extent(layer))

    def checksum(self, part: Part) -> tuple[int, str]:
        return digest_part(self, part)

    # -- writing -------------------------------------------------------------------------------
    def load(self, part: Part, rows: list[tuple[Any, ...]], progress: str) -> None:
        table, cols = self._table(part), list(self._columns(part))
        with self.store.pool.connection() as conn, conn.transaction():
            if part.kind in ("rows", "history") and self._empty(conn, table):
                # indexes and keys are built once the rows are in (finish_layer): far faster than row by row
                if part.kind == "rows":
                    ddl.run(conn, ddl.script("layer_indexes_drop", self.store.schema, self.catalogue[str(part.layer)]))
                    conn.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{part.layer}_pkey", '
                                 f'DROP CONSTRAINT "{part.layer}_key_key"')
                else:
                    conn.execute(f'DROP INDEX IF EXISTS {self.s}."{part.layer}_history_geom"')
            if part.kind in TILE_PART_COLUMNS:
                cols = ["layer", *cols]
                rows = [(part.layer, *r) for r in rows]
            # A layer's rows go straight in: the progress note commits with them, so a resumed copy never sends a
            # committed chunk again. The small parts go through a temporary table and keep what is there already.
            direct = part.kind in ("rows", "history")
            if not direct:
                conn.execute(f"CREATE TEMP TABLE twin_load (LIKE {table} INCLUDING DEFAULTS) ON COMMIT DROP")
            with conn.cursor().copy(f"COPY {table if direct else 'twin_load'} ({_q(cols)}) FROM STDIN") as copy:
                geom = cols.index("geom") if direct else -1
                for row in rows:
                    copy.write_row(row if geom < 0 else (*row[:geom], _hex(row[geom]), *row[geom + 1:]))
            if not direct:
                system = " OVERRIDING SYSTEM VALUE" if part.kind in ("audit", "reports") else ""
                conn.execute(f"INSERT INTO {table} ({_q(cols)}){system} SELECT {_q(cols)} FROM twin_load "
                             "ON CONFLICT DO NOTHING")
            if part.kind in ("audit", "reports"):  # the next row recorded here gets the next id
                conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                             f"coalesce((SELECT max(id) FROM {table}), 0) + 1, false)")
            conn.execute(f"INSERT INTO {self.s}.twin_meta VALUES ('copy', %s) ON CONFLICT (key) "
                         "DO UPDATE SET value = excluded.value", (progress,))

    @staticmethod
    def _empty(conn: psycopg.Connection, table: str) -> bool:
        return bool(scalar(conn.execute(f"SELECT NOT EXISTS (SELECT 1 FROM {table})")))

    def finish_layer(self, layer: str, info: LayerInfo) -> None:
        spec = self.catalogue[layer]
        with self.store.pool.connection() as conn:
            with conn.transaction():
                table = f"{self.s}.{ddl.q(spec.id)}"
                have = {r[0] for r in conn.execute("SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass",
                                                   (table,))}
                if f"{spec.id}_pkey" not in have:
                    conn.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{spec.id}_pkey" PRIMARY KEY (fid), '
                                 f'ADD CONSTRAINT "{spec.id}_key_key" UNIQUE ("key")')
                ddl.run(conn, "\n".join(
                    line.replace("CREATE INDEX", "CREATE INDEX IF NOT EXISTS")
                    for line in ddl.script("layer_indexes", self.store.schema, spec).splitlines()))
                conn.execute(f'CREATE INDEX IF NOT EXISTS "{spec.id}_history_geom" ON '
                             f'{self.s}.{ddl.q(spec.id + "_history")} USING gist (geom)')
                e = info.extent or (None, None, None, None)
                conn.execute(f"UPDATE {self.s}.twin_layers SET feature_count = %s, next_fid = %s, min_x = %s, "
                             "min_y = %s, max_x = %s, max_y = %s WHERE layer = %s",
                             (info.count, info.next_fid, *e, spec.id))
                conn.execute(f"SELECT setval(pg_get_serial_sequence('{self.s}.{ddl.q(spec.id + '_history')}', "
                             f"'hid'), coalesce((SELECT max(hid) FROM {self.s}.{ddl.q(spec.id + '_history')}), 0) + 1, "
                             "false)")
            for table in (spec.id, spec.id + "_history"):
                conn.execute(f"ANALYZE {self.s}.{ddl.q(table)}")


def _plain(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """A row's values as Python's plain types (bytes for PostgreSQL's ``bytea``/memoryview)."""
    return tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)


def _hex(wkb: bytes) -> str:
    """WKB as the hex text ``COPY`` gives a geometry column, with the SRID (EWKB) the column wants."""
    # EWKB: the type word gains the SRID flag (0x20000000) and the SRID follows it
    order: Literal["little", "big"] = "little" if wkb[0] == 1 else "big"
    kind = int.from_bytes(wkb[1:5], order) | 0x20000000
    return (wkb[:1] + kind.to_bytes(4, order) + (4326).to_bytes(4, order) + wkb[5:]).hex()
