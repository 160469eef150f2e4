"""The ``filter``, ``datetime`` and ``as_of`` of a tile request: the features API's CQL2 checks, applied per layer.

A :class:`TileFilter` is parsed once (a filter that does not parse is an error before any tile is drawn)
and checked against each layer of the tile; its :attr:`~TileFilter.variant` names it in cache keys.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from twin.catalogue import LayerSpec
from twin.model.filter import Filter
from twin.model.query import TimeInterval
from twin.query.cql import parse_filter
from twin.query.crs import resolve_crs
from twin.query.filters import check_filter
from twin.query.model import parse_interval


@dataclass(frozen=True)
class TileFilter:
    """An optional CQL2 filter (text or JSON) and an optional ``datetime`` on ``updated_at``."""

    cql: str | None = None
    lang: str | None = None
    crs: str | None = None
    datetime: str | None = None
    #: The components as they were at this store time (from their history), rather than now.
    as_of: str | None = None
    _node: Any = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.cql is not None:
            object.__setattr__(self, "_node", parse_filter(self.cql, self.lang))
            resolve_crs(self.crs, name="filter-crs")
        if self.datetime is not None:
            parse_interval(self.datetime)

    @property
    def is_empty(self) -> bool:
        return self.cql is None and self.datetime is None and self.as_of is None

    @cached_property
    def variant(self) -> str:
        """A short, stable name of this filter for cache keys ('' for no filter)."""
        if self.is_empty:
            return ""
        text = "\x1f".join(str(v) for v in (self.cql, self.lang, self.crs, self.datetime, self.as_of))
        return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()

    def checked(self, spec: LayerSpec, unmasked: frozenset[str] = frozenset()
                ) -> tuple[Filter | None, TimeInterval | None]:
        """The filter checked against ``spec``'s layer and the time interval (each ``None`` when not given).

        Personal fields may be named only when in ``unmasked`` (:class:`~twin.errors.MaskedFieldError`).
        """
        flt = None
        if self._node is not None:
            flt = check_filter(self._node, spec, resolve_crs(self.crs, name="filter-crs"), unmasked)
        return flt, parse_interval(self.datetime) if self.datetime is not None else None


NO_FILTER = TileFilter()
