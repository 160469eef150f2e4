"""CQL2 to SQL: bound parameters only, identifiers only from the catalogue, clear errors."""

from __future__ import annotations

import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twin.catalogue import Catalogue
from twin.errors import InvalidQueryError, MaskedFieldError
from twin.query.cql import parse_filter
from twin.query.crs import resolve_crs
from twin.query.filters import compile_filter, queryables

CRS84 = resolve_crs(None)


def _sql(catalogue: Catalogue, text: str, lang: str = "cql2-text"):  # type: ignore[no-untyped-def]
    return compile_filter(parse_filter(text, lang), catalogue["hydrant"], CRS84)


def test_values_are_bound_never_inlined(catalogue: Catalogue) -> None:
    evil = "x'; DROP TABLE hydrant; --"
    out = _sql(catalogue, "road = '" + evil.replace("'", "''") + "' AND kind IN ('a', 'b')")
    assert evil not in out.where and "DROP" not in out.where
    assert out.params == [evil, "a", "b"]
    assert out.where == '((t."road" = ?) AND (t."kind" IN (?, ?)))'


@settings(max_examples=200)
@given(st.text(max_size=60))
def test_any_string_literal_stays_a_parameter(catalogue: Catalogue, value: str) -> None:
    out = _sql(catalogue, "road = '" + value.replace("'", "''") + "'")
    assert out.params == [value]
    assert out.where == '(t."road" = ?)'


@settings(max_examples=300)
@given(st.text(max_size=80))
def test_any_text_compiles_or_fails_cleanly(catalogue: Catalogue, text: str) -> None:
    try:
        out = _sql(catalogue, text)
    except (InvalidQueryError, MaskedFieldError):
        return
    conn = sqlite3.connect(":memory:")
    names = {q.column.removeprefix("t.").strip('"') for q in queryables(catalogue["hydrant"]).values()}
    conn.execute("CREATE TABLE hydrant (" + ", ".join(f'"{n}"' for n in sorted(names)) + ")")
    for name in ("twin_pred", "twin_dwithin"):
        conn.create_function(name, 3, lambda *a: 1)
    conn.execute(f"SELECT * FROM hydrant t WHERE {out.where}", out.params)  # valid SQL with its parameters


def test_envelopes_only_from_top_level_conjunction(catalogue: Catalogue) -> None:
    out = _sql(catalogue, "S_INTERSECTS(geometry, POLYGON((121 31, 122 31, 122 32, 121 31))) AND kind = 'x'")
    assert out.envelopes == [(121.0, 31.0, 122.0, 32.0)]
    assert _sql(catalogue, "S_INTERSECTS(geometry, POINT(121 31)) OR kind = 'x'").envelopes == []
    assert _sql(catalogue, "S_DISJOINT(geometry, POINT(121 31))").envelopes == []
    near = _sql(catalogue, "S_DWITHIN(geometry, POINT(121.5 31.2), 1000)").envelopes[0]
    assert near[0] < 121.49 and near[2] > 121.51 and near[1] < 31.195 and near[3] > 31.205


@pytest.mark.parametrize(("text", "message"), [
    ("secret = 1", "unknown property 'secret'"),
    ('"road OR 1=1 --" = 1', "unknown property"),
    ("S_INTERSECTS(kind, POINT(1 2))", "geometry"),
    ("BBOX(geometry, 1, 2, 3)", "parse"),
    ("S_INTERSECTS(geometry, POLYGON((0 0, 1 1)))", "malformed"),
])
def test_errors_name_the_problem(catalogue: Catalogue, text: str, message: str) -> None:
    with pytest.raises(InvalidQueryError, match=message):
        _sql(catalogue, text)


def test_sensitive_fields_are_not_queryable(catalogue: Catalogue) -> None:
    spec = catalogue["residential_compound"]
    assert "contact_phone" not in queryables(spec)
    with pytest.raises(MaskedFieldError, match="personal data"):
        compile_filter(parse_filter("contact_phone = '1'", None), spec, CRS84)


def test_unmasked_personal_fields_are_queryable(catalogue: Catalogue) -> None:
    spec = catalogue["residential_compound"]
    assert "contact_phone" in queryables(spec, frozenset({"contact_phone"}))
    sql = compile_filter(parse_filter("contact_phone = '1'", None), spec, CRS84, frozenset({"contact_phone"}))
    assert "contact_phone" in sql.where and sql.params == ["1"]
    with pytest.raises(MaskedFieldError):
        compile_filter(parse_filter("property_manager = '1'", None), spec, CRS84, frozenset({"contact_phone"}))


def test_filter_crs_swaps_lat_lon(catalogue: Catalogue) -> None:
    a = _sql(catalogue, "S_INTERSECTS(geometry, POINT(121.5 31.2))")
    b = compile_filter(parse_filter("S_INTERSECTS(geometry, POINT(31.2 121.5))", None), catalogue["hydrant"],
                       resolve_crs("EPSG:4326"))
    assert a.params == b.params
