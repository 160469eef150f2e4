"""The tile engine: what the HTTP layer and ``twin tiles build`` call.

It keeps every cached tile honest. It follows the store's change feed, which publishes every changeset of
any writer (this process, another one, another server); before a tile is served the feed catches up. What a
changeset changed is read with ``store.changes_since``, logged, and the tiles it meets are dropped from memory
and disk, and the layer's aggregates are brought up to date. A cached or pre-built tile is served only when the
change log proves nothing changed where it lies since it was drawn.

Every tile is drawn for a :class:`~tiles.view.View` (an area scope and the personal fields seen unmasked),
and cached under that view's variant: invalidation drops the tiles of every variant alike, and the
pre-built pyramid, drawn for the whole city with every field masked, serves only that view.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import shapely
from numpy.typing import NDArray

from tiles.aggregate import Aggregates
from tiles.cache import CacheKey, ChangeLog, DiskCache, Entry, MemoryCache
from tiles.grid import TileID, buffered_mercator, lonlat_box
from tiles.pyramid import Pyramid, gzip_tile
from tiles.query import NO_FILTER, TileFilter
from tiles.render import Renderer
from tiles.scope import scope_of
from tiles.view import MASKED, TileOutOfScopeError, View
from twin.errors import InvalidQueryError
from twin.settings import TileSettings
from twin.store import Store
from twin.store.base import Changeset

log = logging.getLogger("tiles")


@dataclass(frozen=True)
class TileResult:
    """A tile ready to send: gzip-compressed MVT (``b''`` when the tile is empty), its ETag and where it came from."""

    gz: bytes
    etag: str
    source: str  # "memory", "disk", "pyramid" or "drawn"

    @property
    def empty(self) -> bool:
        return not self.gz


def etag_of(data: bytes, variant: str = "") -> str:
    """A strong ETag of a tile's bytes as drawn for ``variant`` (tiles of two views never share one)."""
    digest = hashlib.blake2b(digest_size=10)
    if variant:
        digest.update(variant.encode() + b"\0")
    digest.update(data)
    return digest.hexdigest()


