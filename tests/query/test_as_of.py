"""Reads as of a past moment, property-tested on the run's engine: after any sequence of adds, edits, moves and
deletes, a page with a filter, a bbox and an area, its count, the nearest-k and a search, each as of any moment
between the steps, equal the same question asked of the layer as it stood at that moment."""

from __future__ import annotations

import numpy as np
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import hydrants, moment
from twin.geodesy import distance_to_point
from twin.model.area import Area
from twin.model.query import BBox, FeatureQuery, Near
from twin.query.cql import parse_filter
from twin.query.crs import CRS84
from twin.query.filters import check_filter
from twin.query.search import QueryService
from twin.store import Store

WEST = shapely.box(121.40, 31.20, 121.45, 31.30)
NORTH = (121.38, 31.25, 121.52, 31.32)
ROADS = ("测试路1号", "测试路2号", "旧路", "新路")

ops = st.lists(st.one_of(
    st.tuples(st.just("add"), st.integers(1, 8), st.integers(0, 10_000)),
    st.tuples(st.just("edit"), st.integers(0, 10_000), st.sampled_from(ROADS)),
    st.tuples(st.just("move"), st.integers(0, 10_000), st.floats(-0.06, 0.06)),
    st.tuples(st.just("delete"), st.integers(0, 10_000), st.just(0)),
), min_size=2, max_size=10)


def _step(store: Store, op: str, n: int, arg: object) -> None:
    keys = sorted(store.features("hydrant").key)
    if op == "add":
        store.upsert("hydrant", hydrants(n, seed=int(arg)), author="t", source="t")  # type: ignore[call-overload]
    elif keys and op == "edit":
        store.edit(keys[n % len(keys)], author="t", properties={"road": arg})
    elif keys and op == "move":
        g = store.get(keys[n % len(keys)]).geometry.iloc[0]
        store.edit(keys[n % len(keys)], author="t", geometry=shapely.Point(g.x + float(arg), g.y))  # type: ignore
    elif keys and op == "delete":
        store.delete("hydrant", [keys[n % len(keys)]], author="t")


def _keys(service: QueryService, query: FeatureQuery) -> set[str]:
    page = service.page(query)
    assert page.exact and page.matched == len(page.rows.rows)
    return {str(r[1]) for r in page.rows.rows}


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=ops, pick=st.integers(0, 100), point=st.tuples(st.floats(121.35, 121.55), st.floats(31.15, 31.35)),
       k=st.integers(1, 6), road=st.sampled_from(ROADS))
def test_every_read_as_of_a_moment_answers_as_the_layer_stood_then(fresh_store, steps, pick, point, k, road
                                                                  ) -> None:
    spec_filter = parse_filter(f"road = '{road}' OR outlet_diameter >= 100", None)
    for store in fresh_store():
        service = QueryService(store)
        flt = check_filter(spec_filter, store.catalogue["hydrant"], CRS84)
        stood: list[tuple[str, object]] = [(moment(), store.features("hydrant"))]
        for op, n, arg in steps:
            _step(store, op, n, arg)
            stood.append((moment(), store.features("hydrant")))
        then, frame = stood[pick % len(stood)]
        keys = frame.key.astype(str).to_numpy()
        geoms = frame.geometry.to_numpy()
        passes = (frame.road == road).to_numpy() | (frame.outlet_diameter >= 100).to_numpy()

        asked = FeatureQuery("hydrant", filter=flt, limit=10_000, as_of=then)
        assert _keys(service, asked) == set(keys[passes])
        boxed = FeatureQuery("hydrant", bbox=BBox(*NORTH), scope=Area("west", "committee", "西", WEST),
                             limit=10_000, as_of=then)
        inside = shapely.intersects(geoms, shapely.box(*NORTH)) & shapely.intersects(geoms, WEST)
        assert _keys(service, boxed) == set(keys[inside])

        rows, extra = service.nearest("hydrant", point[0], point[1], k, as_of=then)
        want = np.sort(distance_to_point(geoms, *point))[:k] if len(geoms) else np.empty(0)
        assert np.allclose([e["distance_m"] for e in extra], want, atol=2e-3)
        assert {str(r[1]) for r in rows.rows} <= set(keys)

        found, _ = service.search(near=Near(point[0], point[1], 3_000.0), layers=["hydrant"], limit=10_000,
                                  as_of=then)
        close = distance_to_point(geoms, *point) <= 3_000.0 if len(geoms) else np.zeros(0, dtype=bool)
        assert {str(r[1]) for r in found[0].rows} == set(keys[close])
