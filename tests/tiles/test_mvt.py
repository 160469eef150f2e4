"""Fitting geometries to a tile never fails, keeps them inside the buffered tile, on whole units, valid and wound
as MVT 2.1 requires (exterior rings of positive area in y-down tile coordinates)."""

from __future__ import annotations

import mapbox_vector_tile
import numpy as np
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from tiles.mvt import encode, fit
from tiles.mvt_columns import Layer
from tiles.mvt_geometry import shape_commands

coords = st.floats(-3000, 7000, allow_nan=False, allow_subnormal=False)
points = st.lists(st.tuples(coords, coords), min_size=3, max_size=12)


@settings(max_examples=150, deadline=None)
@given(st.lists(points, min_size=1, max_size=8), st.integers(0, 256))
def test_fit_keeps_geometries_inside_on_the_grid_valid_and_wound(shapes: list, buffer: int) -> None:
    geoms = []
    for i, pts in enumerate(shapes):
        if i % 3 == 0:
            geoms.append(shapely.Point(pts[0]))
        elif i % 3 == 1:
            geoms.append(shapely.LineString(pts))
        else:
            geoms.append(shapely.make_valid(shapely.Polygon(pts)))
    fitted = fit(np.array(geoms, dtype=object), buffer)
    assert len(fitted) == len(geoms)
    box = shapely.box(-buffer, -buffer, 4096 + buffer, 4096 + buffer)
    for g in fitted:
        if g is None:
            continue
        assert shapely.is_valid(g) and box.covers(g)
        xy = shapely.get_coordinates(g)
        assert np.array_equal(xy, np.round(xy))
        for poly in shapely.get_parts(g):
            if poly.geom_type == "Polygon":
                assert shapely.is_ccw(poly.exterior)  # positive shoelace area: clockwise on screen (y down)
    keep = np.array([g for g in fitted if g is not None], dtype=object)
    data = encode([Layer("t", shape_commands(keep), np.arange(len(keep)), {"i": np.arange(len(keep))})])
    if len(keep):
        assert len(mapbox_vector_tile.decode(data)["t"]["features"]) == len(keep)
    else:
        assert data == b""
