"""The point components inside an area, kept in memory per (area, layer) for exact nearest-k within it.

A committee's area holds a few hundred hydrants and a few thousand street lights: ranking them all by
distance is cheaper than widening a city-wide nearest search until enough of its answers fall inside the
area. An entry is dropped when the store's change feed says its layer changed (any writer), or when it is the
least recently used of :data:`MAX_ENTRIES`.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np
from numpy.typing import NDArray

from twin.geodesy import distance_to_point
from twin.model.area import Area
from twin.model.rows import TIE_DECIMALS
from twin.store import Changeset, Snapshot, Store

MAX_ENTRIES = 2048
#: Areas holding more points than this (in their envelope) are searched in the store instead.
MAX_POINTS = 20_000
Members = tuple[NDArray[np.int64], NDArray[np.object_]]


class AreaPoints:
    """Per (area, layer): ids and points of the layer's components meeting the area, when they are few points."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._entries: OrderedDict[tuple[str, int, str], tuple[int, Members | None]] = OrderedDict()
        self._changed: dict[str, int] = {}  # the last changeset of each layer the feed published
        self._lock = threading.Lock()
        store.feed.subscribe(self._on_changeset)

    def _on_changeset(self, cs: Changeset) -> None:
        with self._lock:
            self._changed[cs.layer] = max(cs.id, self._changed.get(cs.layer, 0))

    def members(self, snap: Snapshot, area: Area, layer: str) -> Members | None:
        """The area's points of ``layer``; ``None`` when the layer is not points or the area holds too many."""
        self.store.feed.sync()
        key = (area.key, hash(area.wkb), layer)
        with self._lock:
            version = self._changed.get(layer, 0)  # an entry read after this is current unless a later one comes
            entry = self._entries.get(key)
            if entry is not None and entry[0] >= version:
                self._entries.move_to_end(key)
                return entry[1]
        found = snap.area_points(layer, area, MAX_POINTS)
        with self._lock:
            self._entries[key] = (version, found)
            self._entries.move_to_end(key)
            while len(self._entries) > MAX_ENTRIES:
                self._entries.popitem(last=False)
        return found

    def nearest(self, snap: Snapshot, area: Area, layer: str, lon: float, lat: float, k: int
                ) -> tuple[NDArray[np.int64], NDArray[np.float64]] | None:
        """The ``k`` nearest of the area's points (ids and metres, ties broken by id, as the store's nearest does),
        or ``None`` when :meth:`members` has none to rank."""
        found = self.members(snap, area, layer)
        if found is None:
            return None
        fids, points = found
        distances = distance_to_point(points, lon, lat)
        order = np.lexsort((fids, np.round(distances, TIE_DECIMALS)))[:k]
        return fids[order], distances[order]
