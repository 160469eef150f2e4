"""bbox is exact for points too: the R-tree's 32-bit boxes must never let a point outside through."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely
from fastapi.testclient import TestClient

from twin.api.app import create_app
from twin.settings import DEFAULT_LAYERS_DIR, TwinSettings
from twin.store import open_store


def test_points_a_hair_outside_the_bbox_are_not_returned(tmp_path, catalogue):
    edge = 121.4737
    # float32 cannot tell these apart from the edge (its step here is ~7.6e-6 degrees, ~0.7 m)
    xs = np.array([edge - 2e-6, edge - 1e-7, edge, edge + 1e-7, edge + 2e-6])
    frame = gpd.GeoDataFrame({"kind": ["above_ground"] * 5}, geometry=shapely.points(xs, np.full(5, 31.23)),
                             crs="EPSG:4326")
    store = open_store(tmp_path / "s.gpkg", catalogue)
    store.upsert("hydrant", frame, author="t", source="t")
    store.upsert("hydrant", frame.set_geometry(shapely.points(xs + 0.01, np.full(5, 31.3))),
                 author="t", source="t")  # a wider extent, so the bbox is not the whole layer
    store.close()
    with TestClient(create_app(TwinSettings(store=tmp_path / "s.gpkg", layers=DEFAULT_LAYERS_DIR))) as client:
        got = client.get("/collections/hydrant/items", params={"bbox": f"{edge},31.2,121.5,31.25"}).json()
        xs_got = sorted(f["geometry"]["coordinates"][0] for f in got["features"])
        assert xs_got == [edge, edge + 1e-7, edge + 2e-6]
        left = client.get("/collections/hydrant/items", params={"bbox": f"121.4,31.2,{edge},31.25"}).json()
        assert sorted(f["geometry"]["coordinates"][0] for f in left["features"]) == [edge - 2e-6, edge - 1e-7, edge]

