"""Lean, budgeted reads of a GeoPackage store: the engine's :class:`~twin.store.base.Snapshot`.

Plain row tuples over read-only connections (one per thread), the GeoPackage R-tree first for every spatial
constraint, exact tests in SQL (twin's shapely-backed functions, so paging and counts stay right), and any
statement interrupted once it has spent the budget's CPU time. A snapshot is one read transaction: in WAL
mode it sees one committed state however long it lasts, while a writer goes on.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, cast

import numpy as np
import orjson
import shapely
from numpy.typing import NDArray

from twin.catalogue import Catalogue, LayerSpec
from twin.errors import QueryTooExpensiveError
from twin.geodesy import degree_box, distance_to_point
from twin.model.area import Area
from twin.model.changes import WHOLE, LayerLog, LogChangeset, Position, Spans, VersionMeta
from twin.model.filter import Filter
from twin.model.query import COUNT_CAP, FeatureQuery, TimeInterval
from twin.model.reports import KeptReport
from twin.model.rows import TIE_DECIMALS, Hits, Rows, row_columns
from twin.store.base import CellRow, estimate_count, log_of, log_spans, spans_of, version_rows
from twin.store.filter_sql import flag_columns
from twin.store.gpkg.blob import CODEC, decode_geometries, point_coordinates
from twin.store.gpkg.ddl import q
from twin.store.gpkg.filter_sql import DIALECT, column, where

Box = tuple[float, float, float, float]
#: SQLite virtual-machine steps between two looks at the clock (about a millisecond of work).
_PROGRESS_STEPS = 50_000
#: Up to this many R-tree candidates, an area is applied by testing them in one vectorised pass and
#: handing SQL the matching ids; beyond it, row by row inside the query.
SCOPE_CANDIDATES = 20_000
_CHUNK = 200_000
#: The nearest search's first window (half-width in metres, about a street light's spacing in the centre), the
#: most R-tree candidates it ranks per window, and the half-width past which the whole planet has been searched.
_FIRST_WINDOW_M = 30.0
_WINDOW_ROWS = 4096
_WHOLE_EARTH_M = 2.1e7


def _rtree_clause(boxes: list[list[Box]]) -> tuple[str, list[object]]:
    """R-tree conditions (alias ``r``): for each group, the envelope meets one of its boxes."""
    groups: list[str] = []
    params: list[object] = []
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


def _select_list(spec: LayerSpec) -> str:
    return ", ".join(["t.fid", 't."key"', "t.status", "t.updated_at", *(f"t.{q(f)}" for f in spec.field_names),
                      "t.geom"])


class GpkgSnapshot:
    """The reads of one request or tile, in one read transaction on this thread's connection."""

    def __init__(self, conn: sqlite3.Connection, catalogue: Catalogue, budget_s: float) -> None:
        self.conn = conn
        self.catalogue = catalogue
        self.budget_s = budget_s
        self._members: dict[tuple[object, ...], list[int] | None] = {}

    def execute(self, sql: str, params: Sequence[object] | Mapping[str, object], what: str = "the query"
                ) -> list[tuple[Any, ...]]:
        """Run one statement, interrupted once this thread has spent ``budget_s`` seconds of CPU on it.

        CPU time, not wall time: under load a cheap query waits for the GIL behind its neighbours, and must be
        slow rather than refused. The clock is read only every :data:`_PROGRESS_STEPS` steps.
        """
        deadline = time.thread_time() + self.budget_s
        self.conn.set_progress_handler(lambda: time.thread_time() > deadline, _PROGRESS_STEPS)
        try:
            return self.conn.execute(sql, params).fetchall()
        except sqlite3.OperationalError as exc:
            if "interrupted" not in str(exc):
                raise
            raise QueryTooExpensiveError(
                f"{what} ran past the {self.budget_s:g} s budget: filter too expensive; add a bbox or a "
                "narrower filter") from None
        finally:
            self.conn.set_progress_handler(None, 0)

    def _rows(self, spec: LayerSpec, columns: tuple[str, ...], rows: list[tuple[Any, ...]],
              unmasked: frozenset[str] = frozenset()) -> Rows:
        return Rows(spec, columns, rows, unmasked, CODEC)

    # -- feature queries -----------------------------------------------------------------------
    def _from_where(self, spec: LayerSpec, query: FeatureQuery, past: bool = False) -> tuple[str, list[object]]:
        """``FROM ... WHERE ...`` of a query, R-tree first, with its parameters; for a query ``as_of`` a moment, of
        the versions then current in the layer's table or, when ``past``, in its history."""
        conds: list[str] = []
        params: list[object] = []
        table, rtree, ident = spec.id, "rtree_" + spec.id + "_geom", "t.fid"
        if query.as_of is not None:
            conds.append("t.valid_from <= ?" + (" AND t.valid_to > ?" if past else ""))
            params += [query.as_of] * (2 if past else 1)
            if past:
                table, rtree, ident = spec.id + "_history", "rtree_" + spec.id + "_history_geom", "t.hid"
        boxes: list[list[Box]] = [[e] for e in query.envelopes]
        extent = self.extent(spec.id)
        exact_bbox = query.bbox is not None and not (extent is not None and query.bbox.contains(extent))
        if exact_bbox:
            assert query.bbox is not None
            boxes.append(query.bbox.parts)
        if query.near is not None:
            boxes.append([degree_box(query.near.lon, query.near.lat, query.near.metres)])
        scoped = query.scope is not None and not (query.bbox is not None and all(
            query.scope.covers_box(b) for b in query.bbox.parts))
        members = self._scope_members(spec, query) if scoped and query.as_of is None else None
        if members is not None:
            scoped = False
            conds.append("t.fid IN (SELECT value FROM json_each(?))")
            params.append(orjson.dumps(members).decode())
        if scoped:
            assert query.scope is not None
            boxes.append([query.scope.bounds])
        # The R-tree holds 32-bit float boxes (rounded outwards), so even points near an edge of the bbox
        # are tested exactly; a box wholly inside the bbox short-cuts the test (needs r.*, hence the join).
        join = exact_bbox or scoped
        rtree = q(rtree)
        if boxes:
            clause, box_params = _rtree_clause(boxes)
            conds.append(clause if join else f"{ident} IN (SELECT id FROM {rtree} r WHERE {clause})")
            params += box_params
        if exact_bbox:
            assert query.bbox is not None
            inside = ["(r.minx >= ? AND r.maxx <= ? AND r.miny >= ? AND r.maxy <= ?)"] * len(query.bbox.parts)
            # CASE, unlike OR, guarantees the cheap test runs first and the exact one only at the edges
            conds.append(f"(CASE WHEN {' OR '.join(inside)} THEN 1 ELSE twin_pred('intersects', t.geom, ?) END)")
            for minx, miny, maxx, maxy in query.bbox.parts:
                params += [minx, maxx, miny, maxy]  # the order of the inside test's columns
            params.append(shapely.to_wkb(shapely.union_all([shapely.box(*b) for b in query.bbox.parts])))
        if scoped:
            assert query.scope is not None
            conds.append(_scope_clause(query.scope.inner))
            params += [v for b in query.scope.inner for v in (b[0], b[2], b[1], b[3])]
            params.append(query.scope.wkb)
        if query.near is not None:
            conds.append("twin_distance(t.geom, ?, ?) <= ?")
            params += [query.near.lon, query.near.lat, query.near.metres]
        self._time_conds(query.datetime, conds, params)
        if query.filter is not None:
            text, values = where(query.filter.root)
            conds.append(text)
            params += values
        source = f"{q(table)} t" + (f" JOIN {rtree} r ON r.id = {ident}" if join else "")
        return source + (" WHERE " + " AND ".join(conds) if conds else ""), params

    @staticmethod
    def _time_conds(when: TimeInterval | None, conds: list[str], params: list[object]) -> None:
        if when is None:
            return
        if when.start is not None:
            conds.append("t.updated_at >= ?")
            params.append(when.start)
        if when.end is not None:
            conds.append("t.updated_at <= ?")
            params.append(when.end)

    def _scope_members(self, spec: LayerSpec, query: FeatureQuery) -> list[int] | None:
        """Ids of the components meeting the query's area among the R-tree candidates (envelopes meeting the
        area's, the bbox's, the radius's and the filter's boxes), when there are at most
        :data:`SCOPE_CANDIDATES`; else ``None``. Worked out once per snapshot (a page and its count share it).

        Candidates lying inside one of the area's inner boxes are taken as they are; the others are
        tested exactly, all at once, which costs far less than a test per row inside the query.
        """
        area = query.scope
        assert area is not None
        key = (spec.id, id(area), query.bbox, query.near, query.envelopes)
        if key in self._members:
            return self._members[key]
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
        found: list[int] | None
        if len(rows) > SCOPE_CANDIDATES:
            found = None
        elif not rows:
            found = []
        else:
            cand = np.array(rows, dtype=np.float64)
            inside = np.zeros(len(cand), dtype=bool)
            for a, b, c, d in area.inner:
                inside |= (cand[:, 1] >= a) & (cand[:, 2] <= c) & (cand[:, 3] >= b) & (cand[:, 4] <= d)
            ids = cand[:, 0].astype(np.int64)
            found = ids[inside].tolist()
            rest = ids[~inside].tolist()
            if rest:
                sql = f"SELECT fid, geom FROM {q(spec.id)} WHERE fid IN (SELECT value FROM json_each(?))"
                blobs = self.execute(sql, [orjson.dumps(rest).decode()], "applying the area")
                hit = area.meets(CODEC.geometries([b for _, b in blobs]))
                found += [fid for (fid, _), ok in zip(blobs, hit, strict=True) if ok]
            found = sorted(found)
        self._members[key] = found
        return found

    def _order(self, query: FeatureQuery) -> str:
        terms = [f"{column(s.column)} {'ASC' if s.ascending else 'DESC'}" for s in query.sortby]
        if query.near is not None and not query.sortby:
            terms.append(f"round(distance_m, {TIE_DECIMALS})")
        return " ORDER BY " + ", ".join([*terms, "t.fid"])

    def _sources(self, spec: LayerSpec, query: FeatureQuery, what: str, what_params: Sequence[object] = ()
                 ) -> tuple[str, list[object]]:
        """``SELECT <what> FROM ... WHERE ...`` of a query: of the layer's table, or, for a query ``as_of`` a
        moment, of the versions then current in its table and in its history (``UNION ALL``: a component has
        one version current at any moment)."""
        parts, params = [], []
        for past in (False, True) if query.as_of is not None else (False,):
            source, values = self._from_where(spec, query, past)
            parts.append(f"SELECT {what} FROM {source}")
            params += [*what_params, *values]
        return " UNION ALL ".join(parts), params

    def select(self, query: FeatureQuery) -> Rows:
        spec = self.catalogue[query.layer]
        cols, cols_params = _select_list(spec), []
        if query.near is not None:
            cols += ", twin_distance(t.geom, ?, ?) AS distance_m"
            cols_params = [query.near.lon, query.near.lat]
        source, params = self._sources(spec, query, cols, cols_params)
        order = self._order(query)
        if query.as_of is not None and (query.sortby or query.near):
            source = f"SELECT * FROM ({source}) t"
        elif query.as_of is not None:  # by fid: SQLite merges the two arms, each read in fid order
            order = " ORDER BY fid"
        sql = f"{source}{order} LIMIT ? OFFSET ?"
        rows = self.execute(sql, [*params, query.limit, query.offset])
        return self._rows(spec, row_columns(spec, query.near is not None), rows, query.unmasked)

    def count(self, query: FeatureQuery, cap: int = COUNT_CAP) -> tuple[int, bool]:
        layer_count = self.layer_count(query.layer)
        extent = self.extent(query.layer)
        covers = query.bbox is None or (extent is not None and query.bbox.contains(extent))
        if covers and not query.selective:
            return layer_count, True
        spec = self.catalogue[query.layer]
        if query.scope is not None and query.bbox is None and query.datetime is None and query.filter is None \
                and query.near is None and query.as_of is None:
            inside = self._inside_count(spec, query.scope.inner)
            if inside > cap:
                return inside, False
        source, params = self._sources(spec, query, "1")
        try:
            n = self.execute(f"SELECT count(*) FROM ({source} LIMIT ?)", [*params, cap + 1],
                             "counting the matches")[0][0]
        except QueryTooExpensiveError:
            n = cap + 1
        if n <= cap:
            return int(n), True
        return max(cap, estimate_count(query, layer_count, extent, cap)), False

    def _inside_count(self, spec: LayerSpec, boxes: tuple[Box, ...]) -> int:
        """Components lying wholly inside one of ``boxes`` (disjoint; half-open, so none is counted twice),
        from the R-tree alone: a lower bound of an area's count, cheap even for a whole district."""
        rtree = q("rtree_" + spec.id + "_geom")
        n = 0
        for minx, miny, maxx, maxy in boxes:
            n += self.execute(f"SELECT count(*) FROM {rtree} WHERE minx >= ? AND maxx < ? AND miny >= ? AND maxy < ?",
                              [minx, maxx, miny, maxy], "counting the area")[0][0]
        return int(n)

    # -- look-ups ------------------------------------------------------------------------------
    def by_keys(self, layer: str, keys: Sequence[str], unmasked: frozenset[str] = frozenset()) -> Rows:
        spec = self.catalogue[layer]
        sql = f'SELECT {_select_list(spec)} FROM {q(spec.id)} t WHERE t."key" IN (SELECT value FROM json_each(?))'
        found = {r[1]: r for r in self.execute(sql, [orjson.dumps(list(keys)).decode()])}
        return self._rows(spec, row_columns(spec), [found[k] for k in keys if k in found], unmasked)

    def versions(self, layer: str, keys: Sequence[str]) -> dict[str, int]:
        table = q(self.catalogue[layer].id)
        sql = f'SELECT "key", version FROM {table} WHERE "key" IN (SELECT value FROM json_each(?))'
        return {k: int(v) for k, v in self.execute(sql, [orjson.dumps(list(keys)).decode()])}

    def by_fids(self, layer: str, fids: Sequence[int], unmasked: frozenset[str] = frozenset()) -> Rows:
        spec = self.catalogue[layer]
        sql = f"SELECT {_select_list(spec)} FROM {q(spec.id)} t WHERE t.fid IN (SELECT value FROM json_each(?))"
        found = {r[0]: r for r in self.execute(sql, [orjson.dumps([int(f) for f in fids]).decode()])}
        return self._rows(spec, row_columns(spec), [found[f] for f in fids if f in found], unmasked)

    def nearest(self, layer: str, lon: float, lat: float, k: int) -> Hits:
        """The ``k`` nearest, from the file's own R-tree (nothing held in memory, nothing to build at start-up).

        Windows growing fourfold around the point are read until one holds ``k`` components; their distances are
        computed at once, in numpy. The ``k``-th smallest is a reach in metres that holds every true nearest: when
        the window held all of its rows and covers that reach, it holds the answer, else one read of the reach
        does. Ranked exactly, ties broken by fid (as the PostGIS engine does after its KNN scan).
        """
        spec = self.catalogue[layer]
        sql = (f"SELECT t.fid, t.geom FROM {q('rtree_' + spec.id + '_geom')} r JOIN {q(spec.id)} t ON t.fid = r.id "
               "WHERE r.minx <= ? AND r.maxx >= ? AND r.miny <= ? AND r.maxy >= ? LIMIT ?")
        metres = _FIRST_WINDOW_M
        while True:
            fids, dist, complete = self._distances(sql, lon, lat, metres, _WINDOW_ROWS)
            if len(fids) >= k or metres >= _WHOLE_EARTH_M:
                break
            metres *= 4
        if not len(fids):
            return Hits(np.empty(0, np.int64), np.empty(0))
        reach = float(np.partition(dist, min(k, len(dist)) - 1)[min(k, len(dist)) - 1]) * (1 + 1e-9) + 1e-6
        if not complete or reach > metres:  # the window missed rows, or the reach goes beyond it
            fids, dist, _ = self._distances(sql, lon, lat, reach, -1)
        near = dist <= reach
        fids, dist = fids[near], dist[near]
        order = np.lexsort((fids, np.round(dist, TIE_DECIMALS)))[:k]  # equal to the micrometre: a tie
        return Hits(fids[order], dist[order])

    def _distances(self, sql: str, lon: float, lat: float, metres: float, limit: int
                   ) -> tuple[NDArray[np.int64], NDArray[np.float64], bool]:
        """fids and distances (m) from (lon, lat) of the components in the box around it of ``metres`` (at most
        ``limit`` rows; -1: all), and whether that was every row of the box."""
        west, south, east, north = degree_box(lon, lat, metres)
        found = self.execute(sql, [east, west, north, south, limit], "the nearest search")
        rows = [r for r in found if r[1]]
        fids = np.fromiter((f for f, _ in rows), dtype=np.int64, count=len(rows))
        dist = distance_to_point(decode_geometries([b for _, b in rows]), lon, lat) if rows else np.empty(0)
        return fids, dist, len(found) != limit

    def area_points(self, layer: str, area: Area, limit: int) -> tuple[NDArray[np.int64], NDArray[np.object_]] | None:
        spec = self.catalogue[layer]
        rtree = q("rtree_" + spec.id + "_geom")
        minx, miny, maxx, maxy = area.bounds
        rows = self.execute(f"SELECT t.fid, t.geom FROM {rtree} r JOIN {q(spec.id)} t ON t.fid = r.id WHERE "
                            "r.minx <= ? AND r.maxx >= ? AND r.miny <= ? AND r.maxy >= ? LIMIT ?",
                            [maxx, minx, maxy, miny, limit + 1], "reading the area's points")
        if len(rows) > limit:
            return None
        xy = point_coordinates([b for _, b in rows])
        if xy is None:
            return None
        points = cast(NDArray[np.object_], shapely.points(xy)) if len(xy) else np.empty(0, dtype=object)
        keep = area.meets(points) if len(points) else np.zeros(0, dtype=bool)
        return np.array([f for f, _ in rows], dtype=np.int64)[keep], points[keep]

    # -- tiles ---------------------------------------------------------------------------------
    def tile_rows(self, layer: str, box: Box, flt: Filter | None = None, when: TimeInterval | None = None) -> Rows:
        spec = self.catalogue[layer]
        names = ["fid", "key", "status", *spec.field_names, "geom"]
        cols = ", ".join(f"t.{q(c)}" for c in names)
        sql = (f"SELECT {cols} FROM {q(spec.id)} t JOIN {q('rtree_' + spec.id + '_geom')} r ON r.id = t.fid "
               "WHERE r.minx <= ? AND r.maxx >= ? AND r.miny <= ? AND r.maxy >= ?")
        params: list[object] = [box[2], box[0], box[3], box[1]]
        conds: list[str] = []
        self._time_conds(when, conds, params)
        if flt is not None:
            text, values = where(flt.root)
            conds.append(text)
            params += values
        if conds:
            sql += " AND " + " AND ".join(conds)
        return self._rows(spec, tuple(names), self.execute(sql, params, f"reading {spec.id} for a tile"))

    def members(self, layer: str, boxes: Iterable[Box]) -> Rows:
        spec = self.catalogue[layer]
        sql = (f"SELECT t.fid, t.status, t.geom FROM {q(spec.id)} t JOIN {q('rtree_' + spec.id + '_geom')} r "
               "ON r.id = t.fid WHERE r.minx <= ? AND r.maxx >= ? AND r.miny <= ? AND r.maxy >= ?")
        found: dict[int, tuple[Any, ...]] = {}
        for b in boxes:
            found.update((row[0], row) for row in self.execute(sql, (b[2], b[0], b[3], b[1]),
                                                                f"reading {spec.id} for a tile"))
        return self._rows(spec, ("fid", "status", "geom"), list(found.values()))

    def changed(self, layer: str, since: int, *, removed: bool = True) -> Iterator[tuple[int, Rows]]:
        spec = self.catalogue[layer]
        queries: list[tuple[int, str, tuple[int, ...]]] = [
            (1, f"SELECT fid, status, geom FROM {q(spec.id)} WHERE changeset > ?", (since,))]
        if removed:
            queries.insert(0, (-1, f"SELECT fid, status, geom FROM {q(spec.id + '_history')} WHERE changeset_to > ? "
                                   "AND changeset <= ?", (since, since)))
        for sign, sql, params in queries:
            cur = self.conn.execute(sql, params)
            while rows := cur.fetchmany(_CHUNK):
                yield sign, self._rows(spec, ("fid", "status", "geom"), rows)

    def spans(self, layer: str, since: int, conditions: Sequence[Filter | None], fields: Sequence[str] = ()
              ) -> Iterator[Spans]:
        spec = self.catalogue[layer]
        tail, flag_params = flag_columns(conditions, DIALECT)
        head = ", ".join(["t.fid", *(f"t.{q(spec.field(f).name)}" for f in fields), "t.geom"])
        columns = ("fid", *fields, "geom")
        for table, end in ((spec.id, "0"), (spec.id + "_history", "t.changeset_to")):
            since_col = "t.changeset" if end == "0" else "t.changeset_to"
            cur = self.conn.execute(f"SELECT {head}, t.changeset, {end}, {tail} FROM {q(table)} t "
                                    f"WHERE {since_col} > ?", [*flag_params, since])
            while rows := cur.fetchmany(_CHUNK):
                yield spans_of(self._rows(spec, columns, [r[:len(columns)] for r in rows]), rows, len(columns),
                             len(conditions))

    # -- the change log ------------------------------------------------------------------------
    def log_end(self) -> int:
        return int(self.conn.execute("SELECT coalesce(max(id), 0) FROM twin_changesets").fetchone()[0])

    def reports_of(self, layer: str, key: str, start: str, end: str, limit: int) -> list[KeptReport]:
        rows = self.execute("SELECT observed_at, recorded_at, status, measured, source, author, changeset, applied "
                            'FROM twin_reports WHERE "key" = ? AND observed_at >= ? AND observed_at <= ? AND layer = ? '
                            "ORDER BY observed_at DESC, id DESC LIMIT ?", [key, start, end, layer, limit],
                            "reading the status reports")
        return [KeptReport(r[0], r[1], r[2], orjson.loads(r[3]), r[4], r[5], int(r[6]), bool(r[7])) for r in rows]

    def log_at(self, moment: str) -> int:
        return int(self.execute("SELECT coalesce(max(id), 0) FROM twin_changesets WHERE time <= ?", [moment])[0][0])

    def versions_of(self, layer: str, key: str) -> tuple[Rows, list[VersionMeta]]:
        spec = self.catalogue[layer]
        rows: list[tuple[Any, ...]] = []
        for table, end in ((spec.id + "_history", "t.valid_to, t.op"), (spec.id, "NULL, NULL")):
            rows += self.execute(
                f"SELECT {_select_list(spec)}, t.version, t.changeset, t.valid_from, {end}, c.author "
                f'FROM {q(table)} t JOIN twin_changesets c ON c.id = t.changeset WHERE t."key" = ?', [key])
        return version_rows(spec, rows, CODEC)

    def log_changesets(self, after: Position, upto: int, layers: Sequence[str], limit: int) -> list[LogChangeset]:
        first = after.changeset + (after.fid == WHOLE)
        rows = self.execute("SELECT id, layer, time, kind FROM twin_changesets WHERE id >= ? AND id <= ? "
                            "AND layer IN (SELECT value FROM json_each(?)) ORDER BY id LIMIT ?",
                            [first, upto, orjson.dumps(list(layers)).decode(), limit], "reading the change log")
        return [LogChangeset(int(r[0]), str(r[1]), str(r[2]), str(r[3])) for r in rows]

    def layer_log(self, layer: str, after: Position, upto: int, limit: int) -> LayerLog:
        spec = self.catalogue[layer]
        written, ended = [], []
        for cond, params in log_spans("t.changeset", after, upto):
            for table in (spec.id, spec.id + "_history"):
                written += self.execute(
                    f"SELECT {_select_list(spec)}, t.changeset, t.version FROM {q(table)} t WHERE {cond} "
                    "ORDER BY t.changeset, t.fid LIMIT ?", [*params, limit], "reading the change log")
        for cond, params in log_spans("t.changeset_to", after, upto):
            ended += self.execute(
                f'SELECT t.fid, t."key", t.geom, t.changeset_to, t.version, t.op FROM {q(spec.id + "_history")} t '
                f"WHERE {cond} ORDER BY t.changeset_to, t.fid LIMIT ?", [*params, limit], "reading the change log")
        return log_of(spec, written, ended, limit, CODEC)

    # -- bookkeeping ---------------------------------------------------------------------------
    def layer_count(self, layer: str) -> int:
        row = self.conn.execute("SELECT feature_count FROM twin_layers WHERE layer = ?", (layer,)).fetchone()
        return int(row[0]) if row else 0

    def extent(self, layer: str) -> Box | None:
        row = self.conn.execute("SELECT min_x, min_y, max_x, max_y FROM gpkg_contents WHERE table_name = ?",
                                (layer,)).fetchone()
        return None if row is None or row[0] is None else (row[0], row[1], row[2], row[3])

    def last_changeset(self, layer: str) -> int:
        row = self.conn.execute("SELECT max(id) FROM twin_changesets WHERE layer = ?", (layer,)).fetchone()
        return int(row[0] or 0)

    def last_change(self, layer: str) -> str | None:
        row = self.conn.execute("SELECT time FROM twin_changesets WHERE layer = ? ORDER BY id DESC LIMIT 1",
                                (layer,)).fetchone()
        return None if row is None else str(row[0])

    # -- tile aggregates -----------------------------------------------------------------------
    def aggregate_state(self, layer: str) -> tuple[int, str] | None:
        row = self.conn.execute("SELECT changeset, signature FROM twin_tiles_state WHERE layer = ?",
                                (layer,)).fetchone()
        return None if row is None else (int(row[0]), str(row[1]))

    def cells(self, layer: str, level: int, x: tuple[int, int], y: tuple[int, int]) -> list[CellRow]:
        return self.conn.execute(
            "SELECT cx, cy, status, n, measure, sx, sy FROM twin_tiles_cells WHERE layer = ? AND level = ? "
            "AND cx BETWEEN ? AND ? AND cy BETWEEN ? AND ?", (layer, level, x[0], x[1], y[0], y[1])).fetchall()

    def cells_at(self, layer: str, level: int, cx: NDArray[np.int64], cy: NDArray[np.int64]) -> list[CellRow]:
        if not len(cx):
            return []
        pairs = orjson.dumps(np.column_stack([cx, cy]).astype(np.int64).tolist()).decode()
        return self.conn.execute(
            "SELECT c.cx, c.cy, c.status, c.n, c.measure, c.sx, c.sy FROM json_each(?) j CROSS JOIN twin_tiles_cells c "
            "ON c.layer = ? AND c.level = ? AND c.cx = json_extract(j.value, '$[0]') "
            "AND c.cy = json_extract(j.value, '$[1]')", (pairs, layer, level)).fetchall()

    def shapes(self, layer: str, level: int, x: tuple[int, int], y: tuple[int, int]) -> list[tuple[int, int, bytes]]:
        return self.conn.execute(
            "SELECT cx, cy, geom FROM twin_tiles_shapes WHERE layer = ? AND level = ? "
            "AND cx BETWEEN ? AND ? AND cy BETWEEN ? AND ?", (layer, level, x[0], x[1], y[0], y[1])).fetchall()

