"""Which subjects lie within a distance of which objects: the pairs a proximity rule raises alerts for.

Distances are in metres, measured for each pair in a local equirectangular frame centred on the subject's centroid
(as ``S_DWITHIN`` measures): a pair is found the same way whether the whole city is evaluated or one changed
component, so an incremental evaluation can never disagree with a city-wide one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.geometry.base import BaseGeometry

from twin.geodesy import METRES_PER_DEGREE, to_local

#: Distances within this many metres of the rule's are taken as within it (two engines' coordinates can differ in
#: the last bits).
_TOLERANCE = 1e-6


@dataclass(frozen=True)
class Conflict:
    """One pair within the distance: the keys, the distance, and the geometry that explains it (the shortest line
    between them, or where they meet) in lon/lat."""

    subject: str
    object: str
    distance_m: float
    geometry: BaseGeometry


def conflicts(subject_keys: list[str], subjects: NDArray[np.object_], object_keys: list[str],
              objects: NDArray[np.object_], within_m: float) -> list[Conflict]:
    """Every (subject, object) pair within ``within_m`` metres, ordered by subject then object key."""
    out: list[Conflict] = []
    if not len(subjects) or not len(objects):
        return out
    tree = shapely.STRtree(objects)
    centres = shapely.centroid(subjects)
    margin = within_m / METRES_PER_DEGREE * 1.01 + 1e-7
    for i in np.argsort(np.asarray(subject_keys, dtype=object), kind="stable"):
        geom = subjects[i]
        if geom is None or geom.is_empty:
            continue
        lon0, lat0 = float(shapely.get_x(centres[i])), float(shapely.get_y(centres[i]))
        dlon = margin / max(np.cos(np.radians(min(abs(lat0) + margin, 89.9))), 1e-6)
        minx, miny, maxx, maxy = geom.bounds
        found = tree.query(shapely.box(minx - dlon, miny - margin, maxx + dlon, maxy + margin))
        if not len(found):
            continue
        local = to_local(np.array([geom, *objects[found]], dtype=object), lon0, lat0)
        dist = shapely.distance(local[0], local[1:])
        for j, d in sorted(zip(found.tolist(), dist.tolist(), strict=True), key=lambda p: object_keys[p[0]]):
            if d > within_m + _TOLERANCE or object_keys[j] == subject_keys[i]:
                continue
            other = objects[j]
            explain = shapely.intersection(geom, other) if d <= _TOLERANCE else shapely.shortest_line(geom, other)
            out.append(Conflict(subject_keys[i], object_keys[j], round(float(d), 3), explain))
    return out
