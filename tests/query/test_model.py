"""Query value objects: bbox parsing in every axis order, datetime intervals, limits."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from twin.errors import InvalidQueryError
from twin.model.query import MAX_LIMIT, BBox, TimeInterval
from twin.query.crs import resolve_crs
from twin.query.model import clamp_limit, parse_bbox, parse_interval

lon = st.floats(-180, 180, allow_nan=False)
lat = st.floats(-90, 90, allow_nan=False)


@given(lon, lat, lon, lat)
def test_crs84_bbox_round_trips(x0: float, y0: float, x1: float, y1: float) -> None:
    y0, y1 = sorted((y0, y1))
    box = parse_bbox(f"{x0!r},{y0!r},{x1!r},{y1!r}", resolve_crs(None))
    assert (box.minx, box.miny, box.maxx, box.maxy) == (x0, y0, x1, y1)
    assert len(box.parts) == (1 if x0 <= x1 else 2)


@given(lon, lat, lon, lat)
def test_epsg4326_bbox_is_lat_lon(x0: float, y0: float, x1: float, y1: float) -> None:
    y0, y1 = sorted((y0, y1))
    box = parse_bbox(f"{y0!r},{x0!r},{y1!r},{x1!r}", resolve_crs("EPSG:4326"))
    assert (box.minx, box.miny, box.maxx, box.maxy) == (x0, y0, x1, y1)


@given(st.text(max_size=40))
def test_arbitrary_text_is_a_box_or_a_clear_error(text: str) -> None:
    try:
        box = parse_bbox(text, resolve_crs(None))
    except InvalidQueryError as exc:
        assert "bbox" in str(exc)
    else:
        assert box.miny <= box.maxy


def test_projected_bbox_is_densified() -> None:
    box = parse_bbox("3455000,640000,3460000,645000", resolve_crs("EPSG:4549"))
    assert 121.4 < box.minx < box.maxx < 121.6 and 31.2 < box.miny < box.maxy < 31.3
    with pytest.raises(InvalidQueryError, match="antimeridian"):
        parse_bbox("3455000,645000,3460000,640000", resolve_crs("EPSG:4549"))
    with pytest.raises(InvalidQueryError):
        parse_bbox("1e300,1e300,1e301,1e301", resolve_crs("EPSG:4549"))


def test_contains() -> None:
    box = BBox(121.0, 31.0, 122.0, 32.0)
    assert box.contains((121.1, 31.1, 121.9, 31.9)) and not box.contains((120.9, 31.1, 121.9, 31.9))
    assert BBox(170.0, -10.0, -170.0, 10.0).contains((175.0, 0.0, 179.0, 1.0))


@pytest.mark.parametrize(("text", "start", "end"), [
    ("2024-05-01T08:00:00Z", "2024-05-01T08:00:00.000Z", "2024-05-01T08:00:00.000Z"),
    ("2024-05-01T08:00:00+08:00", "2024-05-01T00:00:00.000Z", "2024-05-01T00:00:00.000Z"),
    ("2024-05-01", "2024-05-01T00:00:00.000Z", "2024-05-01T23:59:59.999Z"),
    ("2024-05-01/..", "2024-05-01T00:00:00.000Z", None),
    ("../2024-05-01", None, "2024-05-01T23:59:59.999Z"),
    ("/2024-05-01T00:00:00.5Z", None, "2024-05-01T00:00:00.500Z"),
])
def test_time_intervals(text: str, start: str | None, end: str | None) -> None:
    assert parse_interval(text) == TimeInterval(start, end)


def test_limits() -> None:
    assert clamp_limit(1) == 1 and clamp_limit(10**30) == MAX_LIMIT
    with pytest.raises(InvalidQueryError, match="limit"):
        clamp_limit(0)
