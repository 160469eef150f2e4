"""A checked filter: the tree every store engine compiles, whatever CQL2 encoding it came from.

The query layer parses CQL2 (text or JSON), checks it against the catalogue (known properties, fields a
caller may not filter on, literal types), converts literal geometries to lon/lat, and hands engines this
tree. So an engine only translates: it never judges a filter, and two engines can never disagree on what
one means. ``AND`` and ``OR`` are n-ary, so a long chain of terms is a flat list, not a deep tree.

Literal values are as the property's catalogue type says: ``int``, ``float``, ``str``, ``bool``,
:class:`datetime.date` for dates and timezone-aware UTC :class:`datetime.datetime` for date-times.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

from shapely.geometry.base import BaseGeometry

Box = tuple[float, float, float, float]
Value = int | float | str | bool | date | datetime
#: Property kinds: a catalogue field type, or "key" / "status" / "updated_at" for twin's own columns.
CompareOp = Literal["=", "<>", "<", "<=", ">", ">="]
ArithOp = Literal["+", "-", "*", "/"]
SpatialOp = Literal["intersects", "within", "contains", "disjoint", "touches", "crosses", "overlaps", "equals"]
SPATIAL_OPS: tuple[SpatialOp, ...] = ("intersects", "within", "contains", "disjoint", "touches", "crosses",
                                      "overlaps", "equals")


@dataclass(frozen=True)
class Prop:
    """A property of the layer: ``id`` (the location key), ``status``, ``updated_at`` or a catalogue field."""

    name: str
    type: str  # a FieldType value ("string", "integer", "float", "boolean", "date", "datetime")


@dataclass(frozen=True)
class Const:
    """A literal value."""

    value: Value


@dataclass(frozen=True)
class Arith:
    """``lhs op rhs`` on numbers."""

    op: ArithOp
    lhs: Expr
    rhs: Expr


@dataclass(frozen=True)
class Lower:
    """Lower case of a text expression (CQL2 ``CASEI``)."""

    arg: Expr


Expr = Prop | Const | Arith | Lower


@dataclass(frozen=True)
class And:
    items: tuple[Cond, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Cond, ...]


@dataclass(frozen=True)
class Not:
    item: Cond


@dataclass(frozen=True)
class Truth:
    """A condition that is always true (``INCLUDE``) or always false (``EXCLUDE``)."""

    value: bool


@dataclass(frozen=True)
class Compare:
    op: CompareOp
    lhs: Expr
    rhs: Expr


@dataclass(frozen=True)
class Like:
    """``expr LIKE pattern`` with ``%`` and ``_`` wildcards and ``\\`` escaping them; case-sensitive."""

    expr: Expr
    pattern: str
    negated: bool = False


@dataclass(frozen=True)
class In:
    expr: Expr
    values: tuple[Expr, ...]
    negated: bool = False


@dataclass(frozen=True)
class Between:
    expr: Expr
    low: Expr
    high: Expr
    negated: bool = False


@dataclass(frozen=True)
class IsNull:
    expr: Expr
    negated: bool = False


@dataclass(frozen=True)
class Spatial:
    """``op(feature geometry, literal)``, exactly (GEOS), the literal in lon/lat."""

    op: SpatialOp
    geometry: BaseGeometry


@dataclass(frozen=True)
class DWithin:
    """The feature lies within ``metres`` of the literal (lon/lat), measured as :mod:`twin.geodesy` measures:
    in a local equirectangular frame centred on the literal's centroid."""

    geometry: BaseGeometry
    metres: float


Cond = And | Or | Not | Truth | Compare | Like | In | Between | IsNull | Spatial | DWithin


@dataclass(frozen=True)
class Filter:
    """A checked filter and the lon/lat boxes every match must meet (from spatial terms ANDed at its top)."""

    root: Cond
    envelopes: tuple[Box, ...] = ()


def depth(node: Cond | Expr) -> int:
    """How deep the tree is (a leaf is 1), without recursion: engines compile trees of checked depth only."""
    deepest, stack = 0, [(node, 1)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in children(item))
    return deepest


def children(node: Cond | Expr) -> tuple[Cond | Expr, ...]:
    """The direct sub-conditions and sub-expressions of a node."""
    match node:
        case And(items) | Or(items):
            return items
        case Not(item):
            return (item,)
        case Compare(_, lhs, rhs) | Arith(_, lhs, rhs):
            return (lhs, rhs)
        case Like(expr) | IsNull(expr):
            return (expr,)
        case In(expr, values):
            return (expr, *values)
        case Between(expr, low, high):
            return (expr, low, high)
        case Lower(arg):
            return (arg,)
    return ()
