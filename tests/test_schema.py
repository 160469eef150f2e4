"""Conforming values in bulk gives, value by value, what checking each one on its own gives: text columns are
checked once per distinct value, and rows are turned into Python values column by column, for speed."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from twin.catalogue import FieldSpec
from twin.schema import conform_field
from twin.store.planning import stored_values

LIMIT = 6
text = st.sampled_from(["人民路", "  ", "", "a\x00b", "x" * (LIMIT + 1), "ab\x00" + "c" * LIMIT, "ok", " ok "])
anything = st.one_of(text, st.none(), st.just(float("nan")), st.integers(-3, 3), st.floats(-2, 2),
                     st.booleans(), st.just(np.array(["a", "b"])))  # GDAL reads a JSON array as a list


def one_by_one(values: list[object]) -> tuple[list[str | None], list[tuple[int, str, str]]]:
    """The meaning of a text field, value by value: blank is missing, too long and NUL are problems."""
    out: list[str | None] = []
    long: list[tuple[int, str, str]] = []
    nul: list[tuple[int, str, str]] = []
    for r, v in enumerate(values):
        if v is None or (isinstance(v, float) and math.isnan(v)):
            out.append(None)
            continue
        t = v if isinstance(v, str) else str(v)
        if not t.strip():
            out.append(None)
        elif len(t) > LIMIT:
            long.append((r, "road", f"value is {len(t)} characters long; the limit is {LIMIT}"))
            out.append(None)
        elif "\x00" in t:
            nul.append((r, "road", f"value holds a NUL character (\\x00) at position {t.index(chr(0))}"))
            out.append(None)
        else:
            out.append(t)
    return out, long + nul


@given(st.one_of(st.lists(st.one_of(text, st.none(), st.just(float("nan"))), max_size=40),
                 st.lists(anything, max_size=40)))
def test_text_is_checked_as_value_by_value(values: list[object]) -> None:
    problems: list[tuple[int, str, str]] = []
    got = conform_field(pd.Series(values, dtype=object), FieldSpec(name="road", max_length=LIMIT), problems)
    want, want_problems = one_by_one(values)
    assert got.tolist() == want and problems == want_problems


@given(st.lists(st.tuples(st.one_of(st.none(), st.integers(-5, 5)), st.one_of(st.none(), st.floats(-1, 1)),
                          st.one_of(st.none(), text)), max_size=30))
def test_rows_for_the_store_are_plain_python_values(rows: list[tuple[object, object, object]]) -> None:
    frame = pd.DataFrame({"n": pd.Series([r[0] for r in rows], dtype="Int64"),
                          "x": pd.Series([r[1] for r in rows], dtype=float),
                          "s": pd.Series([r[2] for r in rows], dtype=object),
                          "i": np.arange(len(rows), dtype=np.int64)})
    got = stored_values(frame, ["n", "x", "s", "i"])
    assert got == [(a, b, c, i) for i, (a, b, c) in enumerate(rows)]
    assert all(type(v) in (int, float, str, type(None)) for row in got for v in row)
    assert stored_values(frame, []) == [()] * len(rows)
