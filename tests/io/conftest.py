"""Helpers for import/export tests: files written with GDAL in tmp_path, and a store-state snapshot."""

from __future__ import annotations

import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import shapely

from twin.io import ImportOptions, ImportReport, import_file
from twin.store import Store

#: People's Square and other WGS84 points in central Shanghai, spread more than a geohash cell apart.
PLACES = [(121.4737, 31.2304), (121.4903, 31.2402), (121.5004, 31.2396), (121.4446, 31.2212),
          (121.4199, 31.2156), (121.5245, 31.2287), (121.4608, 31.2521), (121.4350, 31.1975)]
ROADS = ["人民大道", "南京东路", "中山东一路", "淮海中路", "延安西路", "世纪大道", "西藏北路", "漕溪北路"]


def hydrant_frame(n: int = 8, crs: str | int = 4326, seed: int = 0) -> gpd.GeoDataFrame:
    """``n`` hydrants in central Shanghai with Chinese road names (lon/lat), optionally reprojected."""
    rng = np.random.default_rng(seed)
    if n <= len(PLACES):
        xy = np.array(PLACES[:n])
    else:
        xy = np.column_stack([121.40 + rng.random(n) * 0.15, 31.18 + rng.random(n) * 0.1])
    frame = gpd.GeoDataFrame(
        {"kind": ["above_ground" if i % 2 else "underground" for i in range(n)],
         "outlet_diameter": [(65, 100, 150)[i % 3] for i in range(n)],
         "road": [ROADS[i % len(ROADS)] + f"{i}号" for i in range(n)]},
        geometry=shapely.points(xy), crs=4326)
    return frame if crs in (4326, "EPSG:4326") else frame.to_crs(crs)


def write(frame: gpd.GeoDataFrame, path: Path, **kwargs: object) -> Path:
    """Write ``frame`` with GDAL (pyogrio), silencing its field-name laundering warnings."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        pyogrio.write_dataframe(frame, path, **kwargs)
    return path


def state(store: Store) -> tuple:
    """Everything an import could change: changesets, counts, and the rows of every layer."""
    layers = tuple((name, store.count(name), tuple(store.features(name)["key"])) for name in store.catalogue)
    return len(store.changesets(limit=10_000)), layers


def run(store: Store, path: Path, layer: str = "hydrant", **options: object) -> ImportReport:
    return import_file(store, path, layer, ImportOptions(**options))  # type: ignore[arg-type]


@pytest.fixture
def empty_state(store: Store) -> tuple:
    return state(store)
