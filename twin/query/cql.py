"""Reading CQL2 filters (text and JSON) with pygeofilter, plus one twin extension: ``S_DWITHIN``.

CQL2 has no distance predicate, but "within N metres of this line" is the question city staff
ask most. pygeofilter's own CQL2-text grammar is reused unchanged and extended, through Lark's
``%extend``, by one alternative: ``S_DWITHIN(geometry, <geometry>, <metres>)``; and its string literal is
overridden to accept CQL2's doubled quote (``'O''Brien'``) and one-letter property names, which
pygeofilter's grammar lacks. In CQL2-JSON the
same is ``{"op": "s_dwithin", "args": [{"property": "geometry"}, <GeoJSON>, <metres>]}``.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from typing import Any

import orjson
from lark import Lark, v_args
from pygeofilter import ast
from pygeofilter.parsers.cql2_json.parser import walk_cql_json
from pygeofilter.parsers.cql2_text.parser import CQLTransformer

from twin.errors import InvalidQueryError
from twin.query.cql_checks import MAX_FILTER_CHARS, check_json_nesting, check_limits

FILTER_LANGS = ("cql2-text", "cql2-json")
_EXTENSION = """
%extend spatial_predicate: "S_DWITHIN"i "(" expression "," expression "," full_number ["," DISTANCE_UNIT] ")" -> dwithin
DISTANCE_UNIT: /(meters|metres|m)\\b/i
%override SINGLE_QUOTED: "'" /(?:[^']|'')*/ "'"
%override attribute: /[a-zA-Z][a-zA-Z_:0-9.]*/ | DOUBLE_QUOTED
"""


@v_args(meta=False, inline=True)
class _Transformer(CQLTransformer):  # type: ignore[misc]  # pygeofilter has no type information
    """pygeofilter's CQL2 transformer with the ``dwithin`` rule added."""

    def dwithin(self, lhs: Any, rhs: Any, distance: Any, unit: Any = None) -> ast.DistanceWithin:
        return ast.DistanceWithin(lhs, rhs, distance, "meters")

    def SINGLE_QUOTED(self, token: Any) -> str:  # Lark names terminal callbacks after the terminal
        return str(token)[1:-1].replace("''", "'")


@cache
def _text_parser() -> Lark:
    package = files("pygeofilter.parsers")
    grammar = package.joinpath("cql2_text", "grammar.lark").read_text(encoding="utf-8") + _EXTENSION
    return Lark(grammar, parser="lalr", maybe_placeholders=False, transformer=_Transformer(),
                import_paths=[str(package)])


def _dwithin_json(node: Any) -> Any:
    """Replace CQL2-JSON ``s_dwithin`` nodes with pygeofilter AST nodes, which its walker passes through."""
    if isinstance(node, list):
        return [_dwithin_json(n) for n in node]
    if not isinstance(node, dict):
        return node
    if str(node.get("op", "")).lower() == "s_dwithin":
        args = node.get("args")
        if not isinstance(args, list) or len(args) not in (3, 4) or not isinstance(args[2], int | float):
            raise InvalidQueryError("s_dwithin takes a property, a geometry and a distance in metres")
        return ast.DistanceWithin(walk_cql_json(args[0]), walk_cql_json(args[1]), args[2], "meters")
    return {k: _dwithin_json(v) for k, v in node.items()}


def parse_filter(text: str, lang: str | None) -> ast.Node:
    """The AST of a CQL2 filter, within the limits of :mod:`twin.query.cql_checks`.

    Any parse failure, and any filter beyond a limit, is an :class:`InvalidQueryError` naming the problem.
    The length (and, for JSON, the nesting) is checked before the parser runs, so a hostile string can
    neither keep the parser busy nor exhaust Python's stack.
    """
    lang = (lang or "cql2-text").strip().lower()
    if lang not in FILTER_LANGS:
        raise InvalidQueryError(f"filter-lang {lang[:40]!r} is not supported; use one of {', '.join(FILTER_LANGS)}")
    if len(text) > MAX_FILTER_CHARS:
        raise InvalidQueryError(f"filter is {len(text)} characters long; the limit is {MAX_FILTER_CHARS}")
    if not text.strip():
        raise InvalidQueryError("filter is empty")
    if lang == "cql2-json":
        check_json_nesting(text)
    try:
        node = walk_cql_json(_dwithin_json(orjson.loads(text))) if lang == "cql2-json" else _text_parser().parse(text)
    except InvalidQueryError:
        raise
    # pygeofilter and Lark raise many exception types (Lark errors, ValueError, KeyError, TypeError);
    # every one of them means "this filter does not parse".
    except Exception as exc:
        raise InvalidQueryError(f"{lang} filter does not parse: {_first_line(exc)}") from None
    if not isinstance(node, ast.Node):
        raise InvalidQueryError(f"{lang} filter is a bare value ({str(node)[:60]!r}), not a condition")
    check_limits(node)
    return node


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]
