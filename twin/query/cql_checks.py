"""Checks of a parsed CQL2 filter (a pygeofilter AST) that come before any store engine compiles it.

Two kinds, both independent of the engine:

* **limits** (:func:`check_limits`): how deep operators nest, how many nodes, how many values the ``IN`` lists
  hold and how many vertices the geometries have. They keep every engine and Python itself safe: SQLite's
  parser overflows at about 30 nested parentheses, its expressions at 1,000 levels and its statements at 32,766
  parameters, and a deep tree would exhaust Python's stack in any recursive compiler.
* **types** (:func:`check_types`): every literal must fit the catalogue type of the property it is compared
  with, so ``outlet_diameter > 'abc'`` is an error naming the property, its type and the value instead of an
  empty answer.

Parsers build ``a OR b OR c`` as nested pairs; a chain of one operator counts as one level and is compiled flat
(:func:`operands`), so a long list of alternatives is never "too deep". Nothing here recurses.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from datetime import date, datetime
from typing import Any

from pygeofilter import ast, values

from twin.errors import InvalidQueryError
from twin.query.model import instant

#: Longest filter text (CQL2 text or JSON), checked before parsing.
MAX_FILTER_CHARS = 20_000
#: Operators nested inside one another (a chain such as ``a OR b OR c`` is one level).
MAX_DEPTH = 20
#: Operators, properties and values, not counting the values of IN lists.
MAX_NODES = 500
#: Values of all IN lists together.
MAX_IN_VALUES = 1_000
#: Vertices of all literal geometries together.
MAX_VERTICES = 1_000
#: Nesting of CQL2-JSON objects and arrays, checked before the JSON is read: three per operator level
#: (object, its ``args`` array, and a function's inner object) and a few for a geometry's coordinates.
MAX_JSON_NESTING = 3 * MAX_DEPTH + 8
#: The integers a store can hold (64-bit).
_INT_RANGE = (-(2**63), 2**63 - 1)

_COMPARISONS = (ast.Equal, ast.NotEqual, ast.LessThan, ast.LessEqual, ast.GreaterThan, ast.GreaterEqual)
#: Chains of these are flattened both ways (``a AND (b AND c)`` is ``a AND b AND c``).
_ASSOCIATIVE = (ast.And, ast.Or, ast.Add, ast.Mul)
#: Chains of these are flattened along the left operand only (``a - b - c`` is ``(a - b) - c``).
_LEFT_CHAINED = (ast.Sub, ast.Div)
#: What a property of each catalogue type may be compared with.
_KINDS = {"integer": "number", "float": "number", "string": "text", "boolean": "boolean", "date": "date",
          "datetime": "datetime"}


def operands(node: Any) -> list[Any]:
    """The operands of the chain of ``node``'s operator, in order: ``(a OR b) OR c`` gives ``[a, b, c]``.

    Associative operators (AND, OR, +, *) are flattened on both sides, ``-`` and ``/`` along their left
    operand, which is how SQL reads ``a - b - c``.
    """
    kind = type(node)
    if isinstance(node, _LEFT_CHAINED):
        rights = []
        while type(node) is kind:
            rights.append(node.rhs)
            node = node.lhs
        return [node, *reversed(rights)]
    out, stack = [], [node]
    while stack:
        item = stack.pop()
        if type(item) is kind:
            stack += (item.rhs, item.lhs)
        else:
            out.append(item)
    return out


def _children(node: Any) -> list[Any]:
    """The direct operands of a node; a chain's operands for a chain."""
    if isinstance(node, _ASSOCIATIVE + _LEFT_CHAINED):
        return operands(node)
    if isinstance(node, ast.In):
        return [node.lhs]  # the list's values are counted apart
    if isinstance(node, ast.Node):
        return list(node.get_sub_nodes())
    if isinstance(node, list | tuple):
        return list(node)
    return []


def _is_operator(node: Any) -> bool:
    return isinstance(node, ast.Node) and not isinstance(node, ast.Attribute)


