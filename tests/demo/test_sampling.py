"""Stations along polylines: on the line, evenly spaced, the right number, with the right direction."""

from __future__ import annotations

import numpy as np
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from twin.demo.raster import Grid, box_blur, dilate
from twin.demo.sampling import stations

coords = st.lists(st.tuples(st.integers(-5000, 5000), st.integers(-5000, 5000)), min_size=2, max_size=8)  # decimetres


@settings(max_examples=60, deadline=None)
@given(lines=st.lists(coords, min_size=1, max_size=5), spacing=st.floats(5, 80), start_share=st.floats(0, 0.99))
def test_stations_lie_on_their_line_at_the_spacing(lines: list, spacing: float, start_share: float) -> None:
    geoms = np.array([shapely.LineString(np.array(c) / 10.0) for c in lines], dtype=object)
    start = start_share * spacing
    got = stations(geoms, spacing, start)
    length = shapely.length(geoms)
    expected = np.where(length > 0, np.floor(np.maximum(length - start, -1) / spacing) + 1, 0)
    expected = np.where(start <= length, expected, 0)
    assert np.bincount(got.line, minlength=len(geoms)).tolist() == expected.astype(int).tolist()
    pts = shapely.points(got.x, got.y)
    assert np.all(shapely.distance(geoms[got.line], pts) < 1e-6)
    along = shapely.line_locate_point(geoms[got.line], pts)
    k = np.arange(len(got.line)) - np.searchsorted(got.line, got.line)
    for i in np.unique(got.line):
        sel = got.line == i
        if shapely.is_simple(geoms[i]):  # on a self-crossing line, locate may pick the other pass
            np.testing.assert_allclose(along[sel], start + k[sel] * spacing, atol=1e-6)
    np.testing.assert_allclose(np.hypot(got.dx, got.dy), 1.0)


def test_offset_is_sideways_to_the_left_of_travel() -> None:
    line = np.array([shapely.LineString([(0, 0), (100, 0), (100, 100)])], dtype=object)
    got = stations(line, 50.0, 25.0)
    x, y = got.offset(3.0)
    assert np.allclose(np.column_stack([x, y]), [[25, 3], [75, 3], [97, 25], [97, 75]])


def test_lines_without_length_give_no_station() -> None:
    geoms = np.array([shapely.LineString([(1, 1), (1, 1)]), shapely.LineString([(0, 0), (10, 0)])], dtype=object)
    got = stations(geoms, 4.0, 0.0)
    assert got.line.tolist() == [1, 1, 1]
    assert stations(geoms[:1], 4.0, 0.0).x.size == 0


def test_blur_keeps_constant_fields_and_mass() -> None:
    grid = np.zeros((40, 50))
    grid[20, 25] = 9.0
    blurred = box_blur(grid, 3)
    assert np.isclose(blurred.sum(), 9.0) and blurred.max() < 9.0 and blurred[20, 25] == blurred.max()
    assert np.allclose(box_blur(np.full((30, 32), 2.5), 2)[7:-7, 7:-7], 2.5)  # 3 passes reach 6 cells
    mask = np.zeros((9, 9), dtype=bool)
    mask[4, 4] = True
    assert dilate(mask, 2).sum() == 25


def test_grid_mask_polygons_cover_exactly_the_cells() -> None:
    grid = Grid.covering((0.0, 0.0, 1000.0, 1000.0), 100.0)
    mask = np.zeros((grid.ny, grid.nx), dtype=bool)
    mask[2:5, 3:7] = True
    mask[8, 0] = True
    poly = grid.mask_polygons(mask, grid.bounds)
    assert np.isclose(poly.area, 13 * 100.0**2)
    assert poly.contains(shapely.Point(350, 250)) and not poly.contains(shapely.Point(250, 250))
