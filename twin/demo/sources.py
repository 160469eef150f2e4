"""The real Shanghai data committed in ``twin/data`` (see ``twin/data/ATTRIBUTION.md``), loaded clean.

Each loader returns a fresh GeoDataFrame in lon/lat WGS84. The district outlines are stored as
published, in GCJ-02 (the Amap/DataV offset), and converted here with :mod:`twin.crs`.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import orjson
import pandas as pd
import pyogrio
import shapely

from twin.crs import LONLAT, parse_crs, transform_geoms

DATA = Path(__file__).resolve().parent.parent / "data"
DISTRICTS = DATA / "shanghai_districts_gcj02.geojson"
ROADS = DATA / "shanghai_roads_osm_wgs84.zip"
ROADS_LAYER = "test_shanghai_allroads/test_shanghai_allroads.shp"
HERITAGE = DATA / "shanghai_heritage_osm_wgs84.geojson"
METRO = DATA / "shanghai_metro_stations_osm_wgs84.json"

#: Official English names and administrative division codes (GB/T 2260) of Shanghai's 16 districts.
DISTRICT_FACTS: dict[str, tuple[str, str]] = {
    "黄浦区": ("Huangpu", "310101"),
    "徐汇区": ("Xuhui", "310104"),
    "长宁区": ("Changning", "310105"),
    "静安区": ("Jing'an", "310106"),
    "普陀区": ("Putuo", "310107"),
    "虹口区": ("Hongkou", "310109"),
    "杨浦区": ("Yangpu", "310110"),
    "闵行区": ("Minhang", "310112"),
    "宝山区": ("Baoshan", "310113"),
    "嘉定区": ("Jiading", "310114"),
    "浦东新区": ("Pudong New Area", "310115"),
    "金山区": ("Jinshan", "310116"),
    "松江区": ("Songjiang", "310117"),
    "青浦区": ("Qingpu", "310118"),
    "奉贤区": ("Fengxian", "310120"),
    "崇明区": ("Chongming", "310151"),
}


def polygonal(geoms: np.ndarray) -> np.ndarray:
    """Valid geometries keeping only their polygonal parts (``make_valid`` may add stray lines)."""
    out = np.asarray(shapely.make_valid(np.asarray(geoms, dtype=object)), dtype=object)
    mixed = shapely.get_type_id(out) == 7
    for i in np.flatnonzero(mixed):
        parts = shapely.get_parts(out[i])
        out[i] = shapely.union_all(parts[np.isin(shapely.get_type_id(parts), (3, 6))])
    return out


def load_districts() -> gpd.GeoDataFrame:
    """The 16 districts with ``name``, ``name_en`` and ``code``, converted from GCJ-02 to WGS84."""
    raw = pyogrio.read_dataframe(DISTRICTS)
    geoms = polygonal(transform_geoms(raw.geometry.to_numpy(), parse_crs("gcj02"), LONLAT))
    facts = [DISTRICT_FACTS.get(n, (None, None)) for n in raw["name"]]
    return gpd.GeoDataFrame(
        {"name": raw["name"].to_numpy(), "name_en": [f[0] for f in facts], "code": [f[1] for f in facts]},
        geometry=geoms, crs="EPSG:4326",
    )


def load_roads() -> gpd.GeoDataFrame:
    """The OSM main road network: ``link_id``, ``highway`` (motorway … secondary_link) and the line."""
    raw = pyogrio.read_dataframe(f"/vsizip/{ROADS}/{ROADS_LAYER}", columns=["link_id", "highway"])
    raw = raw[~shapely.is_empty(raw.geometry.to_numpy()) & (shapely.length(raw.geometry.to_numpy()) > 0)]
    return raw.set_crs("EPSG:4326", allow_override=True).reset_index(drop=True)


def load_metro() -> gpd.GeoDataFrame:
    """Metro stations (``name``, ``lines``), one row per station even where several lines meet."""
    raw = orjson.loads(METRO.read_bytes())
    rows = pd.DataFrame([{"name": v["name"], "line": v["line"], "lon": v["lng"], "lat": v["lat"]}
                         for _, v in sorted(raw.items())])
    grouped = rows.groupby("name", sort=True).agg(
        lines=("line", lambda s: ",".join(sorted(set(s)))), lon=("lon", "mean"), lat=("lat", "mean")
    ).reset_index()
    return gpd.GeoDataFrame(grouped[["name", "lines"]], geometry=shapely.points(grouped["lon"], grouped["lat"]),
                            crs="EPSG:4326")


def load_heritage() -> gpd.GeoDataFrame:
    """OSM historic and heritage objects with their OSM tags (``name``, ``historic``, ``heritage`` …)."""
    return pyogrio.read_dataframe(HERITAGE)
