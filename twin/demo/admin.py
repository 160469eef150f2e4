"""Administrative areas: the 16 real districts, and synthesised sub-districts (街道/镇) and committees (居委/村委).

No open boundary data exists below the district level, so each district is partitioned into
Voronoi cells of seeded points that follow urbanity (two Lloyd relaxations make the cells compact),
clipped to the district; each sub-district is partitioned the same way into committee areas. Counts
are split among parents by a mix of area and urban weight, which gives the centre many small
sub-districts and the outskirts a few large towns, as in reality (Shanghai has about 215 街道/镇 and
6,000 居委/村委).
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray

from twin.demo import names
from twin.demo.city import City
from twin.demo.rng import rng_for
from twin.demo.sources import polygonal
from twin.demo.tiles import Focus

AREA_SHARE = 0.3  # how much of a parent's share of children comes from its area rather than its urbanity
URBAN_TOWN = 0.3  # mean urbanity above which a sub-district is a 街道 rather than a 镇
URBAN_COMMITTEE = 0.15  # ... and a committee a 居委会 rather than a 村委会


def districts(city: City) -> gpd.GeoDataFrame:
    """The real districts, as loaded (lon/lat, converted from GCJ-02)."""
    return city.districts.copy()


def allocate(total: int, weights: NDArray[np.float64], minimum: int) -> NDArray[np.int64]:
    """Split ``total`` into integers proportional to ``weights``, each at least ``minimum`` (largest remainder).

    Every part first gets ``minimum``; what is left is shared by weight. The parts add up to ``total``, or to
    ``minimum`` times their number when that is more.
    """
    spare = max(total - minimum * len(weights), 0)
    share: NDArray[np.float64] = weights / weights.sum() * spare
    out = np.floor(share).astype(np.int64)
    out[np.argsort(-(share - out), kind="stable")[: spare - int(out.sum())]] += 1
    return out + minimum


def _weights(city: City, polygons: NDArray[np.object_]) -> NDArray[np.float64]:
    """Each parent's claim on children: its share of the city's area and of its urban weight (Σ u³)."""
    area = shapely.area(polygons)
    urban = np.array([(city.urbanity_at(x, y) ** 3 * city.settled_at(x, y)).sum() + 1e-6
                      for x, y in (_cells_in(city, poly) for poly in polygons)])
    weight: NDArray[np.float64] = AREA_SHARE * area / area.sum() + (1 - AREA_SHARE) * urban / urban.sum()
    return weight


def _cells_in(city: City, polygon: shapely.Geometry) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Centres of the raster cells inside ``polygon``."""
    minx, miny, maxx, maxy = shapely.bounds(polygon)
    r0, c0 = city.grid.index(np.array([minx]), np.array([miny]))
    r1, c1 = city.grid.index(np.array([maxx]), np.array([maxy]))
    cx, cy = city.grid.centres()
    x, y = cx[r0[0]:r1[0] + 1, c0[0]:c1[0] + 1].ravel(), cy[r0[0]:r1[0] + 1, c0[0]:c1[0] + 1].ravel()
    inside = shapely.contains_xy(polygon, x, y)
    return x[inside], y[inside]


def seeds(city: City, polygon: shapely.Geometry, n: int, rng: np.random.Generator) -> NDArray[np.float64]:
    """``n`` points in ``polygon``, denser where urbanity is higher (one per 250 m cell at most)."""
    x, y = _cells_in(city, polygon)
    if not len(x):
        p = shapely.point_on_surface(polygon)
        return np.array([[p.x, p.y]])
    w = 0.02 + city.urbanity_at(x, y) ** 1.5 * city.settled_at(x, y)
    pick = rng.choice(len(x), size=min(n, len(x)), replace=False, p=w / w.sum())
    jitter = rng.uniform(-0.4, 0.4, (len(pick), 2)) * city.grid.cell
    return np.column_stack([x[pick], y[pick]]) + jitter