def check_limits(node: Any) -> None:
    """Raise :class:`InvalidQueryError`, naming the limit, if the filter is too deep or too big."""
    nodes = in_values = vertices = 0
    stack = [(node, 1)]
    while stack:
        item, level = stack.pop()
        if _is_operator(item) and level > MAX_DEPTH:
            raise InvalidQueryError(f"filter is nested too deeply: operators may nest at most {MAX_DEPTH} levels "
                                    f"inside one another (a chain such as a OR b OR c counts as one)")
        chain = operands(item) if isinstance(item, _ASSOCIATIVE + _LEFT_CHAINED) else None
        nodes += len(chain) - 1 if chain else 1
        if nodes > MAX_NODES:
            raise InvalidQueryError(f"filter is too long: it may have at most {MAX_NODES} operators, properties "
                                    "and values (use IN (...) for a list of values)")
        if isinstance(item, ast.In):
            in_values += len(item.sub_nodes)
            if in_values > MAX_IN_VALUES:
                raise InvalidQueryError(f"filter has more than {MAX_IN_VALUES} values in its IN lists; the limit "
                                        f"is {MAX_IN_VALUES}")
            stack += [(v, level + 1) for v in item.sub_nodes if isinstance(v, ast.Node | list | tuple)]
        if isinstance(item, values.Geometry | values.Envelope):
            vertices += _vertices(item)
            if vertices > MAX_VERTICES:
                raise InvalidQueryError(f"filter geometries have more than {MAX_VERTICES} vertices; the limit is "
                                        f"{MAX_VERTICES} (simplify the geometry, or use a bbox)")
            continue
        stack += [(child, level + 1) for child in (chain if chain is not None else _children(item))]


