"""What stands along each kind of road: street-light spacing and side offsets, hydrant rules, pole sizes.

Classes follow the OSM ``highway`` tag of the real roads (one OSM line is one carriageway of a dual
road); ``street`` is the synthetic branch-street grid of :mod:`twin.demo.streets`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class RoadClass:
    """Street furniture rules for one class of road."""

    zh: str
    light_spacing: float  # metres between poles on one side
    light_offset: float  # metres from the centre line to the poles
    both_sides: bool
    hydrants: bool
    pole_height: tuple[float, float]
    led_power: tuple[int, ...]  # watts, by pole height band
    pipelines: float  # expected number of pipelines under one carriageway line


CLASSES: dict[str, RoadClass] = {
    "motorway": RoadClass("快速路", 40.0, 8.0, True, False, (12.0, 14.0), (200, 250), 0.5),
    "trunk": RoadClass("主干路", 36.0, 9.0, True, True, (10.0, 12.0), (150, 200), 1.8),
    "primary": RoadClass("主干路", 33.0, 10.0, True, True, (10.0, 12.0), (120, 150, 200), 2.2),
    "secondary": RoadClass("次干路", 32.0, 8.0, True, True, (8.0, 10.0), (90, 120, 150), 2.2),
    "motorway_link": RoadClass("匝道", 35.0, 5.0, False, False, (8.0, 10.0), (120, 150), 0.3),
    "trunk_link": RoadClass("连接道", 35.0, 5.0, False, False, (8.0, 10.0), (90, 120), 0.6),
    "primary_link": RoadClass("连接道", 35.0, 5.0, False, True, (8.0, 10.0), (90, 120), 0.8),
    "secondary_link": RoadClass("连接道", 35.0, 5.0, False, True, (8.0, 10.0), (90, 120), 0.8),
    "street": RoadClass("支路", 35.0, 4.5, True, True, (6.0, 8.0), (40, 60, 90), 0.0),
}
HYDRANT_SPACING = 120.0
NAMES = np.array(list(CLASSES))


def class_index(highway: NDArray[np.object_]) -> NDArray[np.intp]:
    """Index into :data:`CLASSES` of each OSM ``highway`` value (unknown values count as secondary)."""
    lookup = {name: i for i, name in enumerate(CLASSES)}
    fallback = lookup["secondary"]
    return np.array([lookup.get(str(h), fallback) for h in highway], dtype=np.intp)


def table(attribute: str) -> NDArray[Any]:
    """One rule for every class, in :data:`CLASSES` order, for vectorised look-ups (of that rule's type)."""
    return np.array([getattr(c, attribute) for c in CLASSES.values()])


STREET = list(CLASSES).index("street")
