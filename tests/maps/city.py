"""A small demo-like twin around People's Square, built in seconds from twin's real data (districts, roads).

Hydrants and street lights stand along the real main roads, pipelines follow them, compounds and sites sit
between them; a known share of hydrants is faulty, compounds have names and addresses to search for.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

from twin.catalogue import Catalogue
from twin.demo.sources import load_districts, load_roads
from twin.store import Store, open_store

BOX = (121.455, 31.220, 121.495, 31.245)
DISTRICTS = ("黄浦区", "静安区")
FAULTY_EVERY = 7  # every 7th hydrant is faulty
#: Committee areas (居委) tiling the box: Voronoi cells of these seeds, so their outlines are not boxes.
COMMITTEES = {"人民广场居委会": (121.472, 31.232), "和阳村委会": (121.462, 31.238), "福州路居委会": (121.486, 31.229),
              "南京东路居委会": (121.488, 31.240), "淮海中路居委会": (121.463, 31.225)}


def _along_roads(roads: np.ndarray, spacing_deg: float) -> np.ndarray:
    merged = shapely.line_merge(shapely.multilinestrings(shapely.get_parts(roads)))
    lines = shapely.get_parts(merged)
    pts = []
    for line in lines:
        n = int(shapely.length(line) // spacing_deg)
        if n:
            pts.append(shapely.line_interpolate_point(line, np.arange(1, n + 1) * spacing_deg))
    return np.concatenate(pts) if pts else np.empty(0, dtype=object)


def build_city(target: str | Path, catalogue: Catalogue) -> Store:
    """Create the store at ``target`` (a path or a URL): districts, hydrants, street lights, pipelines, compounds,
    sites, heritage."""
    rng = np.random.default_rng(11)
    store = open_store(target, catalogue)
    box = shapely.box(*BOX)
    districts = load_districts()
    store.upsert("district", districts[districts["name"].isin(DISTRICTS)].reset_index(drop=True), author="test",
                 source="twin/data districts")
    roads = load_roads()
    roads = shapely.clip_by_rect(roads.geometry.to_numpy()[roads.sindex.query(box)], *BOX)
    roads = roads[~shapely.is_empty(roads)]
    hydrant_pts = _along_roads(roads, 0.0025)
    n = len(hydrant_pts)
    store.upsert("hydrant", gpd.GeoDataFrame({
        "status": ["faulty" if i % FAULTY_EVERY == 0 else "in_service" for i in range(n)],
        "kind": rng.choice(["above_ground", "underground"], n).tolist(),
        "outlet_diameter": rng.choice([65, 100, 150], n).tolist(),
        "pressure": np.round(0.2 + rng.random(n) * 0.4, 2), "road": [f"测试路{i % 9}号" for i in range(n)],
        "owner": ["上海市自来水公司"] * n}, geometry=hydrant_pts, crs="EPSG:4326"), author="test", source="test")
    light_pts = _along_roads(roads, 0.0009)
    m = len(light_pts)
    store.upsert("street_light", gpd.GeoDataFrame({
        "status": ["faulty" if i % 11 == 0 else "in_service" for i in range(m)],
        "lamp_type": rng.choice(["led", "sodium"], m).tolist(), "power": rng.choice([100, 150], m).tolist()},
        geometry=light_pts, crs="EPSG:4326"), author="test", source="test")
    pipes = shapely.get_parts(roads)[:60]
    store.upsert("pipeline", gpd.GeoDataFrame({
        "kind": rng.choice(["water_supply", "gas", "power"], len(pipes)).tolist(),
        "diameter": rng.choice([300, 600], len(pipes)).tolist()}, geometry=pipes, crs="EPSG:4326"),
        author="test", source="test")
    centres = shapely.points(BOX[0] + 0.003 + rng.random(12) * 0.034, BOX[1] + 0.003 + rng.random(12) * 0.019)
    store.upsert("residential_compound", gpd.GeoDataFrame({
        "name": [f"梧桐花园{i}期" for i in range(12)], "address": [f"黄浦区测试路{100 + i}号" for i in range(12)],
        "households": rng.integers(200, 900, 12).tolist(), "property_manager": [f"王小明{i}" for i in range(12)],
        "contact_phone": [f"1391234{i:04d}" for i in range(12)]},
        geometry=shapely.buffer(centres, 0.0012, quad_segs=2), crs="EPSG:4326"), author="test", source="test")
    store.upsert("construction_site", gpd.GeoDataFrame({
        "status": ["active", "suspended"], "permit_no": ["沪建2024-001", "沪建2024-002"],
        "project_name": ["人民广场地下空间改造", "南京东路管线迁改"]},
        geometry=[shapely.box(121.470, 31.228, 121.474, 31.231), shapely.box(121.480, 31.236, 121.483, 31.238)],
        crs="EPSG:4326"), author="test", source="test")
    _admin(store)
    store.upsert("heritage_building", gpd.GeoDataFrame({
        "name": ["上海美术馆旧址", "国际饭店"], "address": ["南京西路325号", "南京西路170号"]},
        geometry=[shapely.Point(121.4700, 31.2335), shapely.box(121.4695, 31.2345, 121.4705, 31.2352)],
        crs="EPSG:4326"), author="test", source="test")
    return store


def _admin(store: Store) -> None:
    """One sub-district covering the box, cut into the :data:`COMMITTEES` (with their secretaries' phones)."""
    districts = store.features("district")
    huangpu = districts[districts["name"] == DISTRICTS[0]].iloc[0]["key"]
    store.upsert("subdistrict", gpd.GeoDataFrame({"name": ["南京东路街道"], "district": [huangpu]},
                                                 geometry=[shapely.box(*BOX)], crs="EPSG:4326"),
                 author="test", source="test")
    sub = store.features("subdistrict").iloc[0]["key"]
    seeds = shapely.multipoints(list(COMMITTEES.values()))
    cells = shapely.get_parts(shapely.voronoi_polygons(seeds, extend_to=shapely.box(*BOX)))
    cells = shapely.clip_by_rect(cells, *BOX)
    names = [next(n for n, xy in COMMITTEES.items() if cell.contains(shapely.Point(xy))) for cell in cells]
    n = len(names)
    store.upsert("committee", gpd.GeoDataFrame({
        "name": names, "subdistrict": [sub] * n, "secretary": [f"李建{'国华明军平'[i]}" for i in range(n)],
        "office_phone": [f"1380013{i:04d}" for i in range(n)]}, geometry=cells, crs="EPSG:4326"),
        author="test", source="test")
