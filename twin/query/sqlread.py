"""Lean, budgeted reads of a layer's rows straight from the GeoPackage, for the query API.

The store's ``features()`` builds a GeoDataFrame, which is right for analysis but too slow for a
service answering in milliseconds. This module reads plain row tuples over its own read-only
connections (one per thread), uses the GeoPackage R-tree for every spatial constraint, and
interrupts any statement that runs past the time budget.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson
import shapely

from twin.catalogue import Catalogue, LayerSpec
from twin.errors import QueryTooExpensiveError
from twin.geodesy import degree_box
from twin.model.area import Area
from twin.query import sqlfuncs
from twin.query.filters import queryables
from twin.query.model import FeatureQuery
from twin.store.ddl import q
from twin.store.gpkg_blob import decode_geometries, point_coordinates
from twin.store.readers import ReaderPool

Box = tuple[float, float, float, float]
#: Up to this many matches are counted exactly for ``numberMatched``; beyond it the number is estimated.
COUNT_CAP = 10_000
#: SQLite virtual-machine steps between two looks at the clock (about a millisecond of work).
_PROGRESS_STEPS = 50_000
#: Up to this many R-tree candidates, an area is applied by testing them in one vectorised pass and
#: handing SQL the matching ids; beyond it, row by row inside the query.
SCOPE_CANDIDATES = 20_000


@dataclass(frozen=True)
class Rows:
    """Rows of one layer: ``fid, key, status, updated_at, <fields...>, geom[, distance_m]``."""

    spec: LayerSpec
    columns: tuple[str, ...]
    rows: list[tuple]
    unmasked: frozenset[str] = frozenset()  # personal fields to leave unmasked when encoding


def _rtree_clause(boxes: list[list[Box]]) -> tuple[str, list[object]]:
    """R-tree conditions (alias ``r``): for each group, the envelope meets one of its boxes."""
    groups, params = [], []
    for alternatives in boxes:
        ors = ["(r.minx <= ? AND r.maxx >= ? AND r.miny <= ? AND r.maxy >= ?)"] * len(alternatives)
        groups.append("(" + " OR ".join(ors) + ")")
        for b in alternatives:
            params += [b[2], b[0], b[3], b[1]]
    return " AND ".join(groups), params


def _scope_clause(inner: tuple[Box, ...]) -> str:
    """The area test (alias ``r`` for the R-tree): rows wholly inside an inner box pass untested."""
    exact = "twin_pred('intersects', t.geom, ?)"
    if not inner:
        return exact
    inside = " OR ".join(["(r.minx >= ? AND r.maxx <= ? AND r.miny >= ? AND r.maxy <= ?)"] * len(inner))
    return f"(CASE WHEN {inside} THEN 1 ELSE {exact} END)"


def row_columns(spec: LayerSpec, near: bool = False) -> tuple[str, ...]:
    return ("fid", "key", "status", "updated_at", *spec.field_names, "geom", *(("distance_m",) if near else ()))


class Reader:
    """Read-only access to a store file for the query API, safe to share between threads."""

    def __init__(self, path: Path, catalogue: Catalogue, *, budget_s: float = 2.0) -> None:
        self.path = Path(path)
        self.catalogue = catalogue
        self.budget_s = budget_s
        self._pool = ReaderPool(self.path, setup=sqlfuncs.setup_reader)
        self._local = threading.local()

    def _conn(self) -> sqlite3.Connection:
        return self._pool.get()

    def close(self) -> None:
        self._pool.close()

    @contextmanager
    def _budget(self, what: str) -> Iterator[sqlite3.Connection]:
        """Interrupt the statement once this thread has spent ``budget_s`` seconds of CPU on it.

        CPU time, not wall time: under load a cheap query waits for the GIL behind its neighbours, and
        must be slow rather than refused. The clock is read only every :data:`_PROGRESS_STEPS` steps.
        """
        conn = self._conn()
        deadline = time.thread_time() + self.budget_s
        conn.set_progress_handler(lambda: time.thread_time() > deadline, _PROGRESS_STEPS)
        try:
            yield conn
        except sqlite3.OperationalError as exc:
            if "interrupted" not in str(exc):
                raise
            raise QueryTooExpensiveError(
                f"{what} ran past the {self.budget_s:g} s budget: filter too expensive; add a bbox or a "
                "narrower filter"
            ) from None
        finally:
            conn.set_progress_handler(None, 0)

    def execute(self, sql: str, params: list[object], what: str = "the query") -> list[tuple]:
        """Run one read statement under the time budget."""
        with self._budget(what) as conn:
            return conn.execute(sql, params).fetchall()

    # -- feature queries -----------------------------------------------------------------------
    def _select_list(self, spec: LayerSpec) -> str:
        return ", ".join(["t.fid", 't."key"', "t.status", "t.updated_at",
                          *(f"t.{q(f)}" for f in spec.field_names), "t.geom"])

    def _from_where(self, spec: LayerSpec, query: FeatureQuery) -> tuple[str, list[object]]:
        """``FROM ... WHERE ...`` of a query, R-tree first, with its parameters."""
        where: list[str] = []
        params: list[object] = []
        boxes: list[list[Box]] = [[e] for e in query.envelopes]
        extent = self.extent(spec.id)
        exact_bbox = query.bbox is not None and not (extent is not None and query.bbox.contains(extent))
        if exact_bbox:
            boxes.append(query.bbox.parts)
        if query.near is not None:
            boxes.append([degree_box(query.near.lon, query.near.lat, query.near.metres)])
        scoped = query.scope is not None and not (query.bbox is not None and all(
            query.scope.covers_box(b) for b in query.bbox.parts))
        members = self._members(spec, query) if scoped else None
        if members is not None:
            scoped = False
            where.append("t.fid IN (SELECT value FROM json_each(?))")
            params.append(orjson.dumps(members).decode())
        if scoped:
            assert query.scope is not None
            boxes.append([query.scope.bounds])
        # The R-tree holds 32-bit float boxes (rounded outwards), so even points near an edge of the bbox
        # are tested exactly; a box wholly inside the bbox short-cuts the test (needs r.*, hence the join).
        join = exact_bbox or scoped
        rtree = q("rtree_" + spec.id + "_geom")
        if boxes:
            clause, box_params = _rtree_clause(boxes)
            where.append(clause if join else f"t.fid IN (SELECT id FROM {rtree} r WHERE {clause})")
            params += box_params
        if exact_bbox:
            assert query.bbox is not None
            inside = ["(r.minx >= ? AND r.maxx <= ? AND r.miny >= ? AND r.maxy <= ?)"] * len(query.bbox.parts)
            # CASE, unlike OR, guarantees the cheap test runs first and the exact one only at the edges
            where.append(f"(CASE WHEN {' OR '.join(inside)} THEN 1 ELSE twin_pred('intersects', t.geom, ?) END)")
            for minx, miny, maxx, maxy in query.bbox.parts:
                params += [minx, maxx, miny, maxy]  # the order of the inside test's columns
            params.append(shapely.to_wkb(shapely.union_all([shapely.box(*b) for b in query.bbox.parts])))
        if scoped:
            assert query.scope is not None
            where.append(_scope_clause(query.scope.inner))
            params += [v for b in query.scope.inner for v in (b[0], b[2], b[1], b[3])]
            params.append(query.scope.wkb)
        if query.near is not None:
            where.append("twin_distance(t.geom, ?, ?) <= ?")
            params += [query.near.lon, query.near.lat, query.near.metres]
        if query.datetime is not None:
            if query.datetime.start is not None:
                where.append("t.updated_at >= ?")
                params.append(query.datetime.start)
            if query.datetime.end is not None:
                where.append("t.updated_at <= ?")
                params.append(query.datetime.end)
        if query.where is not None:
            where.append(query.where)
            params += list(query.params)
        source = f"{q(spec.id)} t" + (f" JOIN {rtree} r ON r.id = t.fid" if join else "")
        return source + (" WHERE " + " AND ".join(where) if where else ""), params

    @contextmanager
    def one_answer(self) -> Iterator[None]:
        """Statements run inside (a page and its count) share the area members they work out."""
        self._local.members = {}
        try:
            yield
        finally:
            self._local.members = None

    def _members(self, spec: LayerSpec, query: FeatureQuery) -> list[int] | None:
        memo = getattr(self._local, "members", None)
        key = (spec.id, id(query.scope), query.bbox, query.near, query.envelopes)
        if memo is not None and key in memo:
            return memo[key]
        found = self._scope_members(spec, query)
        if memo is not None:
            memo[key] = found
        return found

    def _scope_members(self, spec: LayerSpec, query: FeatureQuery) -> list[int] | None:
        """Ids of the components meeting the query's area among the R-tree candidates (envelopes meeting the
        area's, the bbox's, the radius's and the filter's boxes), when there are at most
        :data:`SCOPE_CANDIDATES`; else ``None``.

        Candidates lying inside one of the area's inner boxes are taken as they are; the others are
        tested exactly, all at once, which costs far less than a test per row inside the query.
        """
        area = query.scope
        assert area is not None
        # the envelope must meet the area's and each other constraint's box, each on its own (a line can meet
        # two boxes without meeting their intersection)
        boxes = [[area.bounds], *([e] for e in query.envelopes)]
        if query.bbox is not None:
            boxes.append(query.bbox.parts)
        if query.near is not None:
            boxes.append([degree_box(query.near.lon, query.near.lat, query.near.metres)])
        clause, params = _rtree_clause(boxes)
        rtree = q("rtree_" + spec.id + "_geom")
        rows = self.execute(f"SELECT id, minx, maxx, miny, maxy FROM {rtree} r WHERE {clause} LIMIT ?",
                            [*params, SCOPE_CANDIDATES + 1], "applying the area")
        if len(rows) > SCOPE_CANDIDATES:
            return None
        if not rows:
            return []
        cand = np.array(rows, dtype=np.float64)
        inside = np.zeros(len(cand), dtype=bool)
        for a, b, c, d in area.inner:
            inside |= (cand[:, 1] >= a) & (cand[:, 2] <= c) & (cand[:, 3] >= b) & (cand[:, 4] <= d)
        ids = cand[:, 0].astype(np.int64)
        found = ids[inside].tolist()
        rest = ids[~inside].tolist()
        if rest:
            blobs = self.execute(f"SELECT fid, geom FROM {q(spec.id)} WHERE fid IN (SELECT value FROM json_each(?))",
                                 [orjson.dumps(rest).decode()], "applying the area")
            hit = area.meets(decode_geometries([b for _, b in blobs]))
            found += [fid for (fid, _), ok in zip(blobs, hit, strict=True) if ok]
        return sorted(found)

    def area_points(self, spec: LayerSpec, area: Area) -> tuple[np.ndarray, np.ndarray] | None:
        """Ids and points of ``spec``'s components meeting ``area``, when the layer is points and the area's
        envelope holds at most :data:`SCOPE_CANDIDATES` of them; else ``None``."""
        rtree = q("rtree_" + spec.id + "_geom")
        minx, miny, maxx, maxy = area.bounds
        rows = self.execute(f"SELECT t.fid, t.geom FROM {rtree} r JOIN {q(spec.id)} t ON t.fid = r.id WHERE "
                            "r.minx <= ? AND r.maxx >= ? AND r.miny <= ? AND r.maxy >= ? LIMIT ?",
                            [maxx, minx, maxy, miny, SCOPE_CANDIDATES + 1], "reading the area's points")
        if len(rows) > SCOPE_CANDIDATES:
            return None
        xy = point_coordinates([b for _, b in rows])
        if xy is None:
            return None
        points = shapely.points(xy) if len(xy) else np.empty(0, dtype=object)
        keep = area.meets(points) if len(points) else np.zeros(0, dtype=bool)
        return np.array([f for f, _ in rows], dtype=np.int64)[keep], points[keep]

    def _order(self, spec: LayerSpec, query: FeatureQuery) -> str:
        cols = queryables(spec, query.unmasked)  # sortby was checked against what the caller sees unmasked
        terms = [f"{cols[s.column].column} {'ASC' if s.ascending else 'DESC'}" for s in query.sortby]
        if query.near is not None and not query.sortby:
            terms.append("distance_m")
        return " ORDER BY " + ", ".join([*terms, "t.fid"])

    def select(self, query: FeatureQuery) -> Rows:
        """One page of a query's rows."""
        spec = self.catalogue[query.layer]
        source, params = self._from_where(spec, query)
        cols = self._select_list(spec)
        if query.near is not None:
            cols += ", twin_distance(t.geom, ?, ?) AS distance_m"
            params = [query.near.lon, query.near.lat, *params]
        sql = f"SELECT {cols} FROM {source}{self._order(spec, query)} LIMIT ? OFFSET ?"
        rows = self.execute(sql, [*params, query.limit, query.offset])
        return Rows(spec, row_columns(spec, query.near is not None), rows, query.unmasked)

    def count(self, query: FeatureQuery, layer_count: int, cap: int = COUNT_CAP) -> tuple[int, bool]:
        """``numberMatched`` and whether it is exact: counted up to ``cap``, else estimated."""
        extent = self.extent(query.layer)
        covers = query.bbox is None or (extent is not None and query.bbox.contains(extent))
        if covers and query.datetime is None and query.where is None and query.near is None and query.scope is None:
            return layer_count, True
        spec = self.catalogue[query.layer]
        if query.scope is not None and query.bbox is None and query.datetime is None and query.where is None \
                and query.near is None:
            inside = self._inside_count(spec, query.scope.inner)
            if inside > cap:
                return inside, False
        source, params = self._from_where(spec, query)
        try:
            n = self.execute(f"SELECT count(*) FROM (SELECT 1 FROM {source} LIMIT ?)", [*params, cap + 1],
                             "counting the matches")[0][0]
        except QueryTooExpensiveError:
            n = cap + 1
        if n <= cap:
            return int(n), True
        return max(cap, self._estimate(query, layer_count, cap)), False

    def _inside_count(self, spec: LayerSpec, boxes: tuple[Box, ...]) -> int:
        """Components lying wholly inside one of ``boxes`` (disjoint; half-open, so none is counted twice),
        from the R-tree alone: a lower bound of an area's count, cheap even for a whole district."""
        rtree = q("rtree_" + spec.id + "_geom")
        n = 0
        for minx, miny, maxx, maxy in boxes:
            n += self.execute(f"SELECT count(*) FROM {rtree} WHERE minx >= ? AND maxx < ? AND miny >= ? AND maxy < ?",
                              [minx, maxx, miny, maxy], "counting the area")[0][0]
        return int(n)

    def _estimate(self, query: FeatureQuery, layer_count: int, cap: int) -> int:
        """The layer's count scaled by how much of its extent the bbox covers (uniform density)."""
        extent = self.extent(query.layer)
        if (query.bbox is None or extent is None or query.where is not None or query.near is not None
                or query.scope is not None):
            return cap
        area = max((extent[2] - extent[0]) * (extent[3] - extent[1]), 1e-12)
        covered = 0.0
        for b in query.bbox.parts:
            w = max(0.0, min(b[2], extent[2]) - max(b[0], extent[0]))
            h = max(0.0, min(b[3], extent[3]) - max(b[1], extent[1]))
            covered += w * h
        return round(layer_count * min(1.0, covered / area))

    # -- look-ups ------------------------------------------------------------------------------
    def by_key(self, spec: LayerSpec, key: str, unmasked: frozenset[str] = frozenset()) -> Rows:
        sql = f'SELECT {self._select_list(spec)} FROM {q(spec.id)} t WHERE t."key" = ?'
        return Rows(spec, row_columns(spec), self.execute(sql, [key]), unmasked)

    def by_fids(self, spec: LayerSpec, fids: list[int], unmasked: frozenset[str] = frozenset()) -> Rows:
        """Rows of ``fids``, in the order given."""
        sql = f"SELECT {self._select_list(spec)} FROM {q(spec.id)} t WHERE t.fid IN (SELECT value FROM json_each(?))"
        found = {r[0]: r for r in self.execute(sql, [orjson.dumps(fids).decode()])}
        return Rows(spec, row_columns(spec), [found[f] for f in fids if f in found], unmasked)

    def layer_count(self, layer: str) -> int:
        """How many components the layer has now (the store keeps this count)."""
        row = self._conn().execute("SELECT feature_count FROM twin_layers WHERE layer = ?", (layer,)).fetchone()
        return int(row[0]) if row else 0

    def last_change(self, layer: str) -> str | None:
        """Time of the layer's latest changeset, or ``None``."""
        row = self._conn().execute("SELECT time FROM twin_changesets WHERE layer = ? ORDER BY id DESC LIMIT 1",
                                   (layer,)).fetchone()
        return None if row is None else str(row[0])

    def extent(self, layer: str) -> Box | None:
        row = self._conn().execute(
            "SELECT min_x, min_y, max_x, max_y FROM gpkg_contents WHERE table_name = ?", (layer,)
        ).fetchone()
        return None if row is None or row[0] is None else (row[0], row[1], row[2], row[3])
