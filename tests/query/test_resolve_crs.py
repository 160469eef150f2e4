"""CRS parameters: the offered CRSs by any usual spelling, and junk refused at once (no PROJ search for it)."""

from __future__ import annotations

import time

import pytest

from twin.errors import InvalidQueryError
from twin.query.crs import SUPPORTED_CRS, resolve_crs

JUNK = ["-" + "9" * 40, "1e400", "x" * 200, "9999-12-31T23:59:59-23:59", "NaN", "abc", "EPSG:3857"]


@pytest.mark.parametrize(("text", "uri"), [
    ("EPSG:4549", SUPPORTED_CRS[3]), ("4490", SUPPORTED_CRS[2]), ("epsg:4326", SUPPORTED_CRS[1]),
    ("urn:ogc:def:crs:EPSG::4326", SUPPORTED_CRS[1]), ("OGC:CRS84", SUPPORTED_CRS[0]), ("WGS84", SUPPORTED_CRS[1]),
    ("CGCS2000", SUPPORTED_CRS[2]), ("GCJ-02", SUPPORTED_CRS[7]), ("bd09", SUPPORTED_CRS[8]),
    *((uri, uri) for uri in SUPPORTED_CRS),
])
def test_offered_crs_are_read_in_their_usual_spellings(text: str, uri: str) -> None:
    assert resolve_crs(text).uri == uri


def test_junk_is_refused_without_a_slow_search() -> None:
    started = time.perf_counter()
    for text in JUNK:
        with pytest.raises(InvalidQueryError, match="is not offered"):
            resolve_crs(text, name="bbox-crs")
    assert time.perf_counter() - started < 0.2  # PROJ's search took 0.3 to 1.2 s for each of these
