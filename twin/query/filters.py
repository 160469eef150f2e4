"""CQL2 (a pygeofilter AST) checked against a layer and turned into the filter every store engine compiles.

Checking happens here, once, for every engine (:mod:`twin.model.filter`): properties must be queryables of the
layer (personal fields only for a role that sees them unmasked), literals must fit the types of what they are
compared with and become values of those types, literal geometries are converted to lon/lat. Spatial terms
ANDed at the top of the filter also give envelopes that let an engine use its spatial index first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import shapely
from pygeofilter import ast, values
from shapely.geometry.base import BaseGeometry

from twin.catalogue import FieldType, LayerSpec
from twin.crs import TwinCRS
from twin.errors import InvalidQueryError, MaskedFieldError
from twin.geodesy import METRES_PER_DEGREE
from twin.model import filter as f
from twin.query.cql_checks import check_number, check_types, operands
from twin.query.crs import geoms_to_lonlat, resolve_crs
from twin.query.model import instant

Box = tuple[float, float, float, float]
GEOMETRY = "geometry"
_COMPARISONS: dict[type, f.CompareOp] = {
    ast.Equal: "=", ast.NotEqual: "<>", ast.LessThan: "<", ast.LessEqual: "<=", ast.GreaterThan: ">",
    ast.GreaterEqual: ">="}
_ARITHMETIC: dict[type, f.ArithOp] = {ast.Add: "+", ast.Sub: "-", ast.Mul: "*", ast.Div: "/"}
_SPATIAL: dict[type, f.SpatialOp] = {
    ast.GeometryIntersects: "intersects", ast.GeometryWithin: "within", ast.GeometryContains: "contains",
    ast.GeometryDisjoint: "disjoint", ast.GeometryTouches: "touches", ast.GeometryCrosses: "crosses",
    ast.GeometryOverlaps: "overlaps", ast.GeometryEquals: "equals"}
_CONVERSE: dict[f.SpatialOp, f.SpatialOp] = {"within": "contains", "contains": "within"}
#: A filter distance (S_DWITHIN) may reach this far, in metres.
MAX_DISTANCE = 1_000_000


@dataclass(frozen=True)
class Queryable:
    """A property a filter or ``sortby`` may name."""

    name: str
    type: str  # a FieldType value, or "geometry"
    title: str
    values: tuple[object, ...] | None = None


def queryables(spec: LayerSpec, unmasked: frozenset[str] = frozenset()) -> dict[str, Queryable]:
    """Everything one may filter or sort a layer by; personal fields only if in ``unmasked`` (seen as stored)."""
    out = {
        "id": Queryable("id", "string", "位置编码 location key"),
        "status": Queryable("status", "string", "状态 status", tuple(spec.statuses)),
        "updated_at": Queryable("updated_at", "datetime", "更新时间 last updated"),
    }
    for field in spec.fields:
        if field.sensitive is None or field.name in unmasked:
            out[field.name] = Queryable(field.name, field.type.value, field.title_zh or field.name, field.values)
    out[GEOMETRY] = Queryable(GEOMETRY, GEOMETRY, "几何 geometry")
    return out


class _Checker:
    """Builds the checked tree; depth and size were bounded when the filter was parsed."""

    def __init__(self, spec: LayerSpec, crs: TwinCRS, unmasked: frozenset[str]) -> None:
        self.spec = spec
        self.crs = crs
        self.columns = queryables(spec, unmasked)

    def cond(self, node: Any) -> f.Cond:
        if isinstance(node, ast.And | ast.Or):
            items = tuple(self.cond(item) for item in operands(node))
            return f.And(items) if isinstance(node, ast.And) else f.Or(items)
        if isinstance(node, ast.Not):
            return f.Not(self.cond(node.sub_node))
        if isinstance(node, ast.Include):
            return f.Truth(not node.not_)
        if type(node) in _COMPARISONS:
            lhs, rhs = self.expr(node.lhs, self.hint(node.rhs)), self.expr(node.rhs, self.hint(node.lhs))
            return f.Compare(_COMPARISONS[type(node)], lhs, rhs)
        if isinstance(node, ast.Like):
            if not isinstance(node.pattern, str):
                raise InvalidQueryError("LIKE needs a text pattern in quotes, such as road LIKE '%路'")
            return f.Like(self.expr(node.lhs), _text(node.pattern), bool(node.not_))
        if isinstance(node, ast.In):
            hint = self.hint(node.lhs)
            return f.In(self.expr(node.lhs), tuple(self.expr(v, hint) for v in node.sub_nodes), bool(node.not_))
        if isinstance(node, ast.Between):
            hint = self.hint(node.lhs)
            return f.Between(self.expr(node.lhs), self.expr(node.low, hint), self.expr(node.high, hint),
                             bool(node.not_))
        if isinstance(node, ast.IsNull):
            return f.IsNull(self.expr(node.lhs), bool(node.not_))
        if type(node) in _SPATIAL or isinstance(node, ast.BBox | ast.DistanceWithin):
            return self.spatial(node)
        if isinstance(node, ast.TemporalPredicate):
            raise InvalidQueryError("temporal operators (T_AFTER, T_DURING ...) are not supported; compare "
                                    "updated_at with TIMESTAMP('2024-01-01T00:00:00Z') instead")
        raise InvalidQueryError(f"{_name(node)} is not supported in filters")

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
        """The type of the property on the other side of a comparison, which literals are converted to."""
        return self.attribute(node.name).type if isinstance(node, ast.Attribute) else None

    def expr(self, node: Any, hint: str | None = None) -> f.Expr:
        if isinstance(node, ast.Attribute):
            col = self.attribute(node.name)
            if col.type == GEOMETRY:
                raise InvalidQueryError("the geometry can only be used in spatial operators (S_INTERSECTS ...)")
            return f.Prop(col.name, col.type)
        if type(node) in _ARITHMETIC:
            items = [self.expr(item) for item in operands(node)]
            out = items[0]
            for item in items[1:]:
                out = f.Arith(_ARITHMETIC[type(node)], out, item)
            return out
        if isinstance(node, ast.Function):
            if node.name.lower() != "lower" or len(node.arguments) != 1:
                raise InvalidQueryError(f"function {node.name[:40]!r} is not supported (CASEI is)")
            return f.Lower(self.expr(node.arguments[0], hint))
        return f.Const(literal(node, hint))

    # -- spatial -----------------------------------------------------------------------------
    def spatial(self, node: Any) -> f.Cond:
        if isinstance(node, ast.BBox):
            box_crs = self.crs if node.crs is None else _crs(node.crs)
            self.geometry_side(node.lhs)
            return f.Spatial("intersects", _to_lonlat(shapely.box(node.minx, node.miny, node.maxx, node.maxy),
                                                      box_crs))
        if isinstance(node, ast.DistanceWithin):
            self.geometry_side(node.lhs)
            metres = node.distance
            if isinstance(metres, bool) or not isinstance(metres, int | float) or not 0 <= metres <= MAX_DISTANCE:
                raise InvalidQueryError(f"S_DWITHIN distance must be 0 to {MAX_DISTANCE} metres, not {metres!r}")
            return f.DWithin(literal_geometry(node.rhs, self.crs), float(metres))
        op = _SPATIAL[type(node)]
        if isinstance(node.lhs, ast.Attribute):
            self.geometry_side(node.lhs)
            return f.Spatial(op, literal_geometry(node.rhs, self.crs))
        self.geometry_side(node.rhs)
        return f.Spatial(_CONVERSE.get(op, op), literal_geometry(node.lhs, self.crs))

    def geometry_side(self, node: Any) -> None:
        if not (isinstance(node, ast.Attribute) and self.attribute(node.name).type == GEOMETRY):
            raise InvalidQueryError("spatial operators compare the property 'geometry' with a literal geometry, "
                                    "such as S_INTERSECTS(geometry, POLYGON((...)))")


def literal_geometry(node: Any, crs: TwinCRS) -> BaseGeometry:
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


def _to_lonlat(geom: BaseGeometry, crs: TwinCRS) -> BaseGeometry:
    out: BaseGeometry | None = geoms_to_lonlat(np.array([geom], dtype=object), crs)[0]
    if out is None or out.is_empty or not np.isfinite(shapely.bounds(out)).all():
        raise InvalidQueryError("filter geometry is empty or lies outside its CRS")
    if not out.is_valid:
        out = shapely.make_valid(out)
    return out


def _utc(moment: datetime) -> datetime:
    """A date-time in UTC, to the millisecond (the store's precision), naive ones read as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        moment = moment.astimezone(UTC)
    except OverflowError:
        raise InvalidQueryError(f"{moment.isoformat()} lies outside the years 1 to 9999 once in UTC") from None
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def literal(node: Any, hint: str | None) -> f.Value:
    """A literal from the AST as a value of the type of what it meets (checked to fit by :func:`check_types`)."""
    if isinstance(node, bool):
        return node
    if isinstance(node, datetime):
        return node.date() if hint == FieldType.date.value else _utc(node)
    if isinstance(node, date):
        return datetime(node.year, node.month, node.day, tzinfo=UTC) if hint == FieldType.datetime.value else node
    if isinstance(node, str) and hint == FieldType.date.value:
        return date.fromisoformat(node.strip())
    if isinstance(node, str) and hint == FieldType.datetime.value:
        return datetime.strptime(instant(node, name="value")[0], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    if isinstance(node, int | float):
        return check_number(node)
    if isinstance(node, str):
        return _text(node)
    raise InvalidQueryError(f"{_name(node)} cannot be used as a value here")


def _text(value: str) -> str:
    """A text literal; one holding a NUL character (``\\u0000`` in CQL2 JSON) is refused: no text in twin holds one,
    and PostgreSQL cannot even compare with one."""
    if "\x00" in value:
        raise InvalidQueryError("a text value in the filter holds a NUL character (\\u0000)")
    return value


def _name(node: Any) -> str:
    return type(node).__name__.replace("Geometry", "S_").replace("Time", "T_")


def envelopes(root: f.Cond) -> tuple[Box, ...]:
    """Boxes that every match meets: envelopes of the spatial terms ANDed at the top of a checked filter."""
    terms = root.items if isinstance(root, f.And) else (root,)
    out: list[Box] = []
    for term in terms:
        if isinstance(term, f.Spatial) and term.op != "disjoint":
            out.append(term.geometry.bounds)
        elif isinstance(term, f.DWithin):
            minx, miny, maxx, maxy = term.geometry.bounds
            dlat = term.metres / METRES_PER_DEGREE * 1.01
            dlon = dlat / max(np.cos(np.radians(min(max(abs(miny), abs(maxy)) + dlat, 89.9))), 1e-6)
            out.append((minx - dlon, miny - dlat, maxx + dlon, maxy + dlat))
    return tuple(out)


def check_filter(node: ast.Node, spec: LayerSpec, crs: TwinCRS, unmasked: frozenset[str] = frozenset()) -> f.Filter:
    """A parsed CQL2 filter checked against ``spec``; literal geometries are written in ``crs``.

    Literals must fit the types of the properties they meet (:func:`check_types`). Personal fields may be named
    only when in ``unmasked`` (:class:`MaskedFieldError` otherwise).
    """
    checker = _Checker(spec, crs, unmasked)
    check_types(node, {name: qa.type for name, qa in checker.columns.items() if qa.type != GEOMETRY})
    root = checker.cond(node)
    return f.Filter(root, envelopes(root))


_TRUE, _FALSE = ("true", "1", "yes", "t"), ("false", "0", "no", "f")


def _typed(value: str, qa: Queryable) -> f.Value:
    """A query-parameter value as a value of the property's type, or a 400 naming the property."""
    number: int | float | None = None
    try:
        if qa.type == FieldType.integer.value:
            number = int(value)
        elif qa.type == FieldType.float.value:
            number = float(value)
        elif qa.type in (FieldType.date.value, FieldType.datetime.value):
            return literal(value, qa.type)
    except (ValueError, InvalidQueryError):
        raise InvalidQueryError(f"property {qa.name!r} is of type {qa.type}; {value[:60]!r} is not") from None
    if number is not None:
        return check_number(number)  # its own message: not finite, too large
    if qa.type == FieldType.boolean.value:
        if value.lower() not in _TRUE + _FALSE:
            raise InvalidQueryError(f"property {qa.name!r} is a boolean; use true or false, not {value[:60]!r}")
        return value.lower() in _TRUE
    return value


def property_filter(spec: LayerSpec, pairs: list[tuple[str, str]], unmasked: frozenset[str] = frozenset()
                    ) -> f.Filter:
    """``?kind=underground&status=faulty``: each queryable named in the query must equal the value given.

    This is OGC API - Features' filtering on properties by query parameters (Part 1, 7.15.6; Part 3
    class *queryables-query-parameters*), which GDAL and QGIS use to filter on the server.
    """
    columns = queryables(spec, unmasked)
    terms: list[f.Cond] = []
    for name, value in pairs:
        qa = columns[name]
        terms.append(f.Compare("=", f.Prop(qa.name, qa.type), f.Const(_typed(value, qa))))
    return f.Filter(f.And(tuple(terms)))


def combine(*filters: f.Filter | None) -> f.Filter | None:
    """Filters that must all hold, as one (``None`` when there are none)."""
    given = [flt for flt in filters if flt is not None]
    if not given:
        return None
    if len(given) == 1:
        return given[0]
    return f.Filter(f.And(tuple(flt.root for flt in given)), tuple(e for flt in given for e in flt.envelopes))
