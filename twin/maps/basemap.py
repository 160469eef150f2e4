"""The offline basemap: Shanghai's main roads from twin's own data, and the optional online basemaps.

The road network is the OSM extract committed in ``twin/data`` (see its ATTRIBUTION.md; the demo twin
lays its pipelines, hydrants and street lights along the same roads). For the map it is merged into
long lines per road class, simplified to about 3 m and rounded to 1e-5° (about 1 m), which makes the
whole city 0.4 MB gzipped: one download, cached by the browser, no tile server needed.

Online basemaps are off unless configured (``TWIN_MAP_BASEMAPS=osm,tianditu,amap``). Amap (Gaode) tiles
are drawn in GCJ-02, so the web map shifts twin's overlays to GCJ-02 while Amap is shown.
"""

from __future__ import annotations

import gzip
from functools import cache

import geopandas as gpd
import numpy as np
import orjson
import pandas as pd
import shapely

from twin.demo.sources import load_roads
from twin.settings import MapSettings

#: Road classes drawn by the basemap: 0 expressways and trunk roads, 1 main roads, 2 the rest.
ROAD_CLASS = {"motorway": 0, "trunk": 0, "primary": 1}
ROAD_STYLES = ({"color": "#e8a33d", "weight": 3.0}, {"color": "#f2c86b", "weight": 2.2},
               {"color": "#ffffff", "weight": 1.6})
#: Every online basemap twin knows; none is used unless named in ``TWIN_MAP_BASEMAPS``.
ONLINE = {
    "osm": {"zh": "OpenStreetMap", "en": "OpenStreetMap", "crs": "wgs84", "max_zoom": 19,
            "url": "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
            "attribution": "© OpenStreetMap contributors"},
    "tianditu": {"zh": "天地图", "en": "Tianditu", "crs": "wgs84", "max_zoom": 18, "subdomains": "01234567",
                 "url": "https://t{s}.tianditu.gov.cn/vec_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
                        "&LAYER=vec&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={z}&TILEROW={y}"
                        "&TILECOL={x}&tk={key}",
                 "labels": "https://t{s}.tianditu.gov.cn/cva_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
                           "&LAYER=cva&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={z}&TILEROW={y}"
                           "&TILECOL={x}&tk={key}",
                 "attribution": "© 天地图 国家地理信息公共服务平台"},
    "amap": {"zh": "高德地图", "en": "Amap (Gaode)", "crs": "gcj02", "max_zoom": 18, "subdomains": "1234",
             "url": "https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8&x={x}&y={y}&z={z}",
             "attribution": "© 高德地图 AutoNavi"},
}




def online_basemaps(settings: MapSettings) -> list[dict[str, object]]:
    """The online basemaps the settings turn on, with their URL templates (Tianditu's key filled in)."""
    out: list[dict[str, object]] = []
    for name in (n.strip().lower() for n in settings.basemaps.split(",") if n.strip()):
        if name not in ONLINE:
            raise ValueError(f"TWIN_MAP_BASEMAPS: unknown basemap {name!r}; known: {', '.join(ONLINE)}")
        entry = {"id": name, **ONLINE[name]}
        if name == "tianditu":
            if not settings.tianditu_key:
                raise ValueError("TWIN_MAP_BASEMAPS names tianditu but TWIN_MAP_TIANDITU_KEY (your tk) is not set")
            entry["url"] = str(entry["url"]).replace("{key}", settings.tianditu_key)
            entry["labels"] = str(entry["labels"]).replace("{key}", settings.tianditu_key)
        out.append(entry)
    return out


@cache
def roads() -> gpd.GeoDataFrame:
    """The main roads merged per class (column ``c``), simplified for drawing, in lon/lat."""
    raw = load_roads()
    classes = raw["highway"].map(ROAD_CLASS).fillna(2).astype(int).to_numpy()
    frames = []
    for c in (2, 1, 0):  # minor roads first, so major ones are drawn on top
        parts = shapely.get_parts(raw.geometry.to_numpy()[classes == c])
        merged = shapely.get_parts(shapely.line_merge(shapely.multilinestrings(parts)))
        lines = shapely.set_precision(shapely.simplify(merged, 0.00003), 0.00001)
        lines = lines[~shapely.is_empty(lines)]
        frames.append(gpd.GeoDataFrame({"c": np.full(len(lines), c)}, geometry=lines, crs="EPSG:4326"))
    return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs="EPSG:4326")


def roads_in(bbox: tuple[float, float, float, float] | None) -> gpd.GeoDataFrame:
    """The basemap roads meeting ``bbox`` (all of them for ``None``)."""
    frame = roads()
    if bbox is None:
        return frame
    return frame.iloc[frame.sindex.query(shapely.box(*bbox))].sort_index()


@cache
def roads_geojson_gz() -> bytes:
    """All basemap roads as a gzipped GeoJSON FeatureCollection (property ``c``: the road class)."""
    frame = roads()
    geoms = shapely.to_geojson(frame.geometry.to_numpy())
    feats = [{"type": "Feature", "properties": {"c": int(c)}, "geometry": orjson.Fragment(g)}
             for c, g in zip(frame["c"].tolist(), geoms, strict=True)]
    return gzip.compress(orjson.dumps({"type": "FeatureCollection", "features": feats}), 6)
