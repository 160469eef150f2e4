"""Nearest look-ups are exact in metres on either engine, and a store sees another writer's changesets; the
GeoPackage engine's live rtree index stays in step with the store, and its look-ups are exact."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import hydrants
from tests.engines import geopackage_only
from twin.errors import InvalidQueryError
from twin.geodesy import distance_to_point
from twin.store import open_store
from twin.store.gpkg.index import LiveIndex

BOX = (121.40, 31.20, 121.50, 31.30)
ops = st.lists(
    st.one_of(
        st.tuples(st.just("insert"), st.integers(1, 30), st.integers(0, 10_000)),
        st.tuples(st.just("update"), st.integers(1, 10), st.integers(0, 10_000)),
        st.tuples(st.just("delete"), st.integers(1, 10), st.integers(0, 10_000)),
    ),
    min_size=1, max_size=12,
)


def brute_bbox(store, bbox):
    frame = store.features("hydrant")
    hit = frame[frame.intersects(shapely.box(*bbox))]
    return sorted(hit.fid.tolist())


@geopackage_only
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops, st.lists(st.tuples(st.floats(121.40, 121.50), st.floats(31.20, 31.30)), min_size=3, max_size=3))
def test_index_and_store_agree_after_random_writes(tmp_path_factory, catalogue, sequence, probes):
    store = open_store(tmp_path_factory.mktemp("ix") / "s.gpkg", catalogue)
    index = LiveIndex(store)
    index.size("hydrant")  # built before the writes, so it must be patched, not rebuilt
    for op, n, seed in sequence:
        current = store.features("hydrant")
        rng = np.random.default_rng(seed)
        if op == "insert":
            store.upsert("hydrant", hydrants(n, seed=seed), author="t", source="t")
        elif op == "update" and len(current):
            for key in rng.choice(current.key.to_numpy(), min(n, len(current)), replace=False):
                store.edit(str(key), author="t", geometry=shapely.Point(121.4 + rng.random() / 10,
                                                                        31.2 + rng.random() / 10))
        elif op == "delete" and len(current):
            keys = rng.choice(current.key.to_numpy(), min(n, len(current)), replace=False)
            store.delete("hydrant", [str(k) for k in keys], author="t")
    assert index.size("hydrant") == store.count("hydrant")
    assert index.bbox("hydrant", BOX).tolist() == brute_bbox(store, BOX)
    for lon, lat in probes:
        small = (lon - 0.01, lat - 0.01, lon + 0.01, lat + 0.01)
        assert index.bbox("hydrant", small).tolist() == brute_bbox(store, small)
    store.close()


def exact_nearest(store, layer, lon, lat):
    frame = store.features(layer)
    dist = distance_to_point(frame.geometry.to_numpy(), lon, lat)
    order = np.lexsort((frame.fid.to_numpy(), dist))
    return frame.fid.to_numpy()[order], dist[order]


def _fill(store, layer: str, rng: np.random.Generator) -> None:
    if layer == "hydrant":
        store.upsert("hydrant", hydrants(400, seed=2), author="t", source="t")
    else:
        starts = rng.random((150, 2)) * 0.1 + [121.4, 31.2]
        lines = [shapely.LineString([s, s + rng.normal(0, 0.003, 2)]) for s in starts]
        store.upsert("pipeline", gpd.GeoDataFrame({"kind": ["gas"] * 150}, geometry=lines, crs="EPSG:4326"),
                     author="t", source="t")


@pytest.mark.parametrize("layer", ["hydrant", "pipeline"])
def test_a_snapshots_nearest_matches_brute_force_in_metres(store, layer):
    rng = np.random.default_rng(3)
    _fill(store, layer, rng)
    with store.read() as snap:
        for lon, lat in rng.random((10, 2)) * 0.1 + [121.4, 31.2]:
            fids, dist = exact_nearest(store, layer, lon, lat)
            near = snap.nearest(layer, lon, lat, 5)
            assert near.fids.tolist() == fids[:5].tolist()
            assert np.allclose(near.distances, dist[:5])


@geopackage_only
@pytest.mark.parametrize("layer", ["hydrant", "pipeline"])
def test_nearest_and_radius_match_brute_force_in_metres(store, layer):
    rng = np.random.default_rng(3)
    _fill(store, layer, rng)
    index = LiveIndex(store)
    for lon, lat in rng.random((10, 2)) * 0.1 + [121.4, 31.2]:
        fids, dist = exact_nearest(store, layer, lon, lat)
        near = index.nearest(layer, lon, lat, 5)
        assert near.fids.tolist() == fids[:5].tolist()
        assert np.allclose(near.distances, dist[:5])
        within = index.radius(layer, lon, lat, 800.0)
        assert within.fids.tolist() == fids[dist <= 800.0].tolist()


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


@geopackage_only
def test_index_catches_up_with_another_process_writing(store, catalogue):
    store.upsert("hydrant", hydrants(10), author="t", source="t")
    index = LiveIndex(store)
    assert index.size("hydrant") == 10
    other = open_store(store.location, catalogue)  # another writer, as `twin import` beside the service
    other.upsert("hydrant", hydrants(7, seed=5), author="t", source="t")
    other.delete("hydrant", other.features("hydrant").key[:3].tolist(), author="t")
    other.close()
    assert index.size("hydrant") == 14
    assert index.bbox("hydrant", BOX).tolist() == brute_bbox(store, BOX)


def test_a_snapshots_nearest_on_an_empty_layer_is_empty(store):
    with store.read() as snap:
        near = snap.nearest("hydrant", 121.4, 31.2, 3)
    assert near.fids.size == near.distances.size == 0


@geopackage_only
def test_empty_layers_and_bad_arguments(store):
    index = LiveIndex(store)
    assert index.nearest("hydrant", 121.4, 31.2, 3).fids.size == 0
    assert index.radius("hydrant", 121.4, 31.2, 100).fids.size == 0
    with pytest.raises(InvalidQueryError):
        index.nearest("hydrant", 121.4, 31.2, 0)
    with pytest.raises(InvalidQueryError):
        index.radius("hydrant", 121.4, 31.2, -5)
