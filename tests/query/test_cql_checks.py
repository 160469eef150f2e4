"""CQL2 limits and literal types: every filter is either refused with a 400 naming the limit or the type, or
is checked into a tree that a real store runs. Nothing in between (no parser overflow, no empty answer by mistake)."""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import time
from datetime import UTC, date, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from twin.catalogue import Catalogue
from twin.errors import InvalidQueryError, MaskedFieldError
from twin.model import filter as f
from twin.model.query import FeatureQuery
from twin.query.cql import parse_filter
from twin.query.cql_checks import (
    MAX_DEPTH,
    MAX_FILTER_CHARS,
    MAX_IN_VALUES,
    MAX_JSON_NESTING,
    MAX_NODES,
    MAX_VERTICES,
)
from twin.query.crs import resolve_crs
from twin.query.filters import check_filter, property_filter
from twin.query.search import QueryService
from twin.store import open_store
from twin.store.gpkg.filter_sql import where

CRS84 = resolve_crs(None)


@pytest.fixture(scope="module")
def service(twin_target: str, catalogue: Catalogue) -> QueryService:
    store = open_store(twin_target, catalogue, create=False)
    yield QueryService(store, budget_s=10)
    store.close()


def run(service: QueryService, text: str, lang: str = "cql2-text", layer: str = "hydrant") -> int:
    """Check a filter for ``layer`` and run it (page and count) on the real store; the number matched."""
    checked = check_filter(parse_filter(text, lang), service.catalogue[layer], CRS84)
    return service.page(FeatureQuery(layer, filter=checked, limit=5)).matched


def check(catalogue: Catalogue, text: str, layer: str = "hydrant") -> f.Filter:
    """A CQL2 text filter checked against ``layer``."""
    return check_filter(parse_filter(text, None), catalogue[layer], CRS84)


def nested(depth: int) -> str:
    """Operators ``depth`` deep, alternating OR and AND (no chain to flatten), ending in a comparison."""
    text = "kind = 'underground'"
    for level in range(depth - 1):
        text = f"(pressure > 0.1 {'AND' if level % 2 else 'OR'} {text})"
    return text


def nested_json(depth: int, op: str = "not") -> str:
    node: dict = {"op": "=", "args": [{"property": "kind"}, "underground"]}
    for _ in range(depth - 1):
        node = {"op": op, "args": [node]}
    return json.dumps(node)


def polygon(vertices: int) -> str:
    """A circle of ``vertices`` vertices (the first repeated last) around People's Square, written short."""
    ring = [(121.45 + 0.3 * math.cos(2 * math.pi * i / (vertices - 1)),
             31.25 + 0.3 * math.sin(2 * math.pi * i / (vertices - 1))) for i in range(vertices - 1)]
    ring.append(ring[0])
    return "POLYGON((" + ", ".join(f"{x:.3f} {y:.3f}" for x, y in ring) + "))"


# -- limits -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("at_limit", "over_limit", "lang", "message"), [
    (nested(MAX_DEPTH), nested(MAX_DEPTH + 1), "cql2-text", f"at most {MAX_DEPTH} levels"),
    (nested_json(MAX_DEPTH), nested_json(MAX_DEPTH + 1), "cql2-json", f"at most {MAX_DEPTH} levels"),
    (" OR ".join(["outlet_diameter = 65"] * 125), " OR ".join(["outlet_diameter = 65"] * 126), "cql2-text",
     f"at most {MAX_NODES} operators"),
    (f"outlet_diameter IN ({', '.join(['65'] * MAX_IN_VALUES)})",
     f"outlet_diameter IN ({', '.join(['65'] * (MAX_IN_VALUES + 1))})", "cql2-text", f"limit is {MAX_IN_VALUES}"),
    ("outlet_diameter IN (65, 100) OR outlet_diameter IN (" + ", ".join(["150"] * (MAX_IN_VALUES - 2)) + ")",
     "outlet_diameter IN (65, 100) OR outlet_diameter IN (" + ", ".join(["150"] * (MAX_IN_VALUES - 1)) + ")",
     "cql2-text", f"limit is {MAX_IN_VALUES}"),
    (f"S_INTERSECTS(geometry, {polygon(MAX_VERTICES)})", f"S_INTERSECTS(geometry, {polygon(MAX_VERTICES + 1)})",
     "cql2-text", f"limit is {MAX_VERTICES}"),
], ids=["depth-text", "depth-json", "nodes", "in-list", "in-lists-together", "vertices"])
def test_a_filter_at_a_limit_runs_and_one_beyond_is_refused_naming_it(
        service: QueryService, at_limit: str, over_limit: str, lang: str, message: str) -> None:
    assert run(service, at_limit, lang) >= 0
    with pytest.raises(InvalidQueryError, match=message):
        parse_filter(over_limit, lang)


