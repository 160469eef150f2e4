"""The live in-memory spatial index: an ``rtree`` per layer that follows the store's changesets.

Unlike shapely's STRtree it takes inserts and deletes, so it is patched, not rebuilt, after each
write. Before every look-up it catches up with changesets committed since it last looked, whether
this process or another one (``twin import`` beside a running service) wrote them.
"""

from __future__ import annotations

import itertools
import sqlite3
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
import shapely
from numpy.typing import NDArray
from rtree import index as rtree_index

from twin.errors import InvalidQueryError
from twin.geodesy import degree_box, distance_to_point
from twin.model.rows import Hits
from twin.store.base import BBox, Changeset

if TYPE_CHECKING:
    from twin.store.gpkg.store import GeoPackageStore


class _LayerIndex:
    def __init__(self, changeset: int, entries: Iterator[tuple[int, BBox]]) -> None:
        props = rtree_index.Property()
        props.leaf_capacity = 64
        props.fill_factor = 0.9
        first = next(entries, None)
        if first is None:  # libspatialindex's bulk loader refuses an empty stream
            self.rtree = rtree_index.Index(properties=props, interleaved=True)
        else:
            stream = ((fid, box, None) for fid, box in itertools.chain([first], entries))
            self.rtree = rtree_index.Index(stream, properties=props, interleaved=True)
        self.changeset = changeset


class _BoxRounder:
    """Rounds boxes exactly as SQLite's R-tree stores them (to 32-bit floats, outwards).

    The index is first loaded from the GeoPackage's own R-tree, and libspatialindex deletes an
    entry only when given its exact box, so every box added later is rounded the same way, by
    SQLite itself rather than by a re-implementation of its rounding.
    """

    def __init__(self) -> None:
        self.conn = sqlite3.connect(":memory:", check_same_thread=False)
        self.conn.execute("CREATE VIRTUAL TABLE box USING rtree(id, minx, maxx, miny, maxy)")

    def __call__(self, entries: list[tuple[int, BBox]]) -> list[tuple[int, BBox]]:
        if not entries:
            return []
        rows = [(i, b[0], b[2], b[1], b[3]) for i, (_, b) in enumerate(entries)]
        self.conn.executemany("INSERT INTO box VALUES (?, ?, ?, ?, ?)", rows)
        out = self.conn.execute("SELECT id, minx, miny, maxx, maxy FROM box ORDER BY id").fetchall()
        self.conn.execute("DELETE FROM box")
        return [(entries[i][0], (a, b, c, d)) for i, a, b, c, d in out]


class LiveIndex:
    """Bounding-box, radius and nearest-k look-ups over every layer of a store."""

    def __init__(self, store: GeoPackageStore) -> None:
        self.store = store
        self._layers: dict[str, _LayerIndex] = {}
        self._lock = threading.RLock()
        self._round = _BoxRounder()
        store.subscribe(self._on_changeset)

    def close(self) -> None:
        """Stop following the store and drop every layer's index."""
        self.store.unsubscribe(self._on_changeset)
        with self._lock:
            self._layers.clear()

    def _on_changeset(self, cs: Changeset) -> None:
        with self._lock:
            idx = self._layers.get(cs.layer)
            if idx is not None and cs.id > idx.changeset:
                self._catch_up(cs.layer, idx)

    def _layer(self, layer: str) -> _LayerIndex:
        with self._lock:
            idx = self._layers.get(layer)
            if idx is None:
                last, entries = self.store.index_entries(layer)
                idx = self._layers[layer] = _LayerIndex(last, entries)
            return idx

    def _catch_up(self, layer: str, idx: _LayerIndex) -> None:
        changes = self.store.changes_since(layer, idx.changeset)
        for fid, box in self._round(changes.removed):
            idx.rtree.delete(fid, box)
        for fid, box in self._round(changes.added):
            idx.rtree.insert(fid, box)
        idx.changeset = changes.last_changeset

    def sync(self, layer: str) -> None:
        """Load ``layer``'s index if it is not yet, after applying every changeset committed by any writer."""
        self.store.feed.sync()
        self._layer(layer)

    def bbox(self, layer: str, bbox: BBox) -> NDArray[np.int64]:
        """Ids of components whose envelope meets ``bbox`` (lon/lat), in id order.

        The index holds boxes rounded outwards to 32-bit floats (as the GeoPackage R-tree does); a box
        wholly inside ``bbox`` is a hit as it is, one across its edge is checked on the exact geometry.
        """
        self.sync(layer)
        with self._lock:
            items = [(i.id, i.bbox) for i in self._layers[layer].rtree.intersection(bbox, objects=True)]
        minx, miny, maxx, maxy = bbox
        sure = [fid for fid, b in items if b[0] >= minx and b[1] >= miny and b[2] <= maxx and b[3] <= maxy]
        edge = [fid for fid, b in items if not (b[0] >= minx and b[1] >= miny and b[2] <= maxx and b[3] <= maxy)]
        if edge:
            geoms = self.store.geometries(layer, edge)
            box = shapely.box(*bbox)
            sure += [fid for fid in edge if shapely.intersects(shapely.envelope(geoms[fid]), box)]
        return np.sort(np.asarray(sure, dtype=np.int64))

    def radius(self, layer: str, lon: float, lat: float, metres: float) -> Hits:
        """Components within ``metres`` of (lon, lat), nearest first."""
        if not metres >= 0:
            raise InvalidQueryError(f"radius must be a non-negative number of metres, not {metres!r}")
        fids = self.bbox(layer, degree_box(lon, lat, metres))
        if len(fids) == 0:
            return Hits(fids, np.empty(0))
        dist = self._distances(layer, fids, lon, lat)
        keep = dist <= metres
        return self._ranked(fids[keep], dist[keep])

    def nearest(self, layer: str, lon: float, lat: float, k: int) -> Hits:
        """The ``k`` components nearest to (lon, lat), with distances; ties broken by id."""
        if k < 1:
            raise InvalidQueryError(f"k must be at least 1, not {k}")
        self.sync(layer)
        with self._lock:
            seeds = np.asarray(list(self._layers[layer].rtree.nearest((lon, lat, lon, lat), k)), dtype=np.int64)
        if len(seeds) == 0:
            return Hits(seeds, np.empty(0))
        # rtree ranks by degrees, which is not metres; every true k-nearest lies within the
        # metric distance of the k-th seed, so one radius search finds the exact answer.
        reach = float(self._distances(layer, seeds, lon, lat).max())
        found = self.radius(layer, lon, lat, reach * (1 + 1e-9) + 1e-6)
        return Hits(found.fids[:k], found.distances[:k])

    def _distances(self, layer: str, fids: NDArray[np.int64], lon: float, lat: float) -> NDArray[np.float64]:
        by_fid = self.store.geometries(layer, fids.tolist())
        geoms = np.array([by_fid[int(f)] for f in fids], dtype=object)
        return distance_to_point(geoms, lon, lat)

    @staticmethod
    def _ranked(fids: NDArray[np.int64], dist: NDArray[np.float64]) -> Hits:
        order = np.lexsort((fids, dist))
        return Hits(fids[order], dist[order])

    def size(self, layer: str) -> int:
        """How many entries the layer's index holds (after catching up)."""
        self.sync(layer)
        with self._lock:
            return len(self._layers[layer].rtree)
