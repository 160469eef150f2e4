"""bbox is exact for points too: the R-tree's 32-bit boxes must never let a point outside through."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely
from fastapi.testclient import TestClient

from tests.engines import geopackage_only
from twin.api.app import create_app
from twin.settings import DEFAULT_LAYERS_DIR, TwinSettings
from twin.store import open_store


def test_points_a_hair_outside_the_bbox_are_not_returned(target, catalogue):
    edge = 121.4737
    # float32 cannot tell these apart from the edge (its step here is ~7.6e-6 degrees, ~0.7 m)
    xs = np.array([edge - 2e-6, edge - 1e-7, edge, edge + 1e-7, edge + 2e-6])
    frame = gpd.GeoDataFrame({"kind": ["above_ground"] * 5}, geometry=shapely.points(xs, np.full(5, 31.23)),
                             crs="EPSG:4326")
    store = open_store(target, catalogue)
    store.upsert("hydrant", frame, author="t", source="t")
    store.upsert("hydrant", frame.set_geometry(shapely.points(xs + 0.01, np.full(5, 31.3))),
                 author="t", source="t")  # a wider extent, so the bbox is not the whole layer
    store.close()
    with TestClient(create_app(TwinSettings(store=target, layers=DEFAULT_LAYERS_DIR))) as client:
        client.headers["Authorization"] = "Bearer " + client.app.state.gate.add_user("planner", "planner")
        got = client.get("/collections/hydrant/items", params={"bbox": f"{edge},31.2,121.5,31.25"}).json()
        xs_got = sorted(f["geometry"]["coordinates"][0] for f in got["features"])
        assert xs_got == [edge, edge + 1e-7, edge + 2e-6]
        left = client.get("/collections/hydrant/items", params={"bbox": f"121.4,31.2,{edge},31.25"}).json()
        assert sorted(f["geometry"]["coordinates"][0] for f in left["features"]) == [edge - 2e-6, edge - 1e-7, edge]


@geopackage_only  # the R-tree's float32 boxes and the exact test in Python are the GeoPackage engine's
def test_only_components_at_the_edge_of_the_bbox_take_the_exact_test(tmp_path, catalogue, monkeypatch):
    import twin.store.gpkg.sqlfuncs as sqlfuncs
    from twin.crs import parse_crs
    from twin.model.query import FeatureQuery
    from twin.query.model import parse_bbox

    calls = []
    real = sqlfuncs._pred
    monkeypatch.setattr(sqlfuncs, "_pred", lambda *a: calls.append(1) or real(*a))
    rng = np.random.default_rng(5)
    frame = gpd.GeoDataFrame({"kind": ["above_ground"] * 2000},
                             geometry=shapely.points(121.4 + rng.random(2000) * 0.1, 31.2 + rng.random(2000) * 0.1),
                             crs="EPSG:4326")
    store = open_store(str(tmp_path / "s.gpkg"), catalogue)
    store.upsert("hydrant", frame, author="t", source="t")
    box = parse_bbox("121.42,31.22,121.48,31.28", parse_crs("CRS84"))
    with store.read() as snap:
        rows = snap.select(FeatureQuery("hydrant", bbox=box, limit=10_000)).rows
    store.close()
    inside = frame.cx[121.42:121.48, 31.22:31.28]
    assert len(rows) == len(inside) > 500
    assert len(calls) < 20  # the R-tree box settles everything but a hair's breadth at the edges