def test_a_long_chain_of_alternatives_is_flat_not_deep(service: QueryService, catalogue: Catalogue) -> None:
    text = " OR ".join(f"outlet_diameter = {65 + i}" for i in range(120))  # SQLite overflowed at ~30 nested
    checked = check(catalogue, text)
    assert isinstance(checked.root, f.Or) and len(checked.root.items) == 120 and f.depth(checked.root) == 3
    sql, params = where(checked.root)
    assert sql.count("(") == 121 and sql.startswith('((t."outlet_diameter" = ?) OR') and len(params) == 120
    as_json = {"op": "or", "args": [{"op": "=", "args": [{"property": "outlet_diameter"}, 65 + i]} for i in range(120)]}
    assert run(service, text) == run(service, json.dumps(as_json), "cql2-json") > 0
    sql, params = where(check(catalogue, "pressure - 1 - 2 - 3 > 0").root)
    assert (sql, params) == ('((t."pressure" - ? - ? - ?) > ?)', [1, 2, 3, 0])


@pytest.mark.parametrize("op", ["+", "-", "*", "/"])
def test_a_long_arithmetic_chain_runs_on_a_real_store(service: QueryService, op: str) -> None:
    """As many terms as the node limit allows: the SQL stays flat, so SQLite's parser never overflows."""
    text = "pressure" + f" {op} 1" * ((MAX_NODES - 3) // 2) + " > 0"  # 2 nodes a term, 3 besides
    assert run(service, text) >= 0


@pytest.mark.parametrize(("text", "lang", "message"), [
    ("x" * (MAX_FILTER_CHARS + 1), "cql2-text", f"the limit is {MAX_FILTER_CHARS}"),
    ("[" * 5000 + "]" * 5000, "cql2-json", f"at most {MAX_JSON_NESTING} levels"),
    ('{"op": "not", "args": [' * 45 + '{"op": "=", "args": [{"property": "kind"}, "x"]}' + "]}" * 45, "cql2-json",
     "nested too deeply"),
    ("S_INTERSECTS(geometry, " + "GEOMETRYCOLLECTION(" * 500 + "POINT(1 2)" + ")" * 501, "cql2-text",
     f"more than {MAX_DEPTH} levels"),
])
def test_hostile_filters_are_refused_before_any_recursion(text: str, lang: str, message: str) -> None:
    with pytest.raises(InvalidQueryError, match=message):
        parse_filter(text, lang)


@pytest.mark.parametrize("text", [
    "(" * MAX_FILTER_CHARS, "(" * 9990 + "kind = 'x'" + ")" * 9990, "'" * MAX_FILTER_CHARS,
    "kind = " + "1+" * 9990 + "1", " OR ".join(["kind = 'x'"] * 1400), "NOT " * 4990 + "kind = 'x'",
    "CASEI(" * 3000 + "kind" + ")" * 3000 + " = 'x'", "kind IN (" + ",".join(["'x'"] * 4900) + ")",
    "S_INTERSECTS(geometry, POLYGON((" + "1 2," * 4900 + "1 2)))", "路" * MAX_FILTER_CHARS,
])
def test_the_parser_answers_a_hostile_string_at_the_length_limit_quickly(text: str) -> None:
    started = time.perf_counter()
    with contextlib.suppress(InvalidQueryError):
        parse_filter(text, None)
    assert time.perf_counter() - started < 2


# -- types --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "needles"), [
    ("outlet_diameter > 'abc'", ("'outlet_diameter'", "integer", "'abc'")),
    ("outlet_diameter BETWEEN 'a' AND 'b'", ("'outlet_diameter'", "integer", "'a'")),
    ("pressure IN (0.1, 'high')", ("'pressure'", "float", "'high'")),
    ("kind = 5", ("'kind'", "string", "5")),
    ("'underground' = outlet_diameter", ("'outlet_diameter'", "integer", "'underground'")),
    ("outlet_diameter = kind", ("'outlet_diameter'", "integer", "'kind'", "string")),
    ("kind = TRUE", ("'kind'", "string", "TRUE")),
    ("inspected_on > 'abc'", ("'inspected_on'", "date", "'abc'")),
    ("updated_at > 'yesterday'", ("'updated_at'", "datetime", "'yesterday'")),
    ("updated_at < '2024-05-01T08:00:00'", ("'updated_at'", "time zone")),
    ("kind = DATE('2024-05-01')", ("'kind'", "string", "DATE('2024-05-01')")),
    ("outlet_diameter LIKE '6%'", ("LIKE", "'outlet_diameter'", "integer")),
    ("kind + 1 > 2", ("arithmetic", "'kind'", "string")),
    ("pressure * 'x' > 2", ("arithmetic", "'x'")),
    ("CASEI(outlet_diameter) = 'x'", ("CASEI", "'outlet_diameter'")),
    ("pressure = 1e400", ("finite",)),
    ("outlet_diameter = 99999999999999999999999", ("too large",)),
    ("updated_at > TIMESTAMP('9999-12-31T23:59:59-01:00')", ("years 1 to 9999",)),
])
def test_a_literal_of_the_wrong_type_is_a_clear_error(catalogue: Catalogue, text: str, needles: tuple) -> None:
    with pytest.raises(InvalidQueryError) as err:
        check(catalogue, text)
    for needle in needles:
        assert needle in str(err.value), str(err.value)


