"""Synthetic minor streets: a grid inside each block of the real main-road network.

The real OSM file has only main roads (about 14,600 km), while street lights and hydrants also line
the branch streets, lanes (弄) and compound roads that make up most of a Chinese city's street
length. Each block enclosed by main roads (a face of the road network, kept 12 m clear of the roads)
is filled with a street grid turned to the block's own orientation, so the lanes meet the main roads
the way they do on a real map. Spacing follows urbanity: about 30 m between lanes in the old core,
a few hundred metres in the countryside. The grid of a block is fixed by the seed and the block, so a
tile of the city can be generated on its own and the result does not depend on tiling.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import cast

import numpy as np
import shapely
from numpy.typing import NDArray

from twin.demo.city import City
from twin.demo.rng import rng_for

SETBACK = 12.0
MIN_STREET = 15.0
#: Street density (km per km²) of the countryside and of the densest core before calibration.
RURAL_DENSITY, CORE_DENSITY = 8.0, 50.0
MIN_SPACING, MAX_SPACING = 28.0, 450.0


def spacing_for(urbanity: NDArray[np.float64], scale: float) -> NDArray[np.float64]:
    """Distance between parallel streets (m) at each urbanity, for a calibration ``scale``."""
    density = scale * (RURAL_DENSITY + (CORE_DENSITY - RURAL_DENSITY) * np.sqrt(urbanity))
    return np.clip(2000.0 / density, MIN_SPACING, MAX_SPACING)


def expected_length(city: City, scale: float) -> float:
    """Approximate synthetic street length (m) of the whole city for a calibration ``scale``."""
    u = city.urbanity[city.settled]
    return float((2.0 * city.grid.cell**2 / spacing_for(u, scale)).sum() * 0.86)


def calibrate(city: City, target_length: float) -> float:
    """The calibration scale whose expected street length is ``target_length`` metres (bisection)."""
    lo, hi = 0.01, 100.0
    for _ in range(60):
        mid = np.sqrt(lo * hi)
        lo, hi = (mid, hi) if expected_length(city, mid) < target_length else (lo, mid)
    return float(np.sqrt(lo * hi))


@dataclass
class Blocks:
    """The blocks of the main-road network with their street grids: angle, spacing and phase."""

    polygons: NDArray[np.object_]
    angle: NDArray[np.float64]
    spacing: NDArray[np.float64]
    phase: NDArray[np.float64]  # (n, 2), fractions of a spacing
    origin: NDArray[np.float64]  # (n, 2)

    @cached_property
    def tree(self) -> shapely.STRtree:
        return shapely.STRtree(self.polygons)

    def frame_of(self, i: int) -> tuple[float, float, float, float]:
        """cos, sin, x0, y0 of block ``i``'s grid frame."""
        return float(np.cos(self.angle[i])), float(np.sin(self.angle[i])), *self.origin[i].tolist()


def make_blocks(city: City, scale: float, seed: int) -> Blocks:
    """Every block of the road network (the faces between main roads, district borders and the map edge)."""
    edge_of_map = shapely.box(*city.grid.bounds).boundary
    edges = np.concatenate([city.road_xy, shapely.boundary(city.district_xy), [edge_of_map]])
    # one array in: each of the four results is one GeometryCollection
    polygons, cuts, dangles, rings = cast(tuple[shapely.GeometryCollection, ...],
                                          shapely.polygonize_full(shapely.get_parts(shapely.union_all(edges))))
    faces = shapely.buffer(shapely.get_parts(polygons), -SETBACK, quad_segs=2)
    loose = shapely.get_parts(shapely.union_all([cuts, dangles, rings]))  # roads ending inside a block
    hits = shapely.STRtree(loose).query(faces, predicate="dwithin", distance=SETBACK)
    for i in np.unique(hits[0]):
        near = loose[hits[1][hits[0] == i]]
        faces[i] = shapely.difference(faces[i], shapely.union_all(shapely.buffer(near, SETBACK, quad_segs=2)))
    faces = shapely.get_parts(faces[~shapely.is_empty(faces)])
    faces = faces[shapely.area(faces) > 400.0]
    centre = np.round(shapely.get_coordinates(shapely.centroid(faces)), 1)
    faces = faces[np.lexsort((centre[:, 1], centre[:, 0]))]  # an order fixed by geometry alone
    ring = shapely.get_coordinates(shapely.get_exterior_ring(shapely.oriented_envelope(faces)))
    corners = ring.reshape(len(faces), -1, 2)
    edge = corners[:, 1] - corners[:, 0]
    angle = np.mod(np.arctan2(edge[:, 1], edge[:, 0]), np.pi / 2)
    pts = shapely.point_on_surface(faces)
    spacing = spacing_for(city.urbanity_at(shapely.get_x(pts), shapely.get_y(pts)), scale)
    phase = rng_for(seed, "blocks").random((len(faces), 2))
    return Blocks(faces, angle, spacing, phase, shapely.get_coordinates(shapely.centroid(faces)))


def grid_lines(blocks: Blocks, i: int, area: shapely.Geometry) -> tuple[NDArray[np.object_], NDArray[np.int64]]:
    """Block ``i``'s grid streets within ``area`` (part of the block), and a street number for each piece."""
    c, s, x0, y0 = blocks.frame_of(i)
    sp = float(blocks.spacing[i])
    xy = shapely.get_coordinates(shapely.envelope(area)) - (x0, y0)
    u, v = xy[:, 0] * c + xy[:, 1] * s, -xy[:, 0] * s + xy[:, 1] * c
    fam_u, k_u = _family(u, v, sp, float(blocks.phase[i, 0]))
    fam_v, k_v = _family(v, u, sp, float(blocks.phase[i, 1]))
    ends = np.concatenate([fam_u, fam_v[:, :, ::-1]]).reshape(-1, 2)
    if not len(ends):
        return np.array([], dtype=object), np.array([], dtype=np.int64)
    world = np.column_stack([ends[:, 0] * c - ends[:, 1] * s + x0, ends[:, 0] * s + ends[:, 1] * c + y0])
    lines = shapely.linestrings(world, indices=np.repeat(np.arange(len(ends) // 2), 2))
    number = np.concatenate([k_u * 2, k_v * 2 + 1]) + i * 100_000
    clipped = shapely.intersection(lines, area)
    parts, which = shapely.get_parts(clipped, return_index=True)
    keep = (shapely.get_type_id(parts) == 1) & (shapely.length(parts) >= MIN_STREET)
    return parts[keep], number[which[keep]]


def _family(a: NDArray[np.float64], b: NDArray[np.float64], sp: float, ph: float
            ) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Lines ``a = (k + ph) * sp`` across the range of ``b``, as (n, 2, 2) end points in (a, b) order."""
    ks = np.arange(np.ceil(a.min() / sp - ph), np.floor(a.max() / sp - ph) + 1)
    ends = np.empty((len(ks), 2, 2))
    ends[:, :, 0] = ((ks + ph) * sp)[:, None]
    ends[:, 0, 1], ends[:, 1, 1] = b.min(), b.max()
    return ends, (ks.astype(np.int64) % 25_000)
