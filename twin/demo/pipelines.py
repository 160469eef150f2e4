"""Underground pipelines along the real roads: several kinds per road, each in its own lane of the road.

Each OSM carriageway line is cut into runs of at most 600 m; every run carries a draw of the six
kinds, with the expected count per class of road in :mod:`twin.demo.roads` scaled so the city total
meets the scale's length. Each kind sits at its customary distance from the centre line (water and
gas on one side, power and telecom on the other, drainage near the middle), with diameters,
materials, depths and pressure classes that go with the kind.
"""

from __future__ import annotations

from typing import cast

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray

from twin.demo import names, roads
from twin.demo.city import City
from twin.demo.networks import STATUS_P, STATUSES
from twin.demo.rng import rng_for
from twin.demo.tiles import Focus

MAX_RUN = 600.0
KINDS = ("water_supply", "drainage", "gas", "power", "telecom", "heat")
#: Relative frequency of each kind under a road (heat is rare in Shanghai), and its offset (m).
WEIGHT = np.array([1.0, 1.0, 0.7, 0.8, 0.8, 0.05])
OFFSET = np.array([5.0, 1.5, 3.5, -4.0, -6.0, 7.0])
DIAMETERS = {"water_supply": [100, 150, 200, 300, 500, 800, 1200], "drainage": [300, 400, 600, 800, 1000, 1500, 2000],
             "gas": [100, 150, 200, 300, 500], "power": [150, 175, 200], "telecom": [100, 110], "heat": [200, 300, 400]}
MATERIALS = {"water_supply": ["ductile_iron", "steel", "pe"], "drainage": ["concrete", "pvc", "pe"],
             "gas": ["steel", "pe"], "power": ["copper", "pvc"], "telecom": ["fibre", "pvc"], "heat": ["steel"]}
DEPTH = {"water_supply": (1.0, 1.8), "drainage": (1.5, 5.0), "gas": (0.9, 1.5), "power": (0.7, 1.5),
         "telecom": (0.7, 1.2), "heat": (1.0, 2.0)}
PRESSURE = {"water_supply": ["low", "medium"], "drainage": ["none"], "gas": ["low", "medium", "sub_high", "high"],
            "power": ["none"], "telecom": ["none"], "heat": ["medium"]}
OWNER = {"water_supply": "供水管理所", "drainage": "排水管理所", "gas": "燃气管理所", "power": "供电所",
         "telecom": "通信管线管理所", "heat": "热力管理所"}


def runs(city: City) -> tuple[NDArray[np.object_], NDArray[np.intp]]:
    """The road lines (metres) cut into equal runs of at most 600 m, and the road each run comes from."""
    lines = city.road_xy
    length = shapely.length(lines)
    pieces = np.maximum(np.ceil(length / MAX_RUN), 1).astype(np.intp)
    source = np.repeat(np.arange(len(lines)), pieces)
    part = np.arange(len(source)) - np.repeat(np.cumsum(pieces) - pieces, pieces)
    step = (length / pieces)[source]
    a, b = part * step, (part + 1) * step
    coords, idx = shapely.get_coordinates(lines, return_index=True)
    seg = np.hypot(*np.diff(coords, axis=0).T)
    seg[idx[1:] != idx[:-1]] = 0.0
    along = np.concatenate([[0.0], np.cumsum(seg)])
    along -= along[np.searchsorted(idx, idx)]  # distance of each vertex from its line's start
    first = np.cumsum(pieces) - pieces  # first run of each line
    run_of = first[idx] + np.minimum((along / (length / pieces)[idx]).astype(np.intp), pieces[idx] - 1)
    inner = (along > a[run_of]) & (along < b[run_of])
    ends = shapely.get_coordinates(shapely.line_interpolate_point(lines[np.concatenate([source, source])],
                                                                  np.concatenate([a, b])))
    run = np.concatenate([np.arange(len(source)), np.arange(len(source)), run_of[inner]])
    where = np.concatenate([a, b, along[inner]])
    xy = np.concatenate([ends, coords[inner]])
    order = np.lexsort((where, run))
    return cast(NDArray[np.object_], shapely.linestrings(xy[order], indices=run[order])), source


def _intensity(city: City, cls: NDArray[np.intp], length: NDArray[np.float64], target_m: float) -> float:
    expected = roads.table("pipelines").astype(float)[cls]
    return target_m / float((expected * length).sum())


def pipelines(city: City, seed: int, target_km: float, focus: Focus | None = None) -> gpd.GeoDataFrame:
    """Every pipeline of the city (or of the focus disc), in lon/lat."""
    lines, source = runs(city)
    mid = shapely.line_interpolate_point(lines, 0.5, normalized=True)
    on_land = city.district_near(shapely.get_x(mid), shapely.get_y(mid)) >= 0
    lines, source = lines[on_land], source[on_land]
    cls = roads.class_index(city.roads["highway"].to_numpy())[source]
    length = shapely.length(lines)
    rng = rng_for(seed, "pipeline")
    p = np.clip(np.outer(roads.table("pipelines").astype(float)[cls], WEIGHT / WEIGHT.sum()), 0, 1)
    p = np.clip(p * _intensity(city, cls, length, target_km * 1000.0), 0.0, 1.0)
    run, kind = np.nonzero(rng.random(p.shape) < p)
    n = len(run)
    attrs = _attributes(rng, kind, n)
    district = city.district_near(shapely.get_x(mid[on_land][run]), shapely.get_y(mid[on_land][run]))
    attrs["owner"] = np.char.add(city.districts["name"].to_numpy().astype(str)[district], np.array(
        [OWNER[KINDS[k]] for k in kind]))
    keep = np.ones(n, dtype=bool)
    if focus is not None:
        keep = shapely.intersects(lines[run], focus.disc)
    geoms = shapely.offset_curve(lines[run][keep], OFFSET[kind][keep], join_style="mitre", mitre_limit=2.0)
    geoms = city.frame.geoms_to_lonlat(geoms)
    frame = pd.DataFrame({k: np.asarray(v)[keep] for k, v in attrs.items()})
    out = gpd.GeoDataFrame(frame, geometry=geoms, crs="EPSG:4326")
    return out[~shapely.is_empty(geoms) & shapely.is_valid(geoms)].reset_index(drop=True)


def _attributes(rng: np.random.Generator, kind: NDArray[np.intp], n: int) -> dict[str, NDArray[np.generic]]:
    """Per-kind diameter, material, depth and pressure class; dates and statuses."""
    out: dict[str, NDArray[np.generic]] = {"kind": np.array(KINDS)[kind]}
    diameter, material = np.zeros(n, dtype=np.int64), np.empty(n, dtype=object)
    depth, pressure = np.zeros(n), np.empty(n, dtype=object)
    for k, name in enumerate(KINDS):
        sel = kind == k
        m = int(sel.sum())
        diameter[sel] = np.array(DIAMETERS[name])[rng.integers(0, len(DIAMETERS[name]), m)]
        material[sel] = np.array(MATERIALS[name])[rng.integers(0, len(MATERIALS[name]), m)]
        lo, hi = DEPTH[name]
        depth[sel] = np.round(rng.uniform(lo, hi, m), 1)
        pressure[sel] = np.array(PRESSURE[name])[rng.integers(0, len(PRESSURE[name]), m)]
    out.update(diameter=diameter, material=material, depth=depth, pressure_class=pressure)
    out["laid_on"] = names.dates(rng, n, "1960-01-01", "2024-12-31")
    out["status"] = STATUSES[rng.choice(4, n, p=STATUS_P)]
    return out