_UTC_MAY_1 = datetime(2024, 5, 1, tzinfo=UTC)


@pytest.mark.parametrize(("text", "values", "params"), [
    ("inspected_on >= '2024-05-01'", [date(2024, 5, 1)], ["2024-05-01"]),
    ("inspected_on >= TIMESTAMP('2024-05-01T23:00:00Z')", [date(2024, 5, 1)], ["2024-05-01"]),
    ("updated_at >= '2024-05-01T08:00:00+08:00'", [_UTC_MAY_1], ["2024-05-01T00:00:00.000Z"]),
    ("updated_at >= DATE('2024-05-01')", [_UTC_MAY_1], ["2024-05-01T00:00:00.000Z"]),
    ("updated_at >= TIMESTAMP('2024-05-01T08:00:00.123456+08:00')", [_UTC_MAY_1.replace(microsecond=123_000)],
     ["2024-05-01T00:00:00.123Z"]),
    ("pressure > 1", [1], [1]),
    ("outlet_diameter > 64.5", [64.5], [64.5]),
    ("kind IN ('underground', 'above_ground')", ["underground", "above_ground"], ["underground", "above_ground"]),
    ("status <> 'no such status'", ["no such status"], ["no such status"]),
])
def test_literals_that_fit_become_typed_values_bound_as_the_store_keeps_them(
        catalogue: Catalogue, text: str, values: list, params: list) -> None:
    root = check(catalogue, text).root
    consts = [node.value for node in _walk(root) if isinstance(node, f.Const)]
    assert consts == values and [type(v) for v in consts] == [type(v) for v in values]
    assert where(root)[1] == params


def _walk(node: f.Cond | f.Expr) -> list[f.Cond | f.Expr]:
    """Every node of a checked tree, depth first, left to right."""
    out = [node]
    for child in f.children(node):
        out += _walk(child)
    return out


def test_an_unknown_or_masked_property_is_still_named_by_the_compiler(catalogue: Catalogue) -> None:
    with pytest.raises(InvalidQueryError, match="unknown property 'nope'"):
        check(catalogue, "nope > 'abc'")
    with pytest.raises(MaskedFieldError):
        check(catalogue, "contact_phone = 5", "residential_compound")


