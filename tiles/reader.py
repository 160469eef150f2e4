"""Reading a store file for tiles: read-only SQLite connections per thread, R-tree first, one snapshot per tile.

A tile's features and the changeset they reflect are read in one transaction, so a cached tile is always
tagged with the exact version of the data it was drawn from, even while another process writes.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from twin.catalogue import LayerSpec
from twin.errors import QueryTooExpensiveError
from twin.query import sqlfuncs
from twin.store.ddl import q
from twin.store.readers import ReaderPool

Box = tuple[float, float, float, float]
_PROGRESS_STEPS = 4_000


def last_changeset(conn: sqlite3.Connection, layer: str) -> int:
    """Id of the latest changeset of ``layer`` (0 when it has none)."""
    row = conn.execute("SELECT max(id) FROM twin_changesets WHERE layer = ?", (layer,)).fetchone()
    return int(row[0] or 0)


def store_identity(conn: sqlite3.Connection) -> str:
    """A short name of the store's lineage (its first changeset), so caches and pyramids of another store
    whose changeset numbers happen to match are never taken for this one's."""
    row = conn.execute("SELECT id, time, author, source FROM twin_changesets ORDER BY id LIMIT 1").fetchone()
    return "empty" if row is None else hashlib.blake2b(repr(tuple(row)).encode(), digest_size=6).hexdigest()


def feature_columns(spec: LayerSpec) -> list[str]:
    """Columns a raw-feature read returns, in order; ``geom`` last."""
    return ["fid", "key", "status", *spec.field_names, "geom"]


class TileReader:
    """Read-only access to the store file, shared by threads (each gets its own connection)."""

    def __init__(self, path: Path, *, budget_s: float = 5.0) -> None:
        self.path = Path(path)
        self.budget_s = budget_s
        self._pool = ReaderPool(self.path, setup=sqlfuncs.setup_reader)

    def conn(self) -> sqlite3.Connection:
        return self._pool.get()

    def close(self) -> None:
        self._pool.close()

    @contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """One read transaction: every read inside sees the same state of the file."""
        conn = self.conn()
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.execute("COMMIT")

    @contextmanager
    def budget(self, conn: sqlite3.Connection, what: str) -> Iterator[None]:
        """Interrupt statements that run past the time budget (a filter too costly for this tile)."""
        deadline = time.monotonic() + self.budget_s
        conn.set_progress_handler(lambda: time.monotonic() > deadline, _PROGRESS_STEPS)
        try:
            yield
        except sqlite3.OperationalError as exc:
            if "interrupted" not in str(exc):
                raise
            raise QueryTooExpensiveError(f"{what} ran past the {self.budget_s:g} s budget; use a narrower filter "
                                         "or zoom in") from None
        finally:
            conn.set_progress_handler(None, 0)

    def features(self, conn: sqlite3.Connection, spec: LayerSpec, box: Box, where: str | None = None,
                 params: tuple[object, ...] = ()) -> list[tuple]:
        """Rows (see :func:`feature_columns`) whose envelope meets the lon/lat ``box``, via the R-tree."""
        cols = ", ".join(f"t.{q(c)}" for c in feature_columns(spec))
        sql = (f"SELECT {cols} FROM {q(spec.id)} t JOIN {q('rtree_' + spec.id + '_geom')} r ON r.id = t.fid "
               "WHERE r.minx <= ? AND r.maxx >= ? AND r.miny <= ? AND r.maxy >= ?")
        args: list[object] = [box[2], box[0], box[3], box[1]]
        if where:
            sql += f" AND ({where})"
            args += list(params)
        with self.budget(conn, f"reading {spec.id} for a tile"):
            return conn.execute(sql, args).fetchall()

    def members(self, conn: sqlite3.Connection, layer: str, boxes: Iterable[Box]) -> list[tuple]:
        """``(fid, status, geom)`` of the components whose envelope meets any of the lon/lat ``boxes`` (once each).

        A box is used as R-tree bounds (``minx <= box[2] AND maxx >= box[0]`` ...), so an inverted box from
        :func:`tiles.scope.meeting_both` selects the envelopes meeting both of its boxes.
        """
        sql = (f"SELECT t.fid, t.status, t.geom FROM {q(layer)} t JOIN {q('rtree_' + layer + '_geom')} r "
               "ON r.id = t.fid WHERE r.minx <= ? AND r.maxx >= ? AND r.miny <= ? AND r.maxy >= ?")
        found: dict[int, tuple] = {}
        with self.budget(conn, f"reading {layer} for a tile"):
            for b in boxes:
                found.update((row[0], row) for row in conn.execute(sql, (b[2], b[0], b[3], b[1])))
        return list(found.values())
