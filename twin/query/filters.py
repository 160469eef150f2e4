"""CQL2 (as a pygeofilter AST) to an SQL ``WHERE`` clause over one layer's table.

Values only ever travel as bound parameters; identifiers come only from the catalogue (through
:func:`twin.store.ddl.q`). Spatial predicates become calls of the exact shapely-backed SQL
functions in :mod:`twin.query.sqlfuncs`; those at the top level of the filter also yield
envelopes that let the query use the layer's R-tree first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import numpy as np
import shapely
from pygeofilter import ast, values

from twin.catalogue import FieldType, LayerSpec
from twin.crs import TwinCRS
from twin.errors import InvalidQueryError, MaskedFieldError
from twin.geodesy import METRES_PER_DEGREE
from twin.query.cql_checks import check_number, check_types, operands, stored_temporal
from twin.query.crs import geoms_to_lonlat, resolve_crs
from twin.query.model import gpkg_time
from twin.query.sqlfuncs import PREDICATES
from twin.store.ddl import q

Box = tuple[float, float, float, float]
GEOMETRY = "geometry"
_COMPARISONS = {ast.Equal: "=", ast.NotEqual: "<>", ast.LessThan: "<", ast.LessEqual: "<=",
                ast.GreaterThan: ">", ast.GreaterEqual: ">="}
_ARITHMETIC = {ast.Add: "+", ast.Sub: "-", ast.Mul: "*", ast.Div: "/"}
_SPATIAL = {ast.GeometryIntersects: "intersects", ast.GeometryWithin: "within", ast.GeometryContains: "contains",
            ast.GeometryDisjoint: "disjoint", ast.GeometryTouches: "touches", ast.GeometryCrosses: "crosses",
            ast.GeometryOverlaps: "overlaps", ast.GeometryEquals: "equals"}
_CONVERSE = {"within": "contains", "contains": "within"}


@dataclass(frozen=True)
class Queryable:
    """A property a filter or ``sortby`` may name, and the column behind it."""

    name: str
    column: str  # SQL expression, from the catalogue only
    type: str  # a FieldType value, or "geometry"
    title: str
    values: tuple[object, ...] | None = None


def queryables(spec: LayerSpec, unmasked: frozenset[str] = frozenset()) -> dict[str, Queryable]:
    """Everything one may filter or sort a layer by; personal fields only if in ``unmasked`` (seen as stored)."""
    out = {
        "id": Queryable("id", 't."key"', "string", "位置编码 location key"),
        "status": Queryable("status", "t.status", "string", "状态 status", tuple(spec.statuses)),
        "updated_at": Queryable("updated_at", "t.updated_at", "datetime", "更新时间 last updated"),
    }
    for f in spec.fields:
        if f.sensitive is None or f.name in unmasked:
            out[f.name] = Queryable(f.name, f"t.{q(f.name)}", f.type.value, f.title_zh or f.name, f.values)
    out[GEOMETRY] = Queryable(GEOMETRY, "t.geom", GEOMETRY, "几何 geometry")
    return out


@dataclass
class Compiled:
    """A compiled filter: SQL text, its parameters, and envelopes every match must meet."""

    where: str
    params: list[object] = field(default_factory=list)
    envelopes: list[Box] = field(default_factory=list)


class _Compiler:
    def __init__(self, spec: LayerSpec, crs: TwinCRS, unmasked: frozenset[str]) -> None:
        self.spec = spec
        self.crs = crs
        self.columns = queryables(spec, unmasked)
        self.params: list[object] = []

    def bind(self, value: object) -> str:
        self.params.append(value)
        return "?"

    # -- conditions ---------------------------------------------------------------------------
    def cond(self, node: Any) -> str:
        if isinstance(node, ast.And | ast.Or):  # a chain is one flat term: SQLite's parser nests only so deep
            op = " AND " if isinstance(node, ast.And) else " OR "
            return "(" + op.join(self.cond(item) for item in operands(node)) + ")"
        if isinstance(node, ast.Not):
            return f"(NOT {self.cond(node.sub_node)})"
        if isinstance(node, ast.Include):
            return "0" if node.not_ else "1"
        if type(node) in _COMPARISONS:
            return self.comparison(node)
        if isinstance(node, ast.Like):
            return self.like(node)
        if isinstance(node, ast.In):
            items = ", ".join(self.expr(v, self.hint(node.lhs)) for v in node.sub_nodes)
            return f"({self.expr(node.lhs)} {'NOT IN' if node.not_ else 'IN'} ({items}))"
        if isinstance(node, ast.Between):
            hint = self.hint(node.lhs)
            neg = "NOT " if node.not_ else ""
            return f"({self.expr(node.lhs)} {neg}BETWEEN {self.expr(node.low, hint)} AND {self.expr(node.high, hint)})"
        if isinstance(node, ast.IsNull):
            return f"({self.expr(node.lhs)} IS {'NOT ' if node.not_ else ''}NULL)"
        if type(node) in _SPATIAL or isinstance(node, ast.BBox | ast.DistanceWithin):
            return self.spatial(node)
        if isinstance(node, ast.TemporalPredicate):
            raise InvalidQueryError("temporal operators (T_AFTER, T_DURING ...) are not supported; compare "
                                    "updated_at with TIMESTAMP('2024-01-01T00:00:00Z') instead")
        raise InvalidQueryError(f"{_name(node)} is not supported in filters")

    def comparison(self, node: Any) -> str:
        lhs_hint, rhs_hint = self.hint(node.rhs), self.hint(node.lhs)
        return f"({self.expr(node.lhs, lhs_hint)} {_COMPARISONS[type(node)]} {self.expr(node.rhs, rhs_hint)})"

    def like(self, node: ast.Like) -> str:
        if not isinstance(node.pattern, str):
            raise InvalidQueryError("LIKE needs a text pattern in quotes, such as road LIKE '%路'")
        neg = "NOT " if node.not_ else ""
        return f"({self.expr(node.lhs)} {neg}LIKE {self.bind(node.pattern)} ESCAPE '\\')"

    # -- expressions -------------------------------------------------------------------------
    def attribute(self, name: str) -> Queryable:
        if name in self.columns:
            return self.columns[name]
        if name in self.spec.sensitive_fields:
            raise MaskedFieldError(f"property {name!r} of {self.spec.id} is personal data (脱敏) that your role sees "
                                   "masked; it cannot be used in a filter or sortby")
        known = ", ".join(n for n in self.columns)
        raise InvalidQueryError(f"unknown property {name[:80]!r} in the filter; {self.spec.id} has: {known}")

    def hint(self, node: Any) -> str | None:
        """The type of the column on the other side of a comparison, to convert literals to."""
        return self.attribute(node.name).type if isinstance(node, ast.Attribute) else None

    def expr(self, node: Any, hint: str | None = None) -> str:
        if isinstance(node, ast.Attribute):
            col = self.attribute(node.name)
            if col.type == GEOMETRY:
                raise InvalidQueryError("the geometry can only be used in spatial operators (S_INTERSECTS ...)")
            return col.column
        if type(node) in _ARITHMETIC:
            return "(" + f" {_ARITHMETIC[type(node)]} ".join(self.expr(item) for item in operands(node)) + ")"
        if isinstance(node, ast.Function):
            if node.name.lower() != "lower" or len(node.arguments) != 1:
                raise InvalidQueryError(f"function {node.name[:40]!r} is not supported (CASEI is)")
            return f"lower({self.expr(node.arguments[0], hint)})"
        return self.bind(_literal(node, hint))

    # -- spatial -----------------------------------------------------------------------------
    def spatial(self, node: Any) -> str:
        if isinstance(node, ast.BBox):
            box_crs = self.crs if node.crs is None else _crs(node.crs)
            geom = _to_lonlat(shapely.box(node.minx, node.miny, node.maxx, node.maxy), box_crs)
            self.geometry_side(node.lhs)
            return self.predicate("intersects", geom)
        if isinstance(node, ast.DistanceWithin):
            self.geometry_side(node.lhs)
            metres = node.distance
            if not isinstance(metres, int | float) or not 0 <= metres <= 1_000_000:
                raise InvalidQueryError(f"S_DWITHIN distance must be 0 to 1000000 metres, not {metres!r}")
            geom = self.literal_geometry(node.rhs)
            return f"twin_dwithin(t.geom, {self.bind(shapely.to_wkb(geom))}, {self.bind(float(metres))})"
        op = _SPATIAL[type(node)]
        if isinstance(node.lhs, ast.Attribute):
            self.geometry_side(node.lhs)
            return self.predicate(op, self.literal_geometry(node.rhs))
        self.geometry_side(node.rhs)
        return self.predicate(_CONVERSE.get(op, op), self.literal_geometry(node.lhs))

    def geometry_side(self, node: Any) -> None:
        if not (isinstance(node, ast.Attribute) and self.attribute(node.name).type == GEOMETRY):
            raise InvalidQueryError("spatial operators compare the property 'geometry' with a literal geometry, "
                                    "such as S_INTERSECTS(geometry, POLYGON((...)))")

    def literal_geometry(self, node: Any) -> shapely.Geometry:
        return literal_geometry(node, self.crs)

    def predicate(self, op: str, geom: shapely.Geometry) -> str:
        assert op in PREDICATES
        return f"twin_pred({self.bind(op)}, t.geom, {self.bind(shapely.to_wkb(geom))})"


def literal_geometry(node: Any, crs: TwinCRS) -> shapely.Geometry:
    """A WKT/GeoJSON/BBOX literal of a filter, in lon/lat."""
    if isinstance(node, values.Envelope):
        geom = shapely.box(node.x1, node.y1, node.x2, node.y2)
    elif isinstance(node, ast.Function) and node.name.lower() == "bbox":
        nums = node.arguments
        if len(nums) not in (4, 6) or not all(isinstance(v, int | float) for v in nums):
            raise InvalidQueryError("BBOX takes 4 numbers (or 6 with heights): BBOX(minx, miny, maxx, maxy)")
        geom = shapely.box(nums[0], nums[1], nums[2], nums[3]) if len(nums) == 4 else \
            shapely.box(nums[0], nums[1], nums[3], nums[4])
    elif isinstance(node, values.Geometry):
        try:
            geom = shapely.geometry.shape(node.geometry)
        except Exception as exc:  # shapely raises several types for malformed GeoJSON
            raise InvalidQueryError(f"filter geometry is malformed: {str(exc)[:200]}") from None
    else:
        raise InvalidQueryError("spatial operators need a literal geometry (WKT, GeoJSON or BBOX) on the other side")
    return _to_lonlat(geom, crs)


def _crs(text: str) -> TwinCRS:
    return resolve_crs(str(text), name="BBOX crs")


def _to_lonlat(geom: shapely.Geometry, crs: TwinCRS) -> shapely.Geometry:
    out = geoms_to_lonlat(np.array([geom], dtype=object), crs)[0]
    if out is None or out.is_empty or not np.isfinite(shapely.bounds(out)).all():
        raise InvalidQueryError("filter geometry is empty or lies outside its CRS")
    if not out.is_valid:
        out = shapely.make_valid(out)
    return out


def _literal(node: Any, hint: str | None) -> object:
    """A Python literal from the AST, as the column type on the other side stores it."""
    if isinstance(node, bool):
        return int(node)
    if isinstance(node, datetime):
        return node.date().isoformat() if hint == FieldType.date.value else gpkg_time(node)
    if isinstance(node, date):
        return gpkg_time(node) if hint == FieldType.datetime.value else node.isoformat()
    if isinstance(node, str) and hint in (FieldType.date.value, FieldType.datetime.value):
        return stored_temporal(node, hint)  # checked by check_types: '2024-05-01T08:00:00+08:00' as stored
    if isinstance(node, int | float | str):
        return node
    raise InvalidQueryError(f"{_name(node)} cannot be used as a value here")


def _name(node: Any) -> str:
    return type(node).__name__.replace("Geometry", "S_").replace("Time", "T_")


def top_level_envelopes(node: Any, crs: TwinCRS) -> list[Box]:
    """Boxes that every match meets: envelopes of the spatial predicates ANDed at the top of the filter."""
    if isinstance(node, ast.And):
        return [box for item in operands(node) for box in top_level_envelopes(item, crs)]
    if isinstance(node, ast.BBox):
        box_crs = crs if node.crs is None else _crs(node.crs)
        return [tuple(_to_lonlat(shapely.box(node.minx, node.miny, node.maxx, node.maxy), box_crs).bounds)]
    if isinstance(node, ast.DistanceWithin):
        minx, miny, maxx, maxy = literal_geometry(node.rhs, crs).bounds
        dlat = float(node.distance) / METRES_PER_DEGREE * 1.01
        dlon = dlat / max(np.cos(np.radians(min(max(abs(miny), abs(maxy)) + dlat, 89.9))), 1e-6)
        return [(minx - dlon, miny - dlat, maxx + dlon, maxy + dlat)]
    if type(node) in _SPATIAL and not isinstance(node, ast.GeometryDisjoint):
        literal = node.rhs if isinstance(node.lhs, ast.Attribute) else node.lhs
        return [tuple(literal_geometry(literal, crs).bounds)]
    return []


def compile_filter(node: ast.Node, spec: LayerSpec, crs: TwinCRS, unmasked: frozenset[str] = frozenset()
                   ) -> Compiled:
    """SQL for a parsed CQL2 filter over ``spec``'s table (aliased ``t``); literal geometries are in ``crs``.

    Literals are first checked against the types of the properties they meet (:func:`check_types`).
    Personal fields may be named only when in ``unmasked`` (:class:`MaskedFieldError` otherwise).
    """
    compiler = _Compiler(spec, crs, unmasked)
    check_types(node, {name: qa.type for name, qa in compiler.columns.items() if qa.type != GEOMETRY})
    try:
        where = compiler.cond(node)
        envelopes = top_level_envelopes(node, crs)
    except RecursionError:
        raise InvalidQueryError("filter is nested too deeply") from None
    return Compiled(where, compiler.params, envelopes)


_TRUE, _FALSE = ("true", "1", "yes", "t"), ("false", "0", "no", "f")


def _typed(value: str, qa: Queryable) -> object:
    """A query-parameter value as the column stores it, or a 400 naming the property."""
    try:
        if qa.type == FieldType.integer.value:
            return check_number(int(value))
        if qa.type == FieldType.float.value:
            return check_number(float(value))
        if qa.type in (FieldType.date.value, FieldType.datetime.value):
            return stored_temporal(value, qa.type)
    except ValueError:
        raise InvalidQueryError(f"property {qa.name!r} is of type {qa.type}; {value[:60]!r} is not") from None
    if qa.type == FieldType.boolean.value:
        if value.lower() not in _TRUE + _FALSE:
            raise InvalidQueryError(f"property {qa.name!r} is a boolean; use true or false, not {value[:60]!r}")
        return int(value.lower() in _TRUE)
    return value


def property_equals(spec: LayerSpec, pairs: list[tuple[str, str]], unmasked: frozenset[str] = frozenset()
                    ) -> Compiled:
    """``?kind=underground&status=faulty``: each queryable named in the query must equal the value given.

    This is OGC API - Features' filtering on properties by query parameters (Part 1, 7.15.6; Part 3
    class *queryables-query-parameters*), which GDAL and QGIS use to filter on the server.
    """
    columns = queryables(spec, unmasked)
    terms, params = [], []
    for name, value in pairs:
        qa = columns[name]
        terms.append(f"({qa.column} = ?)")
        params.append(_typed(value, qa))
    return Compiled(" AND ".join(terms), params, [])