def _vertices(value: values.Geometry | values.Envelope) -> int:
    """Coordinate pairs of a literal geometry (4 for an envelope), counted without recursion; geometry
    collections may nest at most :data:`MAX_DEPTH` levels (shapely reads them recursively)."""
    if isinstance(value, values.Envelope):
        return 4
    count, stack = 0, [(value.geometry, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            if level > MAX_DEPTH:
                raise InvalidQueryError(f"filter geometries nest geometry collections more than {MAX_DEPTH} "
                                        "levels deep")
            stack.append((item.get("coordinates", ()), level))
            stack += [(g, level + 1) for g in item.get("geometries", ())]
        elif isinstance(item, list | tuple):
            if item and all(isinstance(v, int | float) for v in item):
                count += 1
            else:
                stack += [(v, level) for v in item]
    return count


def nesting(text: str) -> int:
    """How deep brackets (``( [ {``) nest in ``text``, outside double-quoted strings; counted without parsing."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in ")]}":
            depth -= 1
    return deepest


def check_json_nesting(text: str) -> None:
    """Refuse CQL2-JSON nested deeper than :data:`MAX_JSON_NESTING` before reading it (a JSON reader and
    pygeofilter's JSON walker recurse once per level)."""
    if nesting(text) > MAX_JSON_NESTING:
        raise InvalidQueryError(f"filter is nested too deeply: cql2-json objects and arrays may nest at most "
                                f"{MAX_JSON_NESTING} levels (operators at most {MAX_DEPTH})")


def stored_temporal(text: str, type_: str) -> str:
    """A date (``date``) or date-time (``datetime``) written as text, as the store writes it; ValueError if it is
    not one. A date-time needs a zone; a date given for a date-time means its first millisecond (UTC)."""
    if type_ == "date":
        return date.fromisoformat(text.strip()).isoformat()
    try:
        return instant(text, name="value")[0]
    except InvalidQueryError:
        raise ValueError(text) from None


def check_types(node: Any, types: Mapping[str, str]) -> None:
    """Raise :class:`InvalidQueryError` for a literal that does not fit what it is compared with.

    ``types`` maps each property a filter may use to its catalogue type; properties not in it (unknown,
    masked or the geometry) are left for the compiler to name.
    """
    for item in walk(node):
        if isinstance(item, bool):
            continue
        if isinstance(item, int | float):
            check_number(item)
        elif isinstance(item, _COMPARISONS):
            _check_pair(item.lhs, item.rhs, types)
        elif isinstance(item, ast.Between):
            _check_pair(item.lhs, item.low, types)
            _check_pair(item.lhs, item.high, types)
        elif isinstance(item, ast.In):
            for value in item.sub_nodes:
                _check_pair(item.lhs, value, types)
        elif isinstance(item, ast.Like):
            _expect(item.lhs, "text", "LIKE", types)
        elif isinstance(item, ast.Arithmetic):
            for operand in (item.lhs, item.rhs):
                _expect(operand, "number", "arithmetic (+ - * /)", types)
        elif isinstance(item, ast.Function) and item.name.lower() == "lower":
            for arg in item.arguments:
                _expect(arg, "text", "CASEI", types)


def check_number(value: int | float) -> int | float:
    """``value`` if a store can hold it: finite, and a 64-bit integer if an integer."""
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidQueryError(f"numbers must be finite, not {value}")
    if isinstance(value, int) and not _INT_RANGE[0] <= value <= _INT_RANGE[1]:
        raise InvalidQueryError(f"the number {str(value)[:40]} is too large: integers lie between "
                                f"{_INT_RANGE[0]} and {_INT_RANGE[1]}")
    return value


def _kind(node: Any, types: Mapping[str, str]) -> str | None:
    """What a side of a comparison is: number, text, boolean, date, datetime; ``None`` when not known here."""
    if isinstance(node, bool):
        return "boolean"
    if isinstance(node, int | float):
        return "number"
    if isinstance(node, str):
        return "text"
    if isinstance(node, datetime):
        return "datetime"
    if isinstance(node, date):
        return "date"
    if isinstance(node, ast.Attribute):
        return _KINDS.get(types.get(node.name, ""))
    if isinstance(node, ast.Arithmetic):
        return "number"
    if isinstance(node, ast.Function) and node.name.lower() == "lower":
        return "text"
    return None


def _describe(node: Any, types: Mapping[str, str]) -> str:
    if isinstance(node, ast.Attribute):
        return f"property {node.name[:80]!r} (of type {types[node.name]})"
    if isinstance(node, datetime):
        return f"TIMESTAMP('{node.isoformat()}')"
    if isinstance(node, date):
        return f"DATE('{node.isoformat()}')"
    if isinstance(node, bool):
        return "TRUE" if node else "FALSE"
    if isinstance(node, str):
        return f"{node[:60]!r} (text)"
    if isinstance(node, int | float):
        return f"{node!r} (a number)"
    return f"an expression ({_kind(node, types)})"


def _check_pair(lhs: Any, rhs: Any, types: Mapping[str, str]) -> None:
    """Both sides of a comparison fit each other; the property's side, if any, sets the expected type."""
    if isinstance(rhs, ast.Attribute) and not isinstance(lhs, ast.Attribute):
        lhs, rhs = rhs, lhs
    want, have = _kind(lhs, types), _kind(rhs, types)
    if want is None or have is None or want == have or {want, have} == {"date", "datetime"}:
        return
    if want in ("date", "datetime") and isinstance(rhs, str):
        try:
            stored_temporal(rhs, want)
            return
        except ValueError:
            example = "DATE('2024-05-01')" if want == "date" else "TIMESTAMP('2024-05-01T08:00:00Z')"
            raise InvalidQueryError(f"{_describe(lhs, types)} cannot be compared with {rhs[:60]!r}: it is not a "
                                    f"{'date' if want == 'date' else 'date-time with a time zone'}; write, for "
                                    f"example, {example}") from None
    raise InvalidQueryError(f"{_describe(lhs, types)} cannot be compared with {_describe(rhs, types)}")


def _expect(node: Any, kind: str, where: str, types: Mapping[str, str]) -> None:
    have = _kind(node, types)
    if have is not None and have != kind:
        raise InvalidQueryError(f"{where} needs {'a number' if kind == 'number' else 'text'}, not "
                                f"{_describe(node, types)}")


def walk(node: Any) -> Iterator[Any]:
    """Every node and value of a filter, without recursion."""
    stack = [node]
    while stack:
        item = stack.pop()
        yield item
        stack += _children(item)
        if isinstance(item, ast.In):
            stack += item.sub_nodes

