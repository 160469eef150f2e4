"""Budgeted reads of a PostGIS store: the engine's :class:`~twin.store.base.Snapshot`.

A snapshot is one ``REPEATABLE READ, READ ONLY`` transaction on a pooled connection (it works on a hot standby
and behind pgbouncer in transaction mode), with ``statement_timeout`` set for it alone and no parallel workers
(launching one costs more than a request's query). GiST indexes serve every spatial constraint; exact tests are
PostGIS's GEOS predicates; distances in metres are the schema's ``twin_distance``, which measures exactly as
:mod:`twin.geodesy` does. Rows come back in the same plain values as
the GeoPackage engine's (:mod:`twin.store.postgis.columns`), geometries as ISO WKB.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, cast

import numpy as np
import psycopg
import shapely
from numpy.typing import NDArray

from twin.catalogue import Catalogue, LayerSpec
from twin.errors import QueryTooExpensiveError
from twin.geodesy import degree_box
from twin.model.area import Area
from twin.model.changes import WHOLE, LayerLog, LogChangeset, Position, Spans, VersionMeta
from twin.model.filter import Filter
from twin.model.query import COUNT_CAP, FeatureQuery, TimeInterval
from twin.model.reports import KeptReport
from twin.model.rows import TIE_DECIMALS, WKB, Hits, Rows, row_columns
from twin.store.base import CellRow, estimate_count, log_of, log_spans, spans_of, version_rows
from twin.store.filter_sql import flag_columns
from twin.store.postgis import ddl
from twin.store.postgis.columns import select_list, time_text
from twin.store.postgis.filter_sql import PgDialect, column, where

Box = tuple[float, float, float, float]
_CHUNK = 100_000
_ENVELOPE = "ST_MakeEnvelope(%s, %s, %s, %s, 4326)"


class PgSnapshot:
    """The reads of one request or tile, inside one read-only transaction."""

    def __init__(self, conn: psycopg.Connection, catalogue: Catalogue, schema: str, budget_s: float,
                 opening: Sequence[tuple[str, tuple[object, ...]]] = ()) -> None:
        self.conn = conn
        self.catalogue = catalogue
        self.schema = schema
        self.s = ddl.schema_ident(schema)
        self.budget_s = budget_s
        self.opening = list(opening)  # statements that begin the transaction, sent with the first query
        self._layers: dict[str, tuple[Any, ...] | None] = {}
        self._versions: dict[tuple[str, str], int] = {}  # read along with by_keys: an item's ETag costs no query

    @property
    def begun(self) -> bool:
        """Whether the transaction has begun (a snapshot that read nothing never begins one)."""
        return not self.opening

    def execute(self, sql: str, params: Sequence[object] | Mapping[str, object] = (), what: str = "the query",
                binary: bool = False) -> list[tuple[Any, ...]]:
        """Rows of one statement; ``binary`` has them sent in binary form (cheaper to read, for columns of the
        types psycopg loads from binary: numbers, text, bytea, dates)."""
        try:
            if self.opening:  # one round trip for BEGIN, the timeout and the first query
                with self.conn.pipeline():
                    self._open()
                    cursor = self.conn.execute(sql, params, binary=binary)
                return cursor.fetchall()
            return self.conn.execute(sql, params, binary=binary).fetchall()
        except psycopg.errors.QueryCanceled:
            raise QueryTooExpensiveError(
                f"{what} ran past the {self.budget_s:g} s budget: filter too expensive; add a bbox or a "
                "narrower filter") from None

    def _open(self) -> None:
        for statement, values in self.opening:
            self.conn.execute(statement, values)
        self.opening.clear()

    def _table(self, layer: str) -> str:
        return f"{self.s}.{ddl.q(layer)}"

    def _rows(self, spec: LayerSpec, columns: tuple[str, ...], rows: list[tuple[Any, ...]],
              unmasked: frozenset[str] = frozenset()) -> Rows:
        return Rows(spec, columns, rows, unmasked, WKB)

    def _select_list(self, spec: LayerSpec) -> str:
        return select_list(spec, ["fid", "key", "status", "updated_at", *spec.field_names, "geom"])

    # -- feature queries -----------------------------------------------------------------------
    def _where(self, query: FeatureQuery) -> tuple[list[str], list[object]]:
        conds: list[str] = []
        params: list[object] = []
        for e in query.envelopes:
            conds.append(f"t.geom && {_ENVELOPE}")
            params += list(e)
        if query.bbox is not None:
            conds.append("(" + " OR ".join([f"ST_Intersects(t.geom, {_ENVELOPE})"] * len(query.bbox.parts)) + ")")
            params += [v for part in query.bbox.parts for v in part]
        if query.near is not None:
            conds.append(f"t.geom && {_ENVELOPE} AND {self.s}.twin_distance(t.geom, %s, %s) <= %s")
            params += [*degree_box(query.near.lon, query.near.lat, query.near.metres), query.near.lon,
                       query.near.lat, query.near.metres]
        if query.scope is not None and not (query.bbox is not None and all(
                query.scope.covers_box(b) for b in query.bbox.parts)):
            conds.append("ST_Intersects(t.geom, ST_GeomFromWKB(%s, 4326))")
            params.append(query.scope.wkb)
        _time_conds(query.datetime, conds, params)
        if query.filter is not None:
            text, values = where(query.filter.root, self.schema)
            conds.append(text)
            params += values
        return conds, params

    def _source(self, spec: LayerSpec, query: FeatureQuery) -> tuple[str, list[object]]:
        """The rows a query reads (alias ``t``): the layer's table, or, for a query ``as_of`` a moment, the versions
        then current in its table and in its history (a ``UNION ALL`` PostgreSQL flattens, so that each condition
        reaches each table's indexes)."""
        if query.as_of is None:
            return f"{self._table(spec.id)} t", []
        cols = ", ".join(f'"{c}"' for c in ("fid", "key", "status", "updated_at", *spec.field_names, "geom"))
        return (f"(SELECT {cols} FROM {self._table(spec.id)} WHERE valid_from <= %s::timestamptz UNION ALL "
                f"SELECT {cols} FROM {self._table(spec.id + '_history')} WHERE valid_from <= %s::timestamptz "
                "AND valid_to > %s::timestamptz) t", [query.as_of] * 3)

    def select(self, query: FeatureQuery) -> Rows:
        spec = self.catalogue[query.layer]
        source, params = self._source(spec, query)
        conds, where_params = self._where(query)
        params += where_params
        cols = self._select_list(spec)
        if query.near is not None:
            cols += f", {self.s}.twin_distance(t.geom, %s, %s) AS distance_m"
            params = [query.near.lon, query.near.lat, *params]
        terms = [f"{column(s.column)} {'ASC' if s.ascending else 'DESC'}" for s in query.sortby]
        if query.near is not None and not query.sortby:
            terms.append(f"round({self.s}.twin_distance(t.geom, %s, %s)::numeric, {TIE_DECIMALS})")
            params += [query.near.lon, query.near.lat]
        sql = (f"SELECT {cols} FROM {source}" + (" WHERE " + " AND ".join(conds) if conds else "")
               + " ORDER BY " + ", ".join([*terms, "t.fid"]) + " LIMIT %s OFFSET %s")
        rows = self.execute(sql, [*params, query.limit, query.offset])
        return self._rows(spec, row_columns(spec, query.near is not None), rows, query.unmasked)

    def count(self, query: FeatureQuery, cap: int = COUNT_CAP) -> tuple[int, bool]:
        layer_count = self.layer_count(query.layer)
        extent = self.extent(query.layer)
        covers = query.bbox is None or (extent is not None and query.bbox.contains(extent))
        if covers and not query.selective:
            return layer_count, True
        if query.scope is not None and query.bbox is None and query.datetime is None and query.filter is None \
                and query.near is None and query.as_of is None:
            inside = self._inside_count(query.layer, query.scope.inner)
            if inside > cap:
                return inside, False
        source, params = self._source(self.catalogue[query.layer], query)
        conds, where_params = self._where(query)
        sql = (f"SELECT count(*) FROM (SELECT 1 FROM {source}"
               + (" WHERE " + " AND ".join(conds) if conds else "") + " LIMIT %s) s")
        try:
            n = self.execute(sql, [*params, *where_params, cap + 1], "counting the matches")[0][0]
        except QueryTooExpensiveError:
            n = cap + 1
        if n <= cap:
            return int(n), True
        return max(cap, estimate_count(query, layer_count, extent, cap)), False

    def _inside_count(self, layer: str, boxes: tuple[Box, ...]) -> int:
        """Components lying wholly inside one of ``boxes`` (disjoint; half-open, so none is counted twice): a lower
        bound of an area's count, from the index."""
        n = 0
        for minx, miny, maxx, maxy in boxes:
            n += self.execute(
                f"SELECT count(*) FROM {self._table(layer)} t WHERE t.geom && {_ENVELOPE} AND ST_XMin(t.geom) >= %s "
                "AND ST_XMax(t.geom) < %s AND ST_YMin(t.geom) >= %s AND ST_YMax(t.geom) < %s",
                [minx, miny, maxx, maxy, minx, maxx, miny, maxy], "counting the area")[0][0]
        return int(n)

    # -- look-ups ------------------------------------------------------------------------------
    def by_keys(self, layer: str, keys: Sequence[str], unmasked: frozenset[str] = frozenset()) -> Rows:
        spec = self.catalogue[layer]
        rows = self.execute(f'SELECT {self._select_list(spec)}, t.version FROM {self._table(spec.id)} t '
                            'WHERE t."key" = ANY(%s)', [list(keys)])
        found = {r[1]: r[:-1] for r in rows}
        self._versions.update(((spec.id, r[1]), int(r[-1])) for r in rows)
        return self._rows(spec, row_columns(spec), [found[k] for k in keys if k in found], unmasked)

    def versions(self, layer: str, keys: Sequence[str]) -> dict[str, int]:
        if all((layer, k) in self._versions for k in keys):
            return {k: self._versions[(layer, k)] for k in keys}
        rows = self.execute(f'SELECT "key", version FROM {self._table(self.catalogue[layer].id)} WHERE "key" = ANY(%s)',
                            [list(keys)])
        return {k: int(v) for k, v in rows}

    def by_fids(self, layer: str, fids: Sequence[int], unmasked: frozenset[str] = frozenset()) -> Rows:
        spec = self.catalogue[layer]
        rows = self.execute(f"SELECT {self._select_list(spec)} FROM {self._table(spec.id)} t WHERE t.fid = ANY(%s)",
                            [[int(f) for f in fids]])
        found = {r[0]: r for r in rows}
        return self._rows(spec, row_columns(spec), [found[f] for f in fids if f in found], unmasked)

    def nearest(self, layer: str, lon: float, lat: float, k: int) -> Hits:
        """The ``k`` nearest: the index's ``k`` nearest in degrees give a reach in metres that holds every true
        nearest, and one radius search within it ranks them exactly (as the GeoPackage engine does)."""
        table = self._table(self.catalogue[layer].id)
        point = "ST_SetSRID(ST_MakePoint(%s, %s), 4326)"
        reach = self.execute(f"SELECT max({self.s}.twin_distance(s.geom, %s, %s)) FROM (SELECT t.geom FROM {table} t "
                             f"ORDER BY t.geom <-> {point} LIMIT %s) s", [lon, lat, lon, lat, k])[0][0]
        if reach is None:
            return Hits(np.empty(0, np.int64), np.empty(0))
        radius = float(reach) * (1 + 1e-9) + 1e-6
        rows = self.execute(
            f"SELECT s.fid, s.d FROM (SELECT t.fid, {self.s}.twin_distance(t.geom, %s, %s) AS d FROM {table} t "
            f"WHERE t.geom && {_ENVELOPE}) s WHERE s.d <= %s "
            f"ORDER BY round(s.d::numeric, {TIE_DECIMALS}), s.fid LIMIT %s",
            [lon, lat, *degree_box(lon, lat, radius), radius, k])
        return Hits(np.array([r[0] for r in rows], dtype=np.int64), np.array([r[1] for r in rows], dtype=np.float64))

    def area_points(self, layer: str, area: Area, limit: int) -> tuple[NDArray[np.int64], NDArray[np.object_]] | None:
        spec = self.catalogue[layer]
        rows = self.execute(f"SELECT t.fid, ST_AsBinary(t.geom) FROM {self._table(spec.id)} t "
                            f"WHERE t.geom && {_ENVELOPE} LIMIT %s", [*area.bounds, limit + 1],
                            "reading the area's points")
        if len(rows) > limit:
            return None
        xy = WKB.points([r[1] for r in rows])
        if xy is None:
            return None
        points = cast(NDArray[np.object_], shapely.points(xy)) if len(xy) else np.empty(0, dtype=object)
        keep = area.meets(points) if len(points) else np.zeros(0, dtype=bool)
        return np.array([r[0] for r in rows], dtype=np.int64)[keep], points[keep]

    # -- tiles ---------------------------------------------------------------------------------
    def tile_rows(self, layer: str, box: Box, flt: Filter | None = None, when: TimeInterval | None = None) -> Rows:
        spec = self.catalogue[layer]
        names = ("fid", "key", "status", *spec.field_names, "geom")
        conds = [f"t.geom && {_ENVELOPE}"]
        params: list[object] = list(box)
        _time_conds(when, conds, params)
        if flt is not None:
            text, values = where(flt.root, self.schema)
            conds.append(text)
            params += values
        sql = f"SELECT {select_list(spec, names)} FROM {self._table(spec.id)} t WHERE " + " AND ".join(conds)
        return self._rows(spec, names, self.execute(sql, params, f"reading {spec.id} for a tile", binary=True))

    def members(self, layer: str, boxes: Iterable[Box]) -> Rows:
        spec = self.catalogue[layer]
        found: dict[int, tuple[Any, ...]] = {}
        sql = (f"SELECT t.fid, t.status, ST_AsBinary(t.geom) FROM {self._table(spec.id)} t WHERE t.geom && "
               f"{_ENVELOPE} AND ST_XMin(t.geom) <= %s AND ST_XMax(t.geom) >= %s AND ST_YMin(t.geom) <= %s "
               "AND ST_YMax(t.geom) >= %s")
        for b in boxes:
            lo_x, hi_x, lo_y, hi_y = min(b[0], b[2]), max(b[0], b[2]), min(b[1], b[3]), max(b[1], b[3])
            for row in self.execute(sql, [lo_x, lo_y, hi_x, hi_y, b[2], b[0], b[3], b[1]],
                                    f"reading {spec.id} for a tile"):
                found[row[0]] = row
        return self._rows(spec, ("fid", "status", "geom"), list(found.values()))

    def changed(self, layer: str, since: int, *, removed: bool = True) -> Iterator[tuple[int, Rows]]:
        spec = self.catalogue[layer]
        queries: list[tuple[int, str, tuple[int, ...]]] = [
            (1, f"SELECT fid, status, ST_AsBinary(geom) FROM {self._table(spec.id)} WHERE changeset > %s", (since,))]
        if removed:
            queries.insert(0, (-1, f"SELECT fid, status, ST_AsBinary(geom) FROM {self._table(spec.id + '_history')} "
                                   "WHERE changeset_to > %s AND changeset <= %s", (since, since)))
        self._open()  # a server-side cursor lives in the transaction
        for i, (sign, sql, params) in enumerate(queries):
            with self.conn.cursor(name=f"twin_changed_{i}") as cur:
                cur.execute(sql, params)
                while rows := cur.fetchmany(_CHUNK):
                    yield sign, self._rows(spec, ("fid", "status", "geom"), rows)

    def spans(self, layer: str, since: int, conditions: Sequence[Filter | None], fields: Sequence[str] = ()
              ) -> Iterator[Spans]:
        spec = self.catalogue[layer]
        tail, flag_params = flag_columns(conditions, PgDialect(self.schema))
        columns = ("fid", *(spec.field(f).name for f in fields), "geom")
        head = select_list(spec, columns)
        self._open()  # a server-side cursor lives in the transaction
        for i, (table, end) in enumerate(((spec.id, "0"), (spec.id + "_history", "t.changeset_to"))):
            since_col = "t.changeset" if end == "0" else "t.changeset_to"
            with self.conn.cursor(name=f"twin_spans_{i}") as cur:
                cur.execute(f"SELECT {head}, t.changeset, {end}, {tail} FROM {self._table(table)} t "
                            f"WHERE {since_col} > %s", [*flag_params, since])
                while rows := cur.fetchmany(_CHUNK):
                    yield spans_of(self._rows(spec, columns, [r[:len(columns)] for r in rows]), rows, len(columns),
                                   len(conditions))

    # -- bookkeeping ---------------------------------------------------------------------------
    def _layer_row(self, layer: str) -> tuple[Any, ...] | None:
        """``feature_count, min_x, min_y, max_x, max_y`` of a layer, read once per snapshot (it cannot change in it)."""
        if layer not in self._layers:
            rows = self.execute(f"SELECT feature_count, min_x, min_y, max_x, max_y FROM {self.s}.twin_layers "
                                "WHERE layer = %s", [layer])
            self._layers[layer] = rows[0] if rows else None
        return self._layers[layer]

    def layer_count(self, layer: str) -> int:
        row = self._layer_row(layer)
        return int(row[0]) if row else 0

    def extent(self, layer: str) -> Box | None:
        row = self._layer_row(layer)
        return None if row is None or row[1] is None else (row[1], row[2], row[3], row[4])

    # -- the change log ------------------------------------------------------------------------
    def log_end(self) -> int:
        return int(self.execute(f"SELECT coalesce(max(id), 0) FROM {self.s}.twin_changesets")[0][0])

    def reports_of(self, layer: str, key: str, start: str, end: str, limit: int) -> list[KeptReport]:
        rows = self.execute("SELECT observed_at, recorded_at, status, measured, source, author, changeset, applied "
                            f'FROM {self.s}.twin_reports WHERE "key" = %s AND observed_at >= %s AND observed_at <= %s '
                            "AND layer = %s ORDER BY observed_at DESC, id DESC LIMIT %s",
                            [key, start, end, layer, limit], "reading the status reports")
        return [KeptReport(r[0], r[1], r[2], dict(r[3]), r[4], r[5], int(r[6]), bool(r[7])) for r in rows]

    def log_at(self, moment: str) -> int:
        return int(self.execute(f"SELECT coalesce(max(id), 0) FROM {self.s}.twin_changesets "
                                "WHERE time <= %s::timestamptz", [moment])[0][0])

    def versions_of(self, layer: str, key: str) -> tuple[Rows, list[VersionMeta]]:
        spec = self.catalogue[layer]
        rows: list[tuple[Any, ...]] = []
        since = time_text("t.valid_from", micros=True)
        for table, end in ((spec.id + "_history", f"{time_text('t.valid_to', micros=True)}, t.op"),
                           (spec.id, "NULL, NULL")):
            rows += self.execute(
                f"SELECT {self._select_list(spec)}, t.version, t.changeset, {since}, {end}, c.author "
                f"FROM {self._table(table)} t JOIN {self.s}.twin_changesets c ON c.id = t.changeset "
                'WHERE t."key" = %s', [key])
        return version_rows(spec, rows, WKB)

    def log_changesets(self, after: Position, upto: int, layers: Sequence[str], limit: int) -> list[LogChangeset]:
        first = after.changeset + (after.fid == WHOLE)
        rows = self.execute(f"SELECT id, layer, {time_text('time', micros=True)}, kind FROM {self.s}.twin_changesets "
                            "WHERE id >= %s AND id <= %s AND layer = ANY(%s) ORDER BY id LIMIT %s",
                            [first, upto, list(layers), limit], "reading the change log")
        return [LogChangeset(int(r[0]), str(r[1]), str(r[2]), str(r[3])) for r in rows]

    def layer_log(self, layer: str, after: Position, upto: int, limit: int) -> LayerLog:
        spec = self.catalogue[layer]
        written: list[tuple[Any, ...]] = []
        ended: list[tuple[Any, ...]] = []
        for cond, params in log_spans("t.changeset", after, upto, "%s"):
            for table in (spec.id, spec.id + "_history"):
                written += self.execute(
                    f"SELECT {self._select_list(spec)}, t.changeset, t.version FROM {self._table(table)} t "
                    f"WHERE {cond} ORDER BY t.changeset, t.fid LIMIT %s", [*params, limit], "reading the change log")
        for cond, params in log_spans("t.changeset_to", after, upto, "%s"):
            ended += self.execute(
                f'SELECT t.fid, t."key", ST_AsBinary(t.geom), t.changeset_to, t.version, t.op '
                f"FROM {self._table(spec.id + '_history')} t WHERE {cond} ORDER BY t.changeset_to, t.fid LIMIT %s",
                [*params, limit], "reading the change log")
        return log_of(spec, written, ended, limit, WKB)

    def last_changeset(self, layer: str) -> int:
        return int(self.execute(f"SELECT coalesce(max(id), 0) FROM {self.s}.twin_changesets WHERE layer = %s",
                                [layer])[0][0])

    def last_change(self, layer: str) -> str | None:
        rows = self.execute(f"SELECT {time_text('time', micros=True)} FROM {self.s}.twin_changesets WHERE layer = %s "
                            "ORDER BY id DESC LIMIT 1", [layer])
        return str(rows[0][0]) if rows else None

    # -- tile aggregates -----------------------------------------------------------------------
    def aggregate_state(self, layer: str) -> tuple[int, str] | None:
        rows = self.execute(f"SELECT changeset, signature FROM {self.s}.twin_tiles_state WHERE layer = %s", [layer])
        return None if not rows else (int(rows[0][0]), str(rows[0][1]))

    def cells(self, layer: str, level: int, x: tuple[int, int], y: tuple[int, int]) -> list[CellRow]:
        return self.execute(f"SELECT cx, cy, status, n, measure, sx, sy FROM {self.s}.twin_tiles_cells "
                            "WHERE layer = %s AND level = %s AND cx BETWEEN %s AND %s AND cy BETWEEN %s AND %s",
                            [layer, level, x[0], x[1], y[0], y[1]])

    def cells_at(self, layer: str, level: int, cx: NDArray[np.int64], cy: NDArray[np.int64]) -> list[CellRow]:
        if not len(cx):
            return []
        return self.execute(
            f"SELECT c.cx, c.cy, c.status, c.n, c.measure, c.sx, c.sy FROM unnest(%s::bigint[], %s::bigint[]) "
            f"AS p(cx, cy) JOIN {self.s}.twin_tiles_cells c ON c.layer = %s AND c.level = %s AND c.cx = p.cx "
            "AND c.cy = p.cy", [np.asarray(cx).tolist(), np.asarray(cy).tolist(), layer, level])

    def shapes(self, layer: str, level: int, x: tuple[int, int], y: tuple[int, int]) -> list[tuple[int, int, bytes]]:
        return [(r[0], r[1], bytes(r[2])) for r in self.execute(
            f"SELECT cx, cy, geom FROM {self.s}.twin_tiles_shapes WHERE layer = %s AND level = %s "
            "AND cx BETWEEN %s AND %s AND cy BETWEEN %s AND %s", [layer, level, x[0], x[1], y[0], y[1]])]


def _time_conds(when: TimeInterval | None, conds: list[str], params: list[object]) -> None:
    if when is None:
        return
    if when.start is not None:
        conds.append("t.updated_at >= %s::timestamptz")
        params.append(when.start)
    if when.end is not None:
        conds.append("t.updated_at <= %s::timestamptz")
        params.append(when.end)
