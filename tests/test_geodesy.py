"""The lon/lat box around a circle holds every point of the circle, also across the antimeridian and near a pole."""

from __future__ import annotations

import numpy as np
import shapely
from hypothesis import given
from hypothesis import strategies as st
from pyproj import Geod

from twin.geodesy import degree_box, distance_to_point

GEOD = Geod(ellps="WGS84")


@given(st.floats(-180, 180), st.floats(-85, 85), st.floats(1, 5e6), st.floats(0, 360), st.floats(0, 0.999))
def test_a_degree_box_holds_every_point_within_its_radius(lon, lat, metres, azimuth, share):
    x, y, _ = GEOD.fwd(lon, lat, azimuth, metres * share)
    point = shapely.Point(x, y)
    if distance_to_point(np.array([point]), lon, lat)[0] > metres:  # twin measures on the sphere, pyproj on WGS84
        return
    west, south, east, north = degree_box(lon, lat, metres)
    assert west <= x <= east and south <= y <= north


def test_a_box_across_the_antimeridian_spans_every_longitude():
    assert degree_box(179.9, 10.0, 50_000)[::2] == (-180.0, 180.0)
    assert 121.2 < degree_box(121.47, 31.23, 20_000)[0] < 121.47