@pytest.mark.parametrize(("name", "value", "needle"), [
    ("outlet_diameter", "99999999999999999999999", "too large"),
    ("outlet_diameter", "9" * 5000, "outlet_diameter"),
    ("pressure", "nan", "finite"),
    ("pressure", "inf", "finite"),
    ("inspected_on", "abc", "inspected_on"),
    ("updated_at", "2024-05-01T08:00:00", "updated_at"),
])
def test_property_parameters_of_the_wrong_type_are_clear_errors(catalogue: Catalogue, name: str, value: str,
                                                                 needle: str) -> None:
    with pytest.raises(InvalidQueryError, match=needle):
        property_filter(catalogue["hydrant"], [(name, value)])


def test_property_parameters_of_dates_are_compared_as_stored(catalogue: Catalogue) -> None:
    out = property_filter(catalogue["hydrant"], [("updated_at", "2021-06-01T08:00:00+08:00"),
                                                 ("inspected_on", "2024-05-15")])
    assert out.root == f.And((
        f.Compare("=", f.Prop("updated_at", "datetime"), f.Const(datetime(2021, 6, 1, tzinfo=UTC))),
        f.Compare("=", f.Prop("inspected_on", "date"), f.Const(date(2024, 5, 15)))))
    assert where(out.root)[1] == ["2021-06-01T00:00:00.000Z", "2024-05-15"]


# -- any filter: refused cleanly, or run --------------------------------------------------------------------

_PROPERTIES = st.sampled_from(["kind", "outlet_diameter", "pressure", "road", "inspected_on", "updated_at", "id",
                               "status", "nope"])
_VALUES = st.one_of(st.integers(-2**70, 2**70), st.floats(allow_nan=False), st.text(max_size=12), st.booleans(),
                    st.just({"date": "2024-05-01"}), st.just({"timestamp": "2021-06-01T00:00:00Z"}))


def _comparison() -> st.SearchStrategy[dict]:
    return st.builds(lambda op, prop, value: {"op": op, "args": [{"property": prop}, value]},
                     st.sampled_from(["=", "<>", "<", ">=", "like"]), _PROPERTIES, _VALUES)


_FILTERS = st.recursive(
    _comparison(),
    lambda inner: st.one_of(
        st.builds(lambda op, items: {"op": op, "args": items}, st.sampled_from(["and", "or"]),
                  st.lists(inner, min_size=1, max_size=4)),
        st.builds(lambda item: {"op": "not", "args": [item]}, inner)),
    max_leaves=60)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(_FILTERS)
def test_any_json_filter_is_refused_cleanly_or_runs_on_a_real_store(service: QueryService, tree: dict) -> None:
    with contextlib.suppress(InvalidQueryError):
        run(service, json.dumps(tree), "cql2-json")


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.sampled_from(["not", "and", "or"]), min_size=1, max_size=MAX_DEPTH + 8).filter(
    lambda ops: all(a != b for a, b in itertools.pairwise(ops))))
def test_nesting_runs_up_to_the_limit_and_is_refused_beyond(service: QueryService, ops: list[str]) -> None:
    node: dict = {"op": "=", "args": [{"property": "kind"}, "underground"]}
    for op in ops:  # no two alike in a row, so no chain flattens: the depth is len(ops) + 1
        other = {"op": "<", "args": [{"property": "pressure"}, 0.3]}
        node = {"op": op, "args": [node] if op == "not" else [other, node]}
    if len(ops) + 1 <= MAX_DEPTH:
        assert run(service, json.dumps(node), "cql2-json") >= 0
    else:
        with pytest.raises(InvalidQueryError, match=f"at most {MAX_DEPTH} levels"):
            run(service, json.dumps(node), "cql2-json")


@pytest.mark.parametrize("text", ['{"op": "=", "args": [{"property": "road"}, "旧\\u0000路"]}',
                                  '{"op": "like", "args": [{"property": "road"}, "%\\u0000"]}'])
def test_a_nul_character_in_a_json_text_value_is_refused_on_every_engine(catalogue: Catalogue, text: str) -> None:
    """JSON escapes let a NUL reach a text literal past the HTTP layer's check; PostgreSQL cannot even compare with
    one, so every engine refuses it alike, as a 400 that says so."""
    with pytest.raises(InvalidQueryError, match="NUL character"):
        check_filter(parse_filter(text, "cql2-json"), catalogue["hydrant"], resolve_crs(None))
