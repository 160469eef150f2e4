"""The tile grid: addresses checked with clear messages, and vectorised cells that agree with morecantile."""

from __future__ import annotations

import morecantile
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tiles.grid import (
    TMS,
    InvalidTileError,
    TileID,
    cell_bounds,
    cell_index,
    lonlat_box,
    mercator_bounds,
    parse_tile,
    tiles_in,
    xy_to_mercator,
)


@pytest.mark.parametrize(("z", "x", "y", "message"), [
    ("a", "0", "0", "zoom (tileMatrix) z must be a whole number"),
    ("1.5", "0", "0", "must be a whole number"),
    ("-1", "0", "0", "must be 0 or more"),
    ("25", "0", "0", "zoom (tileMatrix) 25 is out of range"),
    ("3", "8", "0", "column (tileCol) x 8 is out of range at zoom 3: 0 to 7"),
    ("3", "0", "8", "row (tileRow) y 8 is out of range at zoom 3: 0 to 7"),
    ("3", "0", "-2", "row (tileRow) y must be 0 or more"),
    ("3", "x", "0", "column (tileCol) x must be a whole number"),
])
def test_bad_tile_addresses_are_refused_with_what_is_wrong(z: str, x: str, y: str, message: str) -> None:
    with pytest.raises(InvalidTileError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_tile(z, x, y)


@given(st.integers(0, 24).flatmap(lambda z: st.tuples(st.just(z), st.integers(0, 2**z - 1),
                                                      st.integers(0, 2**z - 1))))
def test_every_tile_of_the_matrix_set_parses(zxy: tuple[int, int, int]) -> None:
    assert parse_tile(*[str(v) for v in zxy]) == TileID(*zxy)


@settings(max_examples=200)
@given(st.floats(121.0, 122.0), st.floats(30.7, 31.9), st.integers(0, 20))
def test_cells_are_the_tiles_morecantile_finds(lon: float, lat: float, level: int) -> None:
    x, y = xy_to_mercator(np.array([lon]), np.array([lat]))
    cx, cy = cell_index(x, y, level)
    expected = TMS.tile(lon, lat, level)
    # a point within a hair of a tile edge may go either way; away from edges the two must agree
    b = cell_bounds(cx, cy, level)[0]
    assert b[0] <= x[0] <= b[2] and b[1] <= y[0] <= b[3]
    left, bottom, right, top = mercator_bounds(TileID(level, expected.x, expected.y))
    if min(x[0] - left, right - x[0], y[0] - bottom, top - y[0]) > 1e-6 * (right - left):
        assert (int(cx[0]), int(cy[0])) == (expected.x, expected.y)


def test_tile_boxes_round_trip_through_lonlat() -> None:
    tile = TileID(14, 13719, 6693)
    box = lonlat_box(mercator_bounds(tile))
    expected = TMS.bounds(morecantile.Tile(tile.x, tile.y, tile.z))
    assert np.allclose(box, (expected.left, expected.bottom, expected.right, expected.top))
    assert tile in tiles_in(box, 14)
