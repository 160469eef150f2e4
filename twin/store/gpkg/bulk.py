"""The GeoPackage engine's :class:`~twin.store.base.Bulk`: a store's parts read and written as stored.

Rows travel with their fids, keys, versions and times; geometries as ISO WKB (a blob's header is added or cut).
While a layer is loaded its R-tree triggers are off; :meth:`GpkgBulk.finish_layer` packs the R-tree in one pass
and sets the layer's count, next fid and extent.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import shapely

from twin.catalogue import LayerSpec
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
from twin.store.gpkg import ddl
from twin.store.gpkg.blob import decode, encode, envelope, wkb_offset
from twin.store.gpkg.rtree_bulk import bulk_load

if TYPE_CHECKING:
    from twin.store.gpkg.store import GeoPackageStore

_ACCESS_TABLES = {"users": "users", "tokens": "tokens", "audit": "audit"}
_ACCESS_ORDER = {"users": "name", "tokens": "id", "audit": "id"}
_TABLES = {"cells": "twin_tiles_cells", "shapes": "twin_tiles_shapes", "aggregate": "twin_tiles_state"}
TILE_COLUMNS = {kind: (_TABLES[kind], cols) for kind, cols in TILE_PART_COLUMNS.items()}


def _q(names: tuple[str, ...] | list[str]) -> str:
    return ", ".join(f'"{n}"' for n in names)


class GpkgBulk:
    def __init__(self, store: GeoPackageStore, access: Path | None) -> None:
        self.store = store
        self.catalogue = store.catalogue
        self.access = store.access(access)

    def parts(self) -> list[Part]:
        out = [Part("changesets"), Part("reports"), *(Part(k) for k in ACCESS_COLUMNS)]
        for layer in self.catalogue:
            out += [Part("rows", layer), Part("history", layer), *(Part(k, layer) for k in TILE_COLUMNS)]
        return out

    # -- reading -------------------------------------------------------------------------------
    def _columns(self, part: Part) -> tuple[str, ...]:
        if part.kind == "changesets":
            return CHANGESET_COLUMNS
        if part.kind == "reports":
            return REPORT_PART_COLUMNS
        if part.kind in ACCESS_COLUMNS:
            return ACCESS_COLUMNS[part.kind]
        spec = self.catalogue[str(part.layer)]
        if part.kind == "rows":
            return (*ROW_COLUMNS, *spec.field_names, "geom")
        if part.kind == "history":
            return ("hid", *ROW_COLUMNS, *spec.field_names, *HISTORY_COLUMNS, "geom")
        return TILE_COLUMNS[part.kind][1]

    def dump(self, part: Part, after: object, limit: int) -> tuple[list[tuple[Any, ...]], object]:
        if part.kind in ACCESS_COLUMNS:
            order = _ACCESS_ORDER[part.kind]
            rows = self.access.read(
                f"SELECT {_q(ACCESS_COLUMNS[part.kind])} FROM {{{part.kind}}} WHERE ? IS NULL OR \"{order}\" > ? "
                f'ORDER BY "{order}" LIMIT ?', (after, after, limit))
            return rows, (rows[-1][ACCESS_COLUMNS[part.kind].index(order)] if rows else after)
        conn = self.store._reader()
        if part.kind == "changesets":
            rows = conn.execute(f"SELECT {_q(CHANGESET_COLUMNS)} FROM twin_changesets WHERE id > ? ORDER BY id "
                                "LIMIT ?", (after or 0, limit)).fetchall()
            return rows, (rows[-1][0] if rows else after)
        if part.kind == "reports":
            rows = [report_part_row(r) for r in conn.execute(
                f"SELECT {_q(REPORT_PART_COLUMNS)} FROM twin_reports WHERE id > ? ORDER BY id LIMIT ?",
                (after or 0, limit)).fetchall()]
            return rows, (rows[-1][0] if rows else after)
        if part.kind in TILE_COLUMNS:  # a layer's aggregates are read whole (one state row, cells, shapes)
            if after is not None:
                return [], after
            table, cols = TILE_COLUMNS[part.kind]
            rows = conn.execute(f"SELECT {_q(cols)} FROM {table} WHERE layer = ? ORDER BY {_q(cols[:-1])}",
                                (part.layer,)).fetchall()
            return rows, "all"
        table = ddl.q(str(part.layer) + ("_history" if part.kind == "history" else ""))
        key = "hid" if part.kind == "history" else "fid"
        names = list(self._columns(part))
        rows = conn.execute(f"SELECT {_q(names)} FROM {table} WHERE {key} > ? ORDER BY {key} LIMIT ?",
                            (after or 0, limit)).fetchall()
        wkb = _wkb([r[-1] for r in rows])
        return [(*r[:-1], w) for r, w in zip(rows, wkb, strict=True)], (rows[-1][0] if rows else after)

    def progress(self) -> str | None:
        row = self.store._reader().execute("SELECT value FROM twin_meta WHERE key = 'copy'").fetchone()
        return None if row is None else str(row[0])

    def layer_info(self, layer: str) -> LayerInfo:
        conn = self.store._reader()
        count = int(conn.execute("SELECT feature_count FROM twin_layers WHERE layer = ?", (layer,)).fetchone()[0])
        seq = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (layer,)).fetchone()
        top = conn.execute(f"SELECT max(fid) FROM {ddl.q(layer)}").fetchone()[0]
        next_fid = max(int(seq[0]) if seq else 0, int(top or 0)) + 1
        return LayerInfo(count, next_fid, self.store.extent(layer))

    def checksum(self, part: Part) -> tuple[int, str]:
        return digest_part(self, part)

    # -- writing -------------------------------------------------------------------------------
    def load(self, part: Part, rows: list[tuple[Any, ...]], progress: str) -> None:
        if part.kind in ACCESS_COLUMNS:
            with self.access.write() as w:
                w.executemany(f"INSERT INTO {{{part.kind}}} ({_q(ACCESS_COLUMNS[part.kind])}) VALUES "
                              f"({', '.join('?' * len(ACCESS_COLUMNS[part.kind]))}) ON CONFLICT DO NOTHING", rows)
            self._note(progress)
            return
        with self.store.writing() as conn:
            if part.kind == "changesets":
                conn.executemany(f"INSERT OR IGNORE INTO twin_changesets ({_q(CHANGESET_COLUMNS)}) VALUES "
                                 f"({', '.join('?' * len(CHANGESET_COLUMNS))})", rows)
            elif part.kind == "reports":
                conn.executemany(f"INSERT OR IGNORE INTO twin_reports ({_q(REPORT_PART_COLUMNS)}) VALUES "
                                 f"({', '.join('?' * len(REPORT_PART_COLUMNS))})", rows)
            elif part.kind in TILE_COLUMNS:
                table, cols = TILE_COLUMNS[part.kind]
                conn.executemany(f"INSERT OR REPLACE INTO {table} (layer, {_q(cols)}) VALUES "
                                 f"(?, {', '.join('?' * len(cols))})", [(part.layer, *r) for r in rows])
            else:
                self._load_layer(conn, part, rows)
            conn.execute("INSERT OR REPLACE INTO twin_meta VALUES ('copy', ?)", (progress,))

    def _note(self, progress: str) -> None:
        with self.store.writing() as conn:
            conn.execute("INSERT OR REPLACE INTO twin_meta VALUES ('copy', ?)", (progress,))

    def _load_layer(self, conn: sqlite3.Connection, part: Part, rows: list[tuple[Any, ...]]) -> None:
        spec = self.catalogue[str(part.layer)]
        for statement in ddl.statements(ddl.layer_script("rtree_triggers_drop", spec)):
            conn.execute(statement)
        cols = list(self._columns(part))
        table = ddl.q(spec.id + ("_history" if part.kind == "history" else ""))
        blobs = encode(shapely.from_wkb(np.array([r[-1] for r in rows], dtype=object))) if rows else []
        conn.executemany(f"INSERT OR IGNORE INTO {table} ({_q(cols)}) VALUES ({', '.join('?' * len(cols))})",
                         [(*r[:-1], b) for r, b in zip(rows, blobs, strict=True)])

    def finish_layer(self, layer: str, info: LayerInfo) -> None:
        spec = self.catalogue[layer]
        with self.store.writing() as conn:
            rtree = ddl.q(f"rtree_{spec.id}_geom")
            conn.execute(f"DELETE FROM {rtree}")
            fids, boxes = _envelopes(conn, spec)
            if len(fids):
                bulk_load(conn, spec.id, fids, boxes)
            for name in ("rtree_triggers_drop", "rtree_triggers"):  # a layer with no rows kept its triggers
                for statement in ddl.statements(ddl.layer_script(name, spec)):
                    conn.execute(statement)
            conn.execute("UPDATE twin_layers SET feature_count = ? WHERE layer = ?", (info.count, spec.id))
            conn.execute("DELETE FROM sqlite_sequence WHERE name = ?", (spec.id,))
            conn.execute("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", (spec.id, info.next_fid - 1))
            e = info.extent or (None, None, None, None)
            conn.execute("UPDATE gpkg_contents SET min_x = ?, min_y = ?, max_x = ?, max_y = ? "
                         "WHERE table_name IN (?, ?)", (*e, spec.id, spec.id + "_history"))


def _wkb(blobs: list[bytes]) -> list[bytes]:
    """The little-endian 2D ISO WKB of GeoPackage blobs: cut from the blob as twin writes it, rewritten otherwise
    (a blob another program wrote big-endian or with heights)."""
    out = []
    for blob in blobs:
        wkb = blob[wkb_offset(blob):]
        plain = wkb[0] == 1 and int.from_bytes(wkb[1:5], "little") < 1000
        out.append(wkb if plain else bytes(shapely.to_wkb(decode([blob])[0], byte_order=1, flavor="iso",
                                                          output_dimension=2)))
    return out


def _envelopes(conn: sqlite3.Connection, spec: LayerSpec) -> tuple[np.ndarray, np.ndarray]:
    """Every fid of the layer with its (minx, miny, maxx, maxy), read from the blobs' headers."""
    fids, boxes = [], []
    cur = conn.execute(f"SELECT fid, geom FROM {ddl.q(spec.id)}")
    while rows := cur.fetchmany(200_000):
        for fid, blob in rows:
            env = envelope(blob)
            if env is not None:
                fids.append(fid)
                boxes.append((env[0], env[2], env[1], env[3]))
    return np.asarray(fids, dtype=np.int64), np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
