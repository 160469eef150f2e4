"""Heritage buildings: the real OSM objects, and (at full scale) synthetic ones near the real clusters.

OSM tags are turned into the layer's fields: ``heritage=2`` or the national list is ``national``;
Shanghai's 优秀历史建筑 list is ``excellent_historic`` (its batch read from the reference, e.g.
``1989年8号`` is the first batch of 1989, ``4A011`` the fourth, ``A-Ⅲ-030`` the third); ``heritage=4``
(provincial level, which Shanghai is) is ``municipal``; any other heritage tag is ``registered``.
Lines (bridges, a pedestrian street) become a point at their middle, or a polygon when closed.
Synthetic buildings are small footprints a few hundred metres from a real one; their names end in
（模拟）and their changeset note says they are synthetic.
"""

from __future__ import annotations

import re

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray
from shapely import affinity

from twin.demo import names, sources
from twin.demo.city import City
from twin.demo.rng import rng_for
from twin.demo.tiles import Focus

FIELDS = ("name", "protection_batch", "protection_level", "historic", "address", "osm_id", "wikidata")
_BATCH = [(re.compile(r"^1989年"), 1), (re.compile(r"^([1-5])[A-Z]\d"), None), (re.compile(r"-(Ⅲ|III)-"), 3)]


def _text(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame:
        return pd.Series([None] * len(frame), index=frame.index, dtype=object)
    return frame[column].astype(object).where(frame[column].notna(), None)


def protection_level(heritage: pd.Series, operator: pd.Series) -> NDArray[np.object_]:
    """The layer's protection level from OSM ``heritage`` and ``heritage:operator``."""
    op = operator.fillna("").astype(str)
    h = heritage.fillna("").astype(str)
    # numpy's stubs take neither pandas masks as conditions nor None as the default
    return np.select(  # type: ignore[call-overload, no-any-return]
        [op.str.contains("优秀历史建筑"), (h == "2") | op.str.contains("全国重点"), h == "4", h != ""],
        ["excellent_historic", "national", "municipal", "registered"], default=None).astype(object)


def protection_batch(ref: pd.Series, level: NDArray[np.object_]) -> list[int | None]:
    """The batch of Shanghai's 优秀历史建筑 list, where the reference number shows it."""
    out: list[int | None] = []
    for r, lv in zip(ref.tolist(), level.tolist(), strict=True):
        batch = None
        if lv == "excellent_historic" and isinstance(r, str):
            for pattern, value in _BATCH:
                m = pattern.search(r)
                if m:
                    batch = value if value is not None else int(m.group(1))
                    break
        out.append(batch)
    return out


def _address(frame: pd.DataFrame) -> NDArray[np.object_]:
    parts = [_text(frame, c).fillna("") for c in ("addr:district", "addr:street", "addr:housenumber")]
    number = parts[2].where(parts[2] == "", parts[2] + "号")
    text = (parts[0] + parts[1] + number).str.strip()
    return text.where(text != "", None).to_numpy(dtype=object)


def _points_and_polygons(geoms: NDArray[np.object_]) -> NDArray[np.object_]:
    """Lines become polygons when closed and their middle point otherwise; polygons are made valid."""
    out = np.asarray(geoms, dtype=object).copy()
    lines = shapely.get_type_id(out) == 1
    for i in np.flatnonzero(lines):
        line = out[i]
        closed = line.is_closed and len(line.coords) >= 4
        out[i] = shapely.Polygon(line.coords) if closed else shapely.line_interpolate_point(line, 0.5, normalized=True)
    polys = np.isin(shapely.get_type_id(out), (3, 6))
    out[polys] = sources.polygonal(out[polys])
    return out


def real_heritage() -> gpd.GeoDataFrame:
    """The 1,408 OSM heritage objects as layer rows."""
    raw = sources.load_heritage()
    level = protection_level(_text(raw, "heritage"), _text(raw, "heritage:operator"))
    historic = _text(raw, "historic").fillna(_text(raw, "building").map(lambda b: None if b is None else "building"))
    frame = pd.DataFrame({
        "name": _text(raw, "name").fillna(_text(raw, "name:en")).to_numpy(dtype=object),
        "protection_batch": pd.array(protection_batch(_text(raw, "heritage:ref"), level), dtype="Int64"),
        "protection_level": level, "historic": historic.to_numpy(dtype=object), "address": _address(raw),
        "osm_id": _text(raw, "id").to_numpy(dtype=object), "wikidata": _text(raw, "wikidata").to_numpy(dtype=object),
    })
    return gpd.GeoDataFrame(frame, geometry=_points_and_polygons(raw.geometry.to_numpy()), crs="EPSG:4326")


def synthetic_heritage(city: City, real: gpd.GeoDataFrame, count: int, seed: int,
                       focus: Focus | None = None) -> gpd.GeoDataFrame:
    """``count`` plausible protected buildings a few hundred metres from real ones, none overlapping."""
    rng = rng_for(seed, "heritage")
    anchor_x, anchor_y = city.frame.to_xy(*shapely.get_coordinates(shapely.point_on_surface(
        real.geometry.to_numpy())).T)
    real_tree = shapely.STRtree(city.frame.geoms_to_xy(real.geometry.to_numpy()))
    made: list[shapely.Geometry] = []
    for _ in range(count * 6):
        if len(made) >= count:
            break
        a = int(rng.integers(0, len(anchor_x)))
        r, t = rng.uniform(40, 450), rng.uniform(0, 2 * np.pi)
        x, y = anchor_x[a] + r * np.cos(t), anchor_y[a] + r * np.sin(t)
        w, h, turn = rng.uniform(12, 35), rng.uniform(10, 28), rng.uniform(0, np.pi / 2)
        foot = affinity.rotate(shapely.box(x - w / 2, y - h / 2, x + w / 2, y + h / 2), turn, use_radians=True)
        clear = shapely.buffer(foot, 5.0)
        if (not city.settled_at(np.array([x]), np.array([y]))[0] or real_tree.query(clear, predicate="intersects").size
                or (made and shapely.intersects(np.array(made, dtype=object), clear).any())):
            continue
        made.append(foot)
    return _synthetic_rows(city, np.array(made, dtype=object), rng, focus)


def _synthetic_rows(city: City, geoms: NDArray[np.object_], rng: np.random.Generator,
                    focus: Focus | None) -> gpd.GeoDataFrame:
    n = len(geoms)
    centre = shapely.get_coordinates(shapely.centroid(geoms)) if n else np.zeros((0, 2))
    district = city.district_near(centre[:, 0], centre[:, 1])
    dname = np.append(city.districts["name"].to_numpy().astype(str), "")[district]
    road = names.street_names(rng.integers(0, 2**40, n))
    number = np.array([str(v) for v in rng.integers(1, 400, n).tolist()], dtype=str)
    kind = names.choose(rng, names.HERITAGE_KINDS, n)
    level = np.array(["excellent_historic", "registered", "district"])[rng.choice(3, n, p=[0.6, 0.3, 0.1])]
    batch = pd.array(np.where(level == "excellent_historic", rng.integers(1, 6, n), -1), dtype="Int64")
    batch[np.asarray(level != "excellent_historic")] = pd.NA
    frame = pd.DataFrame({
        "name": np.char.add(np.char.add(np.char.add(np.char.add(road, number), "号"), kind), "（模拟）"),
        "protection_batch": batch, "protection_level": level, "historic": "building",
        "address": np.char.add(np.char.add(np.char.add(dname, road), number), "号"), "osm_id": None, "wikidata": None,
    })
    keep = np.ones(n, dtype=bool) if focus is None else focus.contains(centre[:, 0], centre[:, 1])
    out = gpd.GeoDataFrame(frame, geometry=city.frame.geoms_to_lonlat(geoms) if n else [], crs="EPSG:4326")
    return out[keep].reset_index(drop=True)
