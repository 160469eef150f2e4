"""A small real twin: a few hundred components of six layers around People's Square, in one store."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

from twin.catalogue import Catalogue
from twin.store import Store, open_store

BOX = (121.40, 31.20, 121.50, 31.30)
COUNTS = {"hydrant": 200, "street_light": 150, "pipeline": 40, "residential_compound": 30,
          "heritage_building": 20, "district": 2}


def _points(rng: np.random.Generator, n: int) -> np.ndarray:
    return shapely.points(BOX[0] + rng.random(n) * (BOX[2] - BOX[0]), BOX[1] + rng.random(n) * (BOX[3] - BOX[1]))


def hydrants(rng: np.random.Generator, n: int) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({
        "kind": rng.choice(["above_ground", "underground"], n).tolist(),
        "outlet_diameter": rng.choice([65, 100, 150], n).tolist(),
        "pressure": np.round(rng.random(n) * 0.6, 3),
        "road": [f"测试路{i % 7}号" if i % 10 else None for i in range(n)],
        "owner": ["黄浦区 'water'; co" if i % 3 == 0 else "自来水公司" for i in range(n)],
        "inspected_on": [f"2024-0{1 + i % 9}-15" for i in range(n)],
        "updated_at": [f"202{i % 5}-06-01T00:00:00Z" for i in range(n)],
    }, geometry=_points(rng, n), crs="EPSG:4326")


def street_lights(rng: np.random.Generator, n: int) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({
        "lamp_type": rng.choice(["led", "sodium", "metal_halide"], n).tolist(),
        "power": rng.choice([60, 100, 150, 250], n).tolist(),
        "pole_height": np.round(6 + rng.random(n) * 6, 1),
        "road": [f"南京东路{i}号" for i in range(n)],
    }, geometry=_points(rng, n), crs="EPSG:4326")


def pipelines(rng: np.random.Generator, n: int) -> gpd.GeoDataFrame:
    start = shapely.get_coordinates(_points(rng, n))
    lines = [shapely.linestrings([[x, y], [x + 0.004, y + 0.001 * (i % 3)], [x + 0.006, y + 0.003]])
             for i, (x, y) in enumerate(start)]
    return gpd.GeoDataFrame({
        "kind": rng.choice(["water_supply", "drainage", "gas", "power"], n).tolist(),
        "diameter": rng.choice([100, 300, 600], n).tolist(), "depth": np.round(1 + rng.random(n) * 3, 2),
    }, geometry=lines, crs="EPSG:4326")


def compounds(rng: np.random.Generator, n: int) -> gpd.GeoDataFrame:
    centres = shapely.get_coordinates(_points(rng, n))
    polys = [shapely.box(x, y, x + 0.003, y + 0.002) for x, y in centres]
    return gpd.GeoDataFrame({
        "name": [f"阳光小区{i}期" for i in range(n)], "households": rng.integers(100, 2000, n).tolist(),
        "built_year": rng.integers(1980, 2020, n).tolist(),
        "property_manager": [f"张三{i}" for i in range(n)], "contact_phone": [f"1381234{i:04d}" for i in range(n)],
    }, geometry=polys, crs="EPSG:4326")


def heritage(rng: np.random.Generator, n: int) -> gpd.GeoDataFrame:
    pts = _points(rng, n)
    geoms = [p if i % 2 else p.buffer(0.0005, 4) for i, p in enumerate(pts)]
    return gpd.GeoDataFrame({"name": [f"老建筑{i}" for i in range(n)],
                             "protection_batch": [1 + i % 5 for i in range(n)]}, geometry=geoms, crs="EPSG:4326")


def districts() -> gpd.GeoDataFrame:
    west = shapely.box(121.38, 31.18, 121.45, 31.32)
    east = shapely.box(121.45, 31.18, 121.52, 31.32)
    return gpd.GeoDataFrame({"name": ["西区", "东区"], "name_en": ["West", "East"], "code": ["310101", "310104"]},
                            geometry=[west, east], crs="EPSG:4326")


def build_twin(target: str | Path, catalogue: Catalogue, seed: int = 7) -> Store:
    """Create the store at ``target`` (a path or a PostGIS URL) with every layer of :data:`COUNTS` filled through
    the real store API."""
    rng = np.random.default_rng(seed)
    store = open_store(target, catalogue)
    frames = {"hydrant": hydrants(rng, COUNTS["hydrant"]), "street_light": street_lights(rng, COUNTS["street_light"]),
              "pipeline": pipelines(rng, COUNTS["pipeline"]),
              "residential_compound": compounds(rng, COUNTS["residential_compound"]),
              "heritage_building": heritage(rng, COUNTS["heritage_building"]), "district": districts()}
    for layer, frame in frames.items():
        store.upsert(layer, frame, author="test", source="fixture")
    return store