def partition(polygon: shapely.Geometry, points: NDArray[np.float64], relax: int = 2) -> NDArray[np.object_]:
    """Voronoi cells of ``points`` clipped to ``polygon``, relaxed towards their centroids."""
    cells = np.array([polygon], dtype=object)
    for step in range(relax + 1):
        if len(points) < 2:
            return np.array([polygon], dtype=object)
        vor = shapely.voronoi_polygons(shapely.multipoints(points), extend_to=polygon, ordered=True)
        cells = polygonal(shapely.intersection(shapely.get_parts(vor), polygon))
        cells = cells[~shapely.is_empty(cells)]
        if step < relax:
            points = shapely.get_coordinates(shapely.point_on_surface(cells))
    return cells


def subdivide(city: City, parents: NDArray[np.object_], total: int, minimum: int, label: str, seed: int,
              only: NDArray[np.bool_] | None = None) -> tuple[NDArray[np.object_], NDArray[np.intp]]:
    """Partition every parent polygon (or those marked in ``only``) into children.

    Returns the children and their parent's index. Counts are shared out over all parents and each
    parent has its own random stream, so partitioning a subset gives the same cells for it.
    """
    counts = allocate(total, _weights(city, parents), minimum)
    geoms, parent = [np.array([], dtype=object)], [np.array([], dtype=np.intp)]
    for i in np.flatnonzero(np.ones(len(parents), dtype=bool) if only is None else only).tolist():
        cells = partition(parents[i], seeds(city, parents[i], int(counts[i]), rng_for(seed, label, i)))
        geoms.append(cells)
        parent.append(np.full(len(cells), i, dtype=np.intp))
    return np.concatenate(geoms), np.concatenate(parent)


def _mean_urbanity(city: City, geoms: NDArray[np.object_]) -> NDArray[np.float64]:
    pts = shapely.point_on_surface(geoms)
    return city.urbanity_at(shapely.get_x(pts), shapely.get_y(pts))


def subdistricts(city: City, total: int, seed: int) -> tuple[gpd.GeoDataFrame, NDArray[np.object_]]:
    """Sub-districts with ``name`` and ``parent`` (the district's name); also their polygons in metres."""
    geoms, parent = subdivide(city, city.district_xy, total, 3, "subdistrict", seed)
    rng = rng_for(seed, "subdistrict-names")
    stems = names.unique_stems(rng, len(geoms))
    kind = np.where(_mean_urbanity(city, geoms) > URBAN_TOWN, "街道", "镇")
    frame = pd.DataFrame({"name": np.char.add(np.array(stems), kind),
                          "parent": city.districts["name"].to_numpy()[parent]})
    return _lonlat(city, frame, geoms), geoms


def committees(city: City, sub: gpd.GeoDataFrame, sub_xy: NDArray[np.object_], total: int, seed: int,
               focus: Focus | None = None) -> gpd.GeoDataFrame:
    """Committee areas with ``name``, ``parent`` (the sub-district's name), secretary and office phone.

    With ``focus``, only the committees meeting the focus disc (the same ones as in a whole-city run).
    """
    only = None if focus is None else shapely.intersects(sub_xy, focus.disc)
    geoms, parent = subdivide(city, sub_xy, total, 3, "committee", seed, only)
    kind = np.where(_mean_urbanity(city, geoms) > URBAN_COMMITTEE, "居委会", "村委会")
    frames = []
    for i in np.unique(parent).tolist():
        sel = parent == i
        n = int(sel.sum())
        rng = rng_for(seed, "committee-names", i)
        frames.append(pd.DataFrame({
            "name": np.char.add(np.array(names.unique_stems(rng, n)), kind[sel]), "parent": sub["name"].iloc[i],
            "secretary": names.people(rng, n), "office_phone": names.landlines(rng, n)}))
    out = _lonlat(city, pd.concat(frames, ignore_index=True), geoms[np.argsort(parent, kind="stable")])
    if focus is not None:
        out = out[shapely.intersects(city.frame.geoms_to_xy(out.geometry.to_numpy()), focus.disc)]
    return out.reset_index(drop=True)


def _lonlat(city: City, frame: pd.DataFrame, geoms: NDArray[np.object_]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(frame, geometry=polygonal(city.frame.geoms_to_lonlat(geoms)), crs="EPSG:4326")
