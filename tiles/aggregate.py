"""Low-zoom aggregates, precomputed per zoom in the store file and kept up to date from changesets.

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
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import shapely

from tiles import shapes as shp
from tiles.grid import TileID, cell_bounds, cell_index, cell_size, lonlat_box, to_mercator
from tiles.reader import TileReader, last_changeset
from twin.catalogue import Catalogue, GeometryKind
from twin.store.ddl import q
from twin.store.gpkg_blob import decode

log = logging.getLogger("tiles")
#: Cells per tile side are ``2**DEPTH``: 16 x 16 cells of 256 tile units.
DEPTH = 4
_VERSION = 2
_CELL_COLUMNS = ["layer", "level", "cx", "cy", "status", "n", "measure", "sx", "sy"]
_CHUNK = 200_000
#: Above this many touched cells a sync rebuilds a layer's shapes from a full scan.
_REBUILD_CELLS = 20_000
_EARTH_RADIUS = 6378137.0
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS twin_tiles_state (layer TEXT PRIMARY KEY, changeset INTEGER NOT NULL, "
    "signature TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS twin_tiles_cells (layer TEXT NOT NULL, level INTEGER NOT NULL, cx INTEGER NOT NULL, "
    "cy INTEGER NOT NULL, status TEXT NOT NULL, n INTEGER NOT NULL, measure REAL NOT NULL, sx REAL NOT NULL, "
    "sy REAL NOT NULL, PRIMARY KEY (layer, level, cx, cy, status)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS twin_tiles_shapes (layer TEXT NOT NULL, level INTEGER NOT NULL, "
    "cx INTEGER NOT NULL, cy INTEGER NOT NULL, geom BLOB NOT NULL, PRIMARY KEY (layer, level, cx, cy)) WITHOUT ROWID",
)


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


def cell_counts(merc: np.ndarray, statuses: list[str], kind: str, level: int, sign: int = 1) -> pd.DataFrame:
    """Members counted per cell of ``level`` and status: cx, cy, status, n, measure and the sums sx, sy of their
    representative points (Web Mercator, relative to the cell's corner), which place the cell's point."""
    return counts_at(*representative(merc, kind), statuses, level, sign)


def counts_at(x: np.ndarray, y: np.ndarray, measure: np.ndarray, statuses: list[str] | np.ndarray, level: int,
              sign: int = 1) -> pd.DataFrame:
    """:func:`cell_counts` of members counted at the Web Mercator points ``x, y``."""
    cx, cy = cell_index(x, y, level)
    corner = cell_bounds(cx, cy, level)
    frame = pd.DataFrame({"cx": cx, "cy": cy, "status": statuses, "n": sign, "measure": sign * measure,
                          "sx": sign * (x - corner[:, 0]), "sy": sign * (y - corner[:, 1])})
    return frame.groupby(["cx", "cy", "status"], as_index=False, sort=False).sum()


class Aggregates:
    """The aggregate tables of one store file: planning, syncing and reading per tile."""

    def __init__(self, path: Path, catalogue: Catalogue, reader: TileReader, depth: int = DEPTH) -> None:
        self.path = Path(path)
        self.catalogue = catalogue
        self.reader = reader
        self.depth = depth
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, isolation_level=None, timeout=60, check_same_thread=False)
        self._conn.execute("PRAGMA busy_timeout = 60000")
        try:
            columns = [r[1] for r in self._conn.execute("PRAGMA table_info(twin_tiles_cells)")]
            if columns and columns != _CELL_COLUMNS:  # written by an older twin: rebuilt on first use
                for table in ("twin_tiles_state", "twin_tiles_cells", "twin_tiles_shapes"):
                    self._conn.execute(f"DROP TABLE IF EXISTS {table}")
            for statement in _SCHEMA:
                self._conn.execute(statement)
            self.writable = True
        except sqlite3.OperationalError as exc:  # a read-only store: cells are then computed per tile
            log.warning("%s: cannot keep tile aggregates in the store (%s); low zooms are computed per tile",
                        self.path, exc)
            self.writable = False

    def close(self) -> None:
        self._conn.close()

    def plan(self, layer: str) -> Plan | None:
        """The layer's aggregation plan, or ``None`` when it is drawn raw at every zoom."""
        spec = self.catalogue[layer]
        if spec.min_zoom <= 0:
            return None
        kind = {GeometryKind.line: "line", GeometryKind.polygon: "polygon"}.get(spec.geometry, "point")
        return Plan(spec.id, kind, spec.min_zoom, self.depth)

    # -- reading ---------------------------------------------------------------------------------
    def state(self, conn: sqlite3.Connection, plan: Plan) -> int | None:
        """The changeset the layer's aggregates reflect, or ``None`` when they must be built."""
        if not self.writable:
            return None
        row = conn.execute("SELECT changeset, signature FROM twin_tiles_state WHERE layer = ?",
                           (plan.layer,)).fetchone()
        return None if row is None or row[1] != plan.signature else int(row[0])

    def cells(self, conn: sqlite3.Connection, plan: Plan, tile: TileID) -> list[tuple]:
        """``(cx, cy, status, n, measure, sx, sy)`` of the cells inside ``tile``."""
        return _in_tile(conn, "cx, cy, status, n, measure, sx, sy FROM twin_tiles_cells", plan, tile)

    def cells_at(self, conn: sqlite3.Connection, plan: Plan, level: int, cx: np.ndarray, cy: np.ndarray) -> list[tuple]:
        """``(cx, cy, status, n, measure, sx, sy)`` of the listed cells of ``level`` (one index seek each)."""
        if not len(cx):
            return []
        pairs = orjson.dumps(np.column_stack([cx, cy]).astype(np.int64).tolist()).decode()
        return conn.execute(
            "SELECT c.cx, c.cy, c.status, c.n, c.measure, c.sx, c.sy FROM json_each(?) j CROSS JOIN twin_tiles_cells c "
            "ON c.layer = ? AND c.level = ? AND c.cx = json_extract(j.value, '$[0]') "
            "AND c.cy = json_extract(j.value, '$[1]')", (pairs, plan.layer, level)).fetchall()

    def shapes(self, conn: sqlite3.Connection, plan: Plan, tile: TileID) -> list[tuple]:
        """``(cx, cy, wkb)`` of the generalised shapes inside ``tile`` (Web Mercator)."""
        return _in_tile(conn, "cx, cy, geom FROM twin_tiles_shapes", plan, tile)

    # -- syncing ---------------------------------------------------------------------------------
    def sync(self, layer: str) -> int:
        """Bring the layer's aggregates up to its latest changeset; returns that changeset."""
        plan = self.plan(layer)
        if plan is None or not self.writable:
            with self.reader.snapshot() as conn:
                return last_changeset(conn, layer)
        with self._lock:
            while True:
                with self.reader.snapshot() as conn:
                    last = last_changeset(conn, layer)
                    since = self.state(conn, plan)
                    if since == last:
                        return last
                    delta, fine_shapes = _Delta(plan, conn).read(since or 0, rebuild=since is None)
                if self._apply(plan, since, last, delta, fine_shapes):
                    return last

    def _apply(self, plan: Plan, since: int | None, last: int, delta: pd.DataFrame,
               fine_shapes: dict[tuple[int, int], shapely.Geometry | None]) -> bool:
        """Write one sync in one transaction; ``False`` when another process got there first."""
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            if self.state(conn, plan) != since:
                conn.execute("ROLLBACK")
                return False
            if since is None:
                conn.execute("DELETE FROM twin_tiles_cells WHERE layer = ?", (plan.layer,))
                conn.execute("DELETE FROM twin_tiles_shapes WHERE layer = ?", (plan.layer,))
            _apply_counts(conn, plan, delta)
            if plan.has_shapes:
                _apply_shapes(conn, plan, fine_shapes)
            conn.execute("INSERT OR REPLACE INTO twin_tiles_state VALUES (?, ?, ?)", (plan.layer, last, plan.signature))
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return True


class _Delta:
    """What changed in a layer since a changeset, as cell count deltas and rebuilt fine-level shapes."""

    def __init__(self, plan: Plan, conn: sqlite3.Connection) -> None:
        self.plan, self.conn = plan, conn
        self.table, self.history = q(plan.layer), q(plan.layer + "_history")

    def read(self, since: int, rebuild: bool) -> tuple[pd.DataFrame, dict[tuple[int, int], shapely.Geometry | None]]:
        plan = self.plan
        counts: list[pd.DataFrame] = []
        touched: set[tuple[int, int]] = set()
        pieces: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        queries = [(1, f"SELECT status, geom FROM {self.table} WHERE changeset > ?", (since,))]
        if not rebuild:
            queries.insert(0, (-1, f"SELECT status, geom FROM {self.history} WHERE changeset_to > ? "
                                   "AND changeset <= ?", (since, since)))
        for sign, sql, params in queries:
            cur = self.conn.execute(sql, params)
            while rows := cur.fetchmany(_CHUNK):
                merc = to_mercator(decode([r[1] for r in rows]))
                counts.append(cell_counts(merc, [r[0] for r in rows], plan.kind, plan.fine, sign))
                if plan.has_shapes and rebuild:
                    pieces.append(shp.cut(merc, plan.fine, plan.kind == "line"))
                elif plan.has_shapes:
                    _, cx, cy = shp.cells_touched(merc, plan.fine)
                    touched.update(zip(cx.tolist(), cy.tolist(), strict=True))
        delta = pd.concat(counts) if counts else pd.DataFrame(columns=_CELL_COLUMNS[2:])
        delta = delta.groupby(["cx", "cy", "status"], as_index=False, sort=False).sum()
        if not plan.has_shapes:
            return delta, {}
        if not rebuild:
            pieces = [self._pieces_in(touched)]
        cx = np.concatenate([p[0] for p in pieces]) if pieces else np.empty(0, np.int64)
        cy = np.concatenate([p[1] for p in pieces]) if pieces else np.empty(0, np.int64)
        geoms = np.concatenate([p[2] for p in pieces]) if pieces else np.empty(0, object)
        built = shp.grouped(cx, cy, geoms, shp.tolerance(plan.fine, plan.depth), plan.kind == "line")
        return delta, {**dict.fromkeys(touched), **built}

    def _pieces_in(self, cells: set[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Pieces of the current members in ``cells`` (every member meeting one is read again)."""
        plan = self.plan
        if len(cells) > _REBUILD_CELLS:
            rows = self.conn.execute(f"SELECT fid, geom FROM {self.table}").fetchall()
        else:
            cx, cy = np.array([c[0] for c in cells]), np.array([c[1] for c in cells])
            rows_by_fid: dict[int, bytes] = {}
            rtree = q("rtree_" + plan.layer + "_geom")
            for box in cell_bounds(cx, cy, plan.fine).tolist():
                lon0, lat0, lon1, lat1 = lonlat_box(tuple(box))
                found = self.conn.execute(
                    f"SELECT t.fid, t.geom FROM {self.table} t JOIN {rtree} r ON r.id = t.fid "
                    "WHERE r.minx <= ? AND r.maxx >= ? AND r.miny <= ? AND r.maxy >= ?", (lon1, lon0, lat1, lat0))
                rows_by_fid.update(found.fetchall())
            rows = list(rows_by_fid.items())
        merc = to_mercator(decode([r[1] for r in rows])) if rows else np.empty(0, object)
        cx, cy, pieces = shp.cut(merc, plan.fine, plan.kind == "line")
        inside = np.array([(a, b) in cells for a, b in zip(cx.tolist(), cy.tolist(), strict=True)], dtype=bool)
        return cx[inside], cy[inside], pieces[inside]


def _apply_counts(conn: sqlite3.Connection, plan: Plan, delta: pd.DataFrame) -> None:
    """Add count deltas at every level from the finest up to the zoom-0 cells; drop cells that reach 0.

    A parent cell's point sums are its children's, moved to the parent's corner.
    """
    frame = delta
    for level in range(plan.fine, plan.depth - 1, -1):
        if level < plan.fine:
            size = cell_size(level + 1)
            frame = frame.assign(sx=frame.sx + (frame.cx % 2) * size * frame.n,
                                 sy=frame.sy + (1 - frame.cy % 2) * size * frame.n,
                                 cx=frame.cx // 2, cy=frame.cy // 2)
        frame = frame.groupby(["cx", "cy", "status"], as_index=False, sort=False).sum()
        rows = [(plan.layer, level, int(a), int(b), st, int(n), float(m), float(x), float(y))
                for a, b, st, n, m, x, y in frame[_CELL_COLUMNS[2:]].itertuples(index=False, name=None)
                if n != 0 or m != 0 or x != 0 or y != 0]
        conn.executemany(
            "INSERT INTO twin_tiles_cells VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (layer, level, cx, cy, status) DO UPDATE SET n = n + excluded.n, "
            "measure = measure + excluded.measure, sx = sx + excluded.sx, sy = sy + excluded.sy", rows)
        conn.executemany(
            "DELETE FROM twin_tiles_cells WHERE layer = ? AND level = ? AND cx = ? AND cy = ? AND status = ? "
            "AND n <= 0", [r[:5] for r in rows])


def _apply_shapes(conn: sqlite3.Connection, plan: Plan, fine: dict[tuple[int, int], shapely.Geometry | None]) -> None:
    """Replace the fine cells' shapes, then rebuild each coarser touched cell from its four children."""
    changed = fine
    lines = plan.kind == "line"
    for level in range(plan.fine, plan.depth - 1, -1):
        _write_shapes(conn, plan.layer, level, changed)
        if level == plan.depth:
            break
        parents = sorted({(cx >> 1, cy >> 1) for cx, cy in changed})
        changed = {}
        tol = shp.tolerance(level - 1, plan.depth)
        for px, py in parents:
            kids = conn.execute(
                "SELECT geom FROM twin_tiles_shapes WHERE layer = ? AND level = ? AND cx BETWEEN ? AND ? "
                "AND cy BETWEEN ? AND ?", (plan.layer, level, 2 * px, 2 * px + 1, 2 * py, 2 * py + 1)).fetchall()
            geoms = shapely.from_wkb([k[0] for k in kids]) if kids else np.empty(0, object)
            changed[(px, py)] = shp.generalise(geoms, tol, lines) if len(geoms) else None


def _write_shapes(conn: sqlite3.Connection, layer: str, level: int,
                  shapes: dict[tuple[int, int], shapely.Geometry | None]) -> None:
    gone = [(layer, level, cx, cy) for (cx, cy), g in shapes.items() if g is None]
    kept = [(layer, level, cx, cy, shapely.to_wkb(g)) for (cx, cy), g in shapes.items() if g is not None]
    conn.executemany("DELETE FROM twin_tiles_shapes WHERE layer = ? AND level = ? AND cx = ? AND cy = ?", gone)
    conn.executemany("INSERT OR REPLACE INTO twin_tiles_shapes VALUES (?, ?, ?, ?, ?)", kept)


def _in_tile(conn: sqlite3.Connection, what: str, plan: Plan, tile: TileID) -> list[tuple]:
    """Rows of ``what`` (a fixed column list and table) whose cell lies inside ``tile``."""
    level, side = tile.z + plan.depth, 1 << plan.depth
    return conn.execute(
        f"SELECT {what} WHERE layer = ? AND level = ? AND cx BETWEEN ? AND ? AND cy BETWEEN ? AND ?",
        (plan.layer, level, tile.x * side, tile.x * side + side - 1, tile.y * side, tile.y * side + side - 1),
    ).fetchall()
