"""Checked filters (:mod:`twin.model.filter`) to SQL: the part every engine shares.

Boolean structure, comparisons, ``LIKE``, ``IN``, ``BETWEEN`` and arithmetic read the same in SQLite and
PostgreSQL; an engine supplies the rest (:class:`SqlDialect`): how a property is named, how a value is bound,
and how spatial terms are tested. Values only ever travel as bound parameters; identifiers come only from the
catalogue. No recursion deeper than the tree, whose depth the query layer has already bounded.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from shapely.geometry.base import BaseGeometry

from twin.model.filter import (
    And,
    Arith,
    Between,
    Compare,
    Cond,
    Const,
    DWithin,
    Expr,
    Filter,
    In,
    IsNull,
    Like,
    Lower,
    Not,
    Or,
    Prop,
    Spatial,
    SpatialOp,
    Truth,
    Value,
)


class SqlDialect(Protocol):
    """What an engine adds to the shared translation."""

    def column(self, prop: Prop) -> str:
        """The SQL naming ``prop`` on the layer table (aliased ``t``)."""
        ...

    def bind(self, value: Value, prop: Prop | None, params: list[object]) -> str:
        """A placeholder for ``value`` (as ``prop``'s column stores it, when known), appending the parameter."""
        ...

    def spatial(self, op: SpatialOp, geometry: BaseGeometry, params: list[object]) -> str:
        """The exact test ``op(t.geom, geometry)``."""
        ...

    def dwithin(self, geometry: BaseGeometry, metres: float, params: list[object]) -> str:
        """Whether ``t.geom`` lies within ``metres`` of ``geometry`` (see :class:`twin.model.filter.DWithin`)."""
        ...

    def divisor(self, rhs: str) -> str:
        """``rhs`` as a divisor: dividing by 0 gives NULL, as SQLite has it."""
        ...


def to_sql(root: Cond, dialect: SqlDialect) -> tuple[str, list[object]]:
    """SQL text of a checked condition and its parameters, in order."""
    params: list[object] = []
    return _Translator(dialect, params).cond(root), params


def flag_columns(conditions: Sequence[Filter | None], dialect: SqlDialect) -> tuple[str, list[object]]:
    """A 0/1 column per condition (``None``: always 1), comma-separated, and their parameters in order: whether each
    row meets each condition, read in one pass."""
    columns: list[str] = []
    params: list[object] = []
    for cond in conditions:
        if cond is None:
            columns.append("1")
            continue
        text, values = to_sql(cond.root, dialect)
        columns.append(f"CASE WHEN {text} THEN 1 ELSE 0 END")
        params += values
    return ", ".join(columns) or "0", params


class _Translator:
    def __init__(self, dialect: SqlDialect, params: list[object]) -> None:
        self.d = dialect
        self.params = params

    def cond(self, node: Cond) -> str:
        match node:
            case And(items):
                return "(" + " AND ".join(self.cond(i) for i in items) + ")"
            case Or(items):
                return "(" + " OR ".join(self.cond(i) for i in items) + ")"
            case Not(item):
                return f"(NOT {self.cond(item)})"
            case Truth(value):
                return "(1 = 1)" if value else "(1 = 0)"
            case Compare(op, lhs, rhs):
                return f"({self.expr(lhs, _prop(rhs))} {op} {self.expr(rhs, _prop(lhs))})"
            case Like(expr, pattern, negated):
                like = self.d.bind(pattern, None, self.params)
                return f"({self.expr(expr)} {'NOT ' if negated else ''}LIKE {like} ESCAPE '\\')"
            case In(expr, values, negated):
                hint = _prop(expr)
                listed = ", ".join(self.expr(v, hint) for v in values)
                return f"({self.expr(expr)} {'NOT IN' if negated else 'IN'} ({listed}))"
            case Between(expr, low, high, negated):
                hint = _prop(expr)
                return (f"({self.expr(expr)} {'NOT ' if negated else ''}BETWEEN {self.expr(low, hint)} "
                        f"AND {self.expr(high, hint)})")
            case IsNull(expr, negated):
                return f"({self.expr(expr)} IS {'NOT ' if negated else ''}NULL)"
            case Spatial(op, geometry):
                return self.d.spatial(op, geometry, self.params)
            case DWithin(geometry, metres):
                return self.d.dwithin(geometry, metres, self.params)
        raise TypeError(f"not a checked condition: {node!r}")

    def expr(self, node: Expr, hint: Prop | None = None) -> str:
        match node:
            case Prop():
                return self.d.column(node)
            case Const(value):
                return self.d.bind(value, hint, self.params)
            case Arith("/"):
                first, *rest = _chain(node)
                return "(" + " / ".join([self.expr(first), *(self.d.divisor(self.expr(t)) for t in rest)]) + ")"
            case Arith(op):
                return "(" + f" {op} ".join(self.expr(term) for term in _chain(node)) + ")"
            case Lower(arg):
                return f"lower({self.expr(arg, hint)})"
        raise TypeError(f"not a checked expression: {node!r}")


def _chain(node: Arith) -> list[Expr]:
    """The terms of a left-nested chain of one operator (``a - b - c`` is ``(a - b) - c``), written flat, as SQL's
    left-associative operators read them: nested parentheses would overflow SQLite's parser on long chains."""
    terms = [node.rhs]
    left = node.lhs
    while isinstance(left, Arith) and left.op == node.op:
        terms.append(left.rhs)
        left = left.lhs
    terms.append(left)
    return terms[::-1]


def _prop(node: Expr) -> Prop | None:
    """The property on one side of a comparison, which types the literal on the other side."""
    return node if isinstance(node, Prop) else None
