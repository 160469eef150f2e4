"""Nearest-k comes from the store's own spatial index on either engine (nothing held in memory per worker): exact in
metres, ties by fid, also after inserts, edits and deletes by this writer or another one, near and far from the
data, and for more neighbours than the layer holds."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import hydrants
from tests.engines import fresh
from twin.geodesy import distance_to_point
from twin.model.rows import TIE_DECIMALS
from twin.store import open_store

ops = st.lists(
    st.one_of(
        st.tuples(st.just("insert"), st.integers(1, 30), st.integers(0, 10_000)),
        st.tuples(st.just("update"), st.integers(1, 10), st.integers(0, 10_000)),
        st.tuples(st.just("delete"), st.integers(1, 10), st.integers(0, 10_000)),
    ),
    min_size=1, max_size=10,
)
# near the data, in a suburb, and far away (the search widens its window until it holds k components)
probes = st.lists(st.one_of(st.tuples(st.floats(121.40, 121.50), st.floats(31.20, 31.30)),
                            st.tuples(st.floats(120.0, 123.0), st.floats(30.0, 32.5)),
                            st.tuples(st.floats(-179.0, 179.0), st.floats(-80.0, 80.0))),
                  min_size=2, max_size=4)


def exact_nearest(store, layer, lon, lat):
    frame = store.features(layer)
    if not len(frame):
        return np.empty(0, np.int64), np.empty(0)
    dist = distance_to_point(frame.geometry.to_numpy(), lon, lat)
    order = np.lexsort((frame.fid.to_numpy(), np.round(dist, TIE_DECIMALS)))
    return frame.fid.to_numpy()[order], dist[order]


def assert_exact(store, layer, lon, lat, k):
    fids, dist = exact_nearest(store, layer, lon, lat)
    with store.read() as snap:
        near = snap.nearest(layer, lon, lat, k)
    assert near.fids.tolist() == fids[:k].tolist(), (lon, lat, k)
    assert np.allclose(near.distances, dist[:k], rtol=1e-9, atol=1e-6)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops, probes, st.integers(1, 40), st.booleans())
def test_nearest_is_exact_after_random_writes_by_this_or_another_writer(tmp_path_factory, catalogue, sequence,
                                                                       points, k, other_writer):
    with fresh(tmp_path_factory.mktemp("nn")) as target:
        store = open_store(target, catalogue)
        writer = open_store(target, catalogue) if other_writer else store  # e.g. `twin import` beside a server
        assert_exact(store, "hydrant", 121.45, 31.25, k)  # asked before the writes: nothing may be kept stale
        for op, n, seed in sequence:
            current = writer.features("hydrant")
            rng = np.random.default_rng(seed)
            if op == "insert":
                writer.upsert("hydrant", hydrants(n, seed=seed), author="t", source="t")
            elif op == "update" and len(current):
                for key in rng.choice(current.key.to_numpy(), min(n, len(current)), replace=False):
                    writer.edit(str(key), author="t", geometry=shapely.Point(121.4 + rng.random() / 10,
                                                                             31.2 + rng.random() / 10))
            elif op == "delete" and len(current):
                keys = rng.choice(current.key.to_numpy(), min(n, len(current)), replace=False)
                writer.delete("hydrant", [str(key) for key in keys], author="t")
        for lon, lat in points:
            assert_exact(store, "hydrant", lon, lat, k)
        if writer is not store:
            writer.close()
        store.close()


def _lines(rng: np.random.Generator, n: int) -> gpd.GeoDataFrame:
    starts = rng.random((n, 2)) * 0.1 + [121.4, 31.2]
    lines = [shapely.LineString([s, s + rng.normal(0, 0.003, 2)]) for s in starts]
    return gpd.GeoDataFrame({"kind": ["gas"] * n}, geometry=lines, crs="EPSG:4326")


@pytest.mark.parametrize("layer", ["hydrant", "pipeline"])
def test_nearest_matches_brute_force_in_metres(store, layer):
    rng = np.random.default_rng(3)
    frame = hydrants(400, seed=2) if layer == "hydrant" else _lines(rng, 150)
    store.upsert(layer, frame, author="t", source="t")
    for lon, lat in rng.random((10, 2)) * 0.1 + [121.4, 31.2]:
        for k in (1, 5, 60):
            assert_exact(store, layer, lon, lat, k)


def test_a_long_line_whose_envelope_is_far_is_found_by_its_distance(store):
    # a 10 km diagonal main passes 20 m from the point, its envelope's corner lies kilometres away; short pipes nearer
    # the point's window but farther from it must not win
    lon, lat = 121.45, 31.25
    main = shapely.LineString([(lon - 0.05, lat - 0.05 + 0.0003), (lon + 0.05, lat + 0.05 + 0.0003)])
    stubs = [shapely.LineString([(lon + 0.003 + i * 1e-4, lat - 0.003), (lon + 0.003 + i * 1e-4, lat - 0.0032)])
             for i in range(20)]
    store.upsert("pipeline", gpd.GeoDataFrame({"kind": ["gas"] * 21}, geometry=[main, *stubs], crs="EPSG:4326"),
                 author="t", source="t")
    assert_exact(store, "pipeline", lon, lat, 1)
    assert_exact(store, "pipeline", lon, lat, 3)


def test_nearest_ranks_by_metres_not_degrees(store):
    # At 31 degrees north a degree of longitude is ~15 % shorter than a degree of latitude.
    lon, lat = 121.47, 31.23
    frame = gpd.GeoDataFrame({"kind": ["above_ground"] * 2},
                             geometry=[shapely.Point(lon, lat + 0.0010), shapely.Point(lon + 0.00110, lat)],
                             crs="EPSG:4326")
    store.upsert("hydrant", frame, author="t", source="t")
    with store.read() as snap:
        near = snap.nearest("hydrant", lon, lat, 1)
    east = store.features("hydrant", fids=near.fids.tolist()).geometry.iloc[0]
    assert east.x > lon and 100 < near.distances[0] < 110


def test_a_window_crowded_past_its_row_limit_still_ranks_exactly(store):
    # 6,000 hydrants in a 20 m square (a depot): the first window's read stops at its row limit, so the nearest
    # to a point among them may well be in the rows it did not read
    lon, lat = 121.47, 31.23
    rng = np.random.default_rng(5)
    crowd = shapely.points(lon + rng.random(6000) * 0.0002, lat + rng.random(6000) * 0.0002)
    store.upsert("hydrant", gpd.GeoDataFrame({"kind": ["above_ground"] * 6000}, geometry=crowd, crs="EPSG:4326"),
                 author="t", source="t")
    for x, y in rng.random((10, 2)) * 0.0002 + [lon, lat]:
        for k in (1, 3, 20):
            assert_exact(store, "hydrant", x, y, k)


def test_ties_are_broken_by_fid(store):
    lon, lat = 121.47, 31.23
    ring = [shapely.Point(lon + 0.001 * np.cos(a), lat + 0.001 * np.sin(a)) for a in np.linspace(0, np.pi, 6)]
    store.upsert("hydrant", gpd.GeoDataFrame({"kind": ["above_ground"] * 12}, geometry=ring + ring,
                                             crs="EPSG:4326"), author="t", source="t")
    assert_exact(store, "hydrant", lon, lat, 7)


def test_a_store_catches_up_with_another_writer(store, catalogue):
    store.upsert("hydrant", hydrants(10), author="t", source="t")
    seen = []
    store.subscribe(seen.append)
    other = open_store(store.location, catalogue)  # another writer, as `twin import` beside the service
    written = [other.upsert("hydrant", hydrants(7, seed=5), author="t", source="t"),
               other.delete("hydrant", other.features("hydrant").key[:3].tolist(), author="t")]
    other.close()
    assert store.feed.sync() == written and seen == written  # published once, in order
    assert store.feed.sync() == []
    with store.read() as snap:
        assert snap.layer_count("hydrant") == 14 and snap.last_changeset("hydrant") == written[-1].id
        assert len(snap.nearest("hydrant", 121.45, 31.25, 100).fids) == 14


def test_a_snapshots_nearest_on_an_empty_layer_is_empty(store):
    with store.read() as snap:
        near = snap.nearest("hydrant", 121.4, 31.2, 3)
    assert near.fids.size == near.distances.size == 0