class TileEngine:
    """Dynamic vector tiles of a store, cached, aggregated at low zooms, invalidated precisely."""

    def __init__(self, store: Store, settings: TileSettings) -> None:
        self.store = store
        self.catalogue = store.catalogue
        self.settings = settings
        s = self.settings
        self.aggregates = Aggregates(store, depth=s.depth)
        self.renderer = Renderer(store, self.aggregates, buffer=s.buffer, max_bytes=s.max_tile_kb * 1000,
                                 budget_s=s.budget_s)
        self.memory = MemoryCache(s.memory_mb * 2**20)
        self.identity = store.identity
        self.disk = DiskCache(s.cache_dir / self.identity, s.disk_mb * 2**20) if s.cache_dir else None
        self.pyramid = Pyramid(s.pyramid) if s.pyramid else None
        if self.pyramid is not None and self.pyramid.store != self.identity:
            log.warning("%s was built from another store (%s, this is %s); tiles are drawn instead",
                        s.pyramid, self.pyramid.store, self.identity)
            self.pyramid.close()
            self.pyramid = None
        self.log = ChangeLog()
        self._known: dict[str, int] = {}
        self._seeds: dict[str, set[int]] = {}
        for layer, versions in (self.disk.versions() if self.disk else {}).items():
            self._seeds.setdefault(layer, set()).update(versions)
        for layer, version in (self.pyramid.versions if self.pyramid else {}).items():
            self._seeds.setdefault(layer, set()).add(version)
        self._locks: dict[str, threading.Lock] = {layer: threading.Lock() for layer in self.catalogue}
        self._closed = False
        self._pending: set[str] = set()  # layers with changesets the follower has not applied yet
        self._wake = threading.Condition()
        self._follower: threading.Thread | None = None
        store.feed.subscribe(self._on_changeset)
        self._warming: threading.Thread | None = None
        if s.warm:
            self._warming = threading.Thread(target=self.warm, name="twin-tiles-warm", daemon=True)
            self._warming.start()

    def warm(self) -> None:
        """Catch up with every layer (building the aggregates a store lacks, unless another server is building
        them) before the first request needs it."""
        for layer in self.catalogue:
            if self._closed:
                return
            try:
                self.store.feed.sync()
                if layer not in self._known:
                    self.sync(layer, wait=False)  # a layer another server is building is left to it
            except Exception:  # a background warm-up must never kill the service; requests will retry
                log.exception("warming the tiles of %s failed", layer)

    def close(self) -> None:
        with self._wake:
            self._closed = True
            self._wake.notify_all()
        self.store.feed.unsubscribe(self._on_changeset)
        if self._follower is not None:
            self._follower.join(timeout=60)
        if self._warming is not None:
            self._warming.join(timeout=60)
        if self.pyramid:
            self.pyramid.close()

    # -- requests ----------------------------------------------------------------------------
    def layers(self, text: str) -> tuple[str, ...]:
        """Comma-separated layer ids, checked against the catalogue (each once, in the order given)."""
        names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
        if not names:
            raise InvalidQueryError("no layer named; give one or more layer ids separated by commas")
        if len(names) > self.settings.max_layers:
            raise InvalidQueryError(f"{len(names)} layers in one tile; the most is {self.settings.max_layers}")
        return tuple(self.catalogue[n].id for n in names)

    def tile(self, layers: tuple[str, ...], tile: TileID, flt: TileFilter = NO_FILTER,
             view: View = MASKED) -> TileResult:
        """One tile of ``layers`` as ``view`` sees it: from memory, disk or the pyramid when still current, else
        drawn. Cached tiles are kept per view; the pyramid (drawn for :data:`MASKED`) serves only that view.

        Raises :class:`TileOutOfScopeError` (a 404) for a tile that does not meet the view's area.
        """
        box = lonlat_box(buffered_mercator(tile, self.settings.buffer))
        if view.area is not None and not scope_of(view.area).meets(box):
            raise TileOutOfScopeError(tile)
        self.refresh(*layers)
        seen = view.variant(layers)
        key = CacheKey(layers, tile, "-".join(v for v in (seen, flt.variant) if v))
        entry = self.memory.get(key)
        if entry is not None and self._current(entry, box, key):
            return TileResult(entry.gz, entry.etag, "memory")
        if self.disk is not None:
            entry = self.disk.get(key)
            if entry is not None and self._current(entry, box, key):
                self.memory.put(key, entry)
                return TileResult(entry.gz, entry.etag, "disk")
        if self.pyramid is not None and flt.is_empty and not seen and self.pyramid.covers(layers, tile):
            gz = self.pyramid.get(tile)
            entry = Entry(gz, etag_of(gz), dict(self.pyramid.versions))
            if self._current(entry, box, key):
                self.memory.put(key, entry)
                return TileResult(entry.gz, entry.etag, "pyramid")
        return self._draw(key, flt, view)

    def versions(self, layers: tuple[str, ...]) -> dict[str, int]:
        """The changeset of each layer the engine is caught up with (catching up first)."""
        self.refresh(*layers)
        return {layer: self._known[layer] for layer in layers}

    def draw(self, layers: tuple[str, ...], tile: TileID, flt: TileFilter = NO_FILTER,
             view: View = MASKED) -> tuple[bytes, dict[str, int]]:
        """Raw MVT bytes of a tile as ``view`` sees it, drawn now (no cache), and the changeset of each layer."""
        self.refresh(*layers)
        rendered = self.renderer.render(layers, tile, flt, view)
        return rendered.data, rendered.versions

    def _draw(self, key: CacheKey, flt: TileFilter, view: View) -> TileResult:
        rendered = self.renderer.render(key.layers, key.tile, flt, view)
        gz = gzip_tile(rendered.data) if rendered.data else b""
        entry = Entry(gz, etag_of(rendered.data, key.variant), rendered.versions)
        # cache what was drawn at the versions the engine knows; should a sync slip in between, the
        # change log still refuses the entry when it is read
        if all(self._known.get(layer) == v for layer, v in rendered.versions.items()):
            self.memory.put(key, entry)
            if self.disk is not None:
                self.disk.put(key, entry)
        return TileResult(entry.gz, entry.etag, "drawn")

    def _current(self, entry: Entry, box: tuple[float, float, float, float], key: CacheKey) -> bool:
        ok = all(self.log.current(layer, entry.versions.get(layer, -1), self._known[layer], box)
                 for layer in key.layers)
        if not ok:
            self.memory.drop(key)
        return ok

    # -- following the store -----------------------------------------------------------------
    def _on_changeset(self, cs: Changeset) -> None:
        """Note a changeset (of any writer, from the store's feed) for the follower thread, which drops the tiles it
        changed and updates the aggregates: the write that published it does not wait for that (an edit took 51 ms
        on the 15 M twin, half of it recounting cells), and a tile request catches up itself (:meth:`refresh`)."""
        if self._closed or cs.layer not in self._known or cs.id <= self._known[cs.layer]:
            return
        with self._wake:
            self._pending.add(cs.layer)
            self._wake.notify()
            if self._follower is None:
                self._follower = threading.Thread(target=self._follow, name="twin-tiles-follow", daemon=True)
                self._follower.start()

    def _follow(self) -> None:
        while True:
            with self._wake:
                while not self._pending and not self._closed:
                    self._wake.wait()
                if self._closed:
                    return
                layer = min(self._pending)
            try:
                with self._locks[layer]:  # taken before the layer leaves the pending set: see refresh
                    with self._wake:
                        self._pending.discard(layer)
                    self._sync(layer)
            except Exception:  # the write is committed; a failure here must not stop the follower
                log.exception("following the changes of %s failed; the next tile request retries", layer)

    def refresh(self, *layers: str) -> None:
        """Catch up with every changeset committed since the engine last looked (by any writer, through the store's
        feed), for ``layers`` now (a change the follower has not applied, or is applying, is waited for), starting
        to follow a layer if need be."""
        self.store.feed.sync()
        for layer in layers:
            with self._wake:
                behind = layer in self._pending
            if behind or layer not in self._known or self._locks[layer].locked():
                self.sync(layer)

    def sync(self, layer: str, latest: int | None = None, wait: bool = True) -> None:
        """Update the layer's aggregates, log what changed in ``layer`` and drop the tiles it meets.

        Syncs of one layer run one at a time; a sync that finds the engine already at ``latest`` returns. The
        aggregates are built by one process of the deployment at a time: the others wait for it, or, unless
        ``wait``, leave the layer unfollowed (its first request then waits for that build, and for no other).
        """
        with self._locks[layer]:
            with self._wake:
                self._pending.discard(layer)
            self._sync(layer, latest, wait)

    def _sync(self, layer: str, latest: int | None = None, wait: bool = True) -> None:
        """:meth:`sync`, under the layer's lock."""
        known = self._known.get(layer)
        if latest is not None and known == latest:
            return
        if not wait and not self.aggregates.sync(layer, wait=False):
            return
        if known is None:
            latest = self.store.last_changeset(layer)
            for seed in sorted(self._seeds.pop(layer, set())):
                changes = self.store.changes_since(layer, seed)
                self.log.add(layer, seed, changes.last_changeset, [b for _, b in changes.removed + changes.added])
                latest = max(latest, changes.last_changeset)
        else:
            changes = self.store.changes_since(layer, known)
            latest = changes.last_changeset
            if latest != known:
                boxes = [b for _, b in changes.removed + changes.added]
                self.log.add(layer, known, latest, boxes)
                self._invalidate(layer, boxes)
        self.aggregates.sync(layer)
        self._known[layer] = latest

    def _invalidate(self, layer: str, boxes: list[tuple[float, float, float, float]]) -> None:
        """Drop the cached tiles of ``layer`` (in memory and on disk) whose buffered box meets a changed box."""
        if not boxes:
            return
        tree = shapely.STRtree(_polygons(boxes))
        for cache in (self.memory, self.disk):
            if cache is None:
                continue
            keys = [k for k in cache.cached() if layer in k.layers]
            if not keys:
                continue
            tiles = _polygons([lonlat_box(buffered_mercator(k.tile, self.settings.buffer)) for k in keys])
            hit, _ = tree.query(tiles, predicate="intersects")
            for i in set(hit.tolist()):
                cache.drop(keys[i])


def _polygons(boxes: Sequence[tuple[float, float, float, float]]) -> NDArray[np.object_]:
    """One rectangle per ``(minx, miny, maxx, maxy)`` box."""
    b = np.array(boxes, dtype=np.float64).reshape(-1, 4)
    return shapely.box(b[:, 0], b[:, 1], b[:, 2], b[:, 3])
