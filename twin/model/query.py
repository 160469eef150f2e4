"""What a store is asked for one page of one layer: the box, the time interval, the checked filter, the radius,
the order, the page and the reader's view (area and unmasked fields).

Everything here is in lon/lat (CRS84 axis order) and already validated: the query layer parses what a client
wrote (:mod:`twin.query.model`) into these values, and every store engine answers them alike.
"""

from __future__ import annotations

from dataclasses import dataclass

from twin.errors import InvalidQueryError
from twin.model.area import Area
from twin.model.filter import Filter

#: OGC API - Features default and maximum page sizes; larger limits are clamped (Part 1, 7.15.3).
DEFAULT_LIMIT = 10
MAX_LIMIT = 10_000
#: Up to this many matches are counted exactly for ``numberMatched``; beyond it the number is estimated.
COUNT_CAP = 10_000
Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class BBox:
    """A lon/lat box; ``minx > maxx`` means it crosses the antimeridian (OGC API - Features 7.15.3)."""

    minx: float
    miny: float
    maxx: float
    maxy: float

    def __post_init__(self) -> None:
        if self.miny > self.maxy:
            raise InvalidQueryError(f"bbox: the southern edge {self.miny} is north of the northern edge {self.maxy}")
        for v in (self.minx, self.maxx):
            if not -180 <= v <= 180:
                raise InvalidQueryError(f"bbox: longitude {v} is outside -180..180")
        for v in (self.miny, self.maxy):
            if not -90 <= v <= 90:
                raise InvalidQueryError(f"bbox: latitude {v} is outside -90..90")

    @property
    def parts(self) -> list[Box]:
        """One box, or two when it crosses the antimeridian."""
        if self.minx <= self.maxx:
            return [(self.minx, self.miny, self.maxx, self.maxy)]
        return [(self.minx, self.miny, 180.0, self.maxy), (-180.0, self.miny, self.maxx, self.maxy)]

    def contains(self, box: Box) -> bool:
        """Whether this box covers ``box`` entirely."""
        return any(p[0] <= box[0] and p[1] <= box[1] and p[2] >= box[2] and p[3] >= box[3] for p in self.parts)


@dataclass(frozen=True)
class TimeInterval:
    """A closed interval of ``updated_at`` times (UTC text with milliseconds and a ``Z``); ``None`` is open."""

    start: str | None
    end: str | None


@dataclass(frozen=True)
class SortKey:
    """One ``sortby`` term: a property (``id``, ``status``, ``updated_at`` or a field) and its direction."""

    column: str
    ascending: bool = True


@dataclass(frozen=True)
class Near:
    """A radius search around a lon/lat point (twin extension ``near=lon,lat&radius=m``)."""

    lon: float
    lat: float
    metres: float


@dataclass(frozen=True)
class FeatureQuery:
    """One page of one layer: every part already validated against the catalogue and the reader's role."""

    layer: str
    bbox: BBox | None = None
    datetime: TimeInterval | None = None
    filter: Filter | None = None
    near: Near | None = None
    sortby: tuple[SortKey, ...] = ()
    properties: tuple[str, ...] | None = None
    limit: int = DEFAULT_LIMIT
    offset: int = 0
    scope: Area | None = None  # only components meeting this area (the caller's), if any
    unmasked: frozenset[str] = frozenset()  # personal fields the caller sees as stored
    as_of: str | None = None  # the versions current at this store time (from the history), rather than now

    @property
    def envelopes(self) -> tuple[Box, ...]:
        """Boxes every match meets, from the filter's spatial terms."""
        return self.filter.envelopes if self.filter is not None else ()

    @property
    def selective(self) -> bool:
        """Whether anything but a bbox narrows the layer, or it is read as of a past moment (so its count is not a
        matter of extents)."""
        return self.datetime is not None or self.filter is not None or self.near is not None or \
            self.scope is not None or self.as_of is not None
