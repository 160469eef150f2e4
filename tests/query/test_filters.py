"""CQL2 checked into the filter tree, and the tree as each engine's SQL: bound parameters only, identifiers only
from the catalogue, clear errors."""

from __future__ import annotations

import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twin.catalogue import Catalogue
from twin.errors import InvalidQueryError, MaskedFieldError
from twin.model import filter as f
from twin.query.cql import parse_filter
from twin.query.crs import resolve_crs
from twin.query.filters import check_filter, queryables
from twin.store.gpkg.filter_sql import column, where
from twin.store.postgis.filter_sql import where as pg_where

CRS84 = resolve_crs(None)


def _check(catalogue: Catalogue, text: str, lang: str = "cql2-text") -> f.Filter:
    return check_filter(parse_filter(text, lang), catalogue["hydrant"], CRS84)


def _sql(catalogue: Catalogue, text: str, lang: str = "cql2-text") -> tuple[str, list[object]]:
    """SQLite ``WHERE`` text and parameters of a filter on hydrants."""
    return where(_check(catalogue, text, lang).root)


def test_values_are_bound_never_inlined(catalogue: Catalogue) -> None:
    evil = "x'; DROP TABLE hydrant; --"
    text = "road = '" + evil.replace("'", "''") + "' AND kind IN ('a', 'b')"
    assert _check(catalogue, text).root == f.And((
        f.Compare("=", f.Prop("road", "string"), f.Const(evil)),
        f.In(f.Prop("kind", "string"), (f.Const("a"), f.Const("b")))))
    sql, params = _sql(catalogue, text)
    assert evil not in sql and "DROP" not in sql
    assert params == [evil, "a", "b"]
    assert sql == '((t."road" = ?) AND (t."kind" IN (?, ?)))'


#: Any text a value can hold: everything but NUL, which no twin text holds (a filter with one is refused, below).
TEXT = st.text(st.characters(exclude_characters="\x00"), max_size=60)


@settings(max_examples=200)
@given(TEXT)
def test_any_string_literal_stays_a_parameter(catalogue: Catalogue, value: str) -> None:
    sql, params = _sql(catalogue, "road = '" + value.replace("'", "''") + "'")
    assert params == [value]
    assert sql == '(t."road" = ?)'


@settings(max_examples=200)
@given(TEXT)
def test_any_string_literal_stays_a_parameter_in_postgresql_too(catalogue: Catalogue, value: str) -> None:
    evil = "x'; DROP TABLE hydrant; --"
    quoted = [v.replace("'", "''") for v in (evil, value)]
    text = f"road = '{quoted[0]}' AND kind IN ('a', 'b') AND road <> '{quoted[1]}'"
    sql, params = pg_where(_check(catalogue, text).root, "twin")
    assert evil not in sql and "DROP" not in sql and "%s" in sql
    assert params == [evil, "a", "b", value]


def test_a_string_literal_holding_a_nul_is_refused(catalogue: Catalogue) -> None:
    with pytest.raises(InvalidQueryError, match="NUL character"):
        _sql(catalogue, "road = 'a\x00b'")


@settings(max_examples=300)
@given(st.text(max_size=80))
def test_any_text_compiles_or_fails_cleanly(catalogue: Catalogue, text: str) -> None:
    try:
        sql, params = _sql(catalogue, text)
    except (InvalidQueryError, MaskedFieldError):
        return
    conn = sqlite3.connect(":memory:")
    names = {column(q.name).removeprefix("t.").strip('"') for q in queryables(catalogue["hydrant"]).values()
             if q.type != "geometry"} | {"geom"}
    conn.execute("CREATE TABLE hydrant (" + ", ".join(f'"{n}"' for n in sorted(names)) + ")")
    for name in ("twin_pred", "twin_dwithin"):
        conn.create_function(name, 3, lambda *a: 1)
    conn.execute(f"SELECT * FROM hydrant t WHERE {sql}", params)  # valid SQL with its parameters


def test_envelopes_only_from_top_level_conjunction(catalogue: Catalogue) -> None:
    out = _check(catalogue, "S_INTERSECTS(geometry, POLYGON((121 31, 122 31, 122 32, 121 31))) AND kind = 'x'")
    assert out.envelopes == ((121.0, 31.0, 122.0, 32.0),)
    assert _check(catalogue, "S_INTERSECTS(geometry, POINT(121 31)) OR kind = 'x'").envelopes == ()
    assert _check(catalogue, "S_DISJOINT(geometry, POINT(121 31))").envelopes == ()
    near = _check(catalogue, "S_DWITHIN(geometry, POINT(121.5 31.2), 1000)").envelopes[0]
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
        _check(catalogue, text)


def test_sensitive_fields_are_not_queryable(catalogue: Catalogue) -> None:
    spec = catalogue["residential_compound"]
    assert "contact_phone" not in queryables(spec)
    with pytest.raises(MaskedFieldError, match="personal data"):
        check_filter(parse_filter("contact_phone = '1'", None), spec, CRS84)


def test_unmasked_personal_fields_are_queryable(catalogue: Catalogue) -> None:
    spec = catalogue["residential_compound"]
    assert "contact_phone" in queryables(spec, frozenset({"contact_phone"}))
    checked = check_filter(parse_filter("contact_phone = '1'", None), spec, CRS84, frozenset({"contact_phone"}))
    assert checked.root == f.Compare("=", f.Prop("contact_phone", "string"), f.Const("1"))
    with pytest.raises(MaskedFieldError):
        check_filter(parse_filter("property_manager = '1'", None), spec, CRS84, frozenset({"contact_phone"}))


def test_filter_crs_swaps_lat_lon(catalogue: Catalogue) -> None:
    a = _check(catalogue, "S_INTERSECTS(geometry, POINT(121.5 31.2))")
    b = check_filter(parse_filter("S_INTERSECTS(geometry, POINT(31.2 121.5))", None), catalogue["hydrant"],
                     resolve_crs("EPSG:4326"))
    assert isinstance(a.root, f.Spatial) and isinstance(b.root, f.Spatial)
    assert a.root.geometry.equals_exact(b.root.geometry, 0) and (a.root.geometry.x, a.root.geometry.y) == (121.5, 31.2)
    assert where(a.root)[1] == where(b.root)[1]
