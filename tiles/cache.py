"""The tile cache: a size-bounded LRU in memory over a size-bounded directory on disk, and the change log
that decides whether a cached tile is still current.

Every cached tile carries the changeset each of its layers was drawn at. The :class:`ChangeLog` keeps, per
layer, the bounding boxes (old and new) of every component changed in each changeset since the engine
started; a tile drawn at changeset ``v`` is current when no box changed after ``v`` meets the tile (with
its buffer). Tiles that a change does meet are also dropped at once, from memory and from disk.
"""

from __future__ import annotations

import os
import threading
from collections import Counter, OrderedDict
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import shapely

from tiles.grid import TileID

Box = tuple[float, float, float, float]
#: A changeset touching more components than this is logged as touching everything (its envelope).
_MAX_BOXES = 200_000
_LOG_ENTRIES = 512


@dataclass(frozen=True)
class CacheKey:
    """A tile of a set of layers under a variant: the view's and the filter's ('' for the masked, unscoped,
    unfiltered tile)."""

    layers: tuple[str, ...]
    tile: TileID
    variant: str = ""


@dataclass(frozen=True)
class Entry:
    """A cached tile: gzip-compressed MVT (``b''`` for an empty tile), its ETag and the versions it reflects."""

    gz: bytes
    etag: str
    versions: dict[str, int] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return len(self.gz) + 256


@dataclass
class _Change:
    start: int  # changes after this changeset ...
    stop: int  # ... up to and including this one
    tree: shapely.STRtree | None  # None: everything changed


class ChangeLog:
    """Per layer, the boxes changed in each span of changesets, for checking cached tiles."""

    def __init__(self) -> None:
        self._spans: dict[str, list[_Change]] = {}
        self._lock = threading.Lock()

    def add(self, layer: str, start: int, stop: int, boxes: list[Box]) -> None:
        """Record that the components in ``boxes`` (lon/lat, as at ``start`` and as at ``stop``) changed."""
        if stop <= start:
            return
        tree = None
        if len(boxes) <= _MAX_BOXES:
            arr = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
            tree = shapely.STRtree(shapely.box(arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3]))
        with self._lock:
            spans = self._spans.setdefault(layer, [])
            spans.append(_Change(start, stop, tree))
            del spans[:-_LOG_ENTRIES]

    def current(self, layer: str, version: int, latest: int, box: Box) -> bool:
        """Whether nothing meeting the lon/lat ``box`` changed in ``layer`` after ``version`` up to ``latest``.

        The spans walked must start exactly at ``version``: a tile drawn in the middle of a span may
        show an intermediate state that the span's boxes (before and after) do not cover.
        """
        if version == latest:
            return True
        with self._lock:
            spans = list(self._spans.get(layer, []))
        query = shapely.box(*box)
        at = version
        while at < latest:
            step = max((s for s in spans if s.start == at), key=lambda s: s.stop, default=None)
            if step is None or step.tree is None or len(step.tree.query(query, predicate="intersects")):
                return False
            at = step.stop
        return at == latest


class MemoryCache:
    """A thread-safe LRU of entries bounded by total bytes."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[CacheKey, Entry] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: CacheKey) -> Entry | None:
        with self._lock:
            entry = self._items.get(key)
            if entry is not None:
                self._items.move_to_end(key)
            return entry

    def put(self, key: CacheKey, entry: Entry) -> None:
        if entry.size > self.max_bytes:
            return
        with self._lock:
            old = self._items.pop(key, None)
            self._bytes += entry.size - (old.size if old else 0)
            self._items[key] = entry
            while self._bytes > self.max_bytes:
                _, gone = self._items.popitem(last=False)
                self._bytes -= gone.size

    def drop(self, key: CacheKey) -> None:
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old.size

    def cached(self) -> list[CacheKey]:
        with self._lock:
            return list(self._items)

    def __len__(self) -> int:
        return len(self._items)


class DiskCache:
    """Entries as files ``<dir>/<layers>/<variant>/<z>/<x>/<y>.<etag>.<versions>.mvt.gz``, bounded in bytes.

    The versions are in the file name, so the index is rebuilt from a directory walk when a process
    starts; files are evicted oldest first when the directory grows past its bound.
    """

    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes
        self._index: OrderedDict[CacheKey, tuple[Path, Entry]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.root.mkdir(parents=True, exist_ok=True)
        found = []
        for path in self.root.rglob("*.mvt.gz"):
            parsed = self._parse(path)
            if parsed is not None:
                found.append((path.stat().st_mtime, path, parsed))
        for _, path, (key, etag, versions) in sorted(found, key=lambda f: f[0]):
            self._remember(key, path, Entry(b"", etag, versions), path.stat().st_size)

    def _dir(self, key: CacheKey) -> Path:
        return self.root / "+".join(key.layers) / (key.variant or "_") / str(key.tile.z) / str(key.tile.x)

    def _parse(self, path: Path) -> tuple[CacheKey, str, dict[str, int]] | None:
        try:
            rel = path.relative_to(self.root).parts
            layers, variant, z, x = rel[0].split("+"), rel[1], int(rel[2]), int(rel[3])
            y, etag, versions = path.name.removesuffix(".mvt.gz").split(".")
            numbers = [int(v) for v in versions.split("-")]
        except (ValueError, IndexError):
            return None
        if len(numbers) != len(layers):
            return None
        key = CacheKey(tuple(layers), TileID(z, x, int(y)), "" if variant == "_" else variant)
        return key, etag, dict(zip(layers, numbers, strict=True))

    def _remember(self, key: CacheKey, path: Path, stub: Entry, size: int) -> None:
        old = self._index.pop(key, None)
        if old is not None and old[0] != path:
            self._bytes -= old[0].stat().st_size if old[0].exists() else 0
            old[0].unlink(missing_ok=True)
        self._index[key] = (path, stub)
        self._bytes += size

    def get(self, key: CacheKey) -> Entry | None:
        with self._lock:
            found = self._index.get(key)
        if found is None:
            return None
        path, stub = found
        try:
            return replace(stub, gz=path.read_bytes())
        except FileNotFoundError:  # evicted by another process
            self.drop(key)
            return None

    def put(self, key: CacheKey, entry: Entry) -> None:
        folder = self._dir(key)
        folder.mkdir(parents=True, exist_ok=True)
        versions = "-".join(str(entry.versions[layer]) for layer in key.layers)
        path = folder / f"{key.tile.y}.{entry.etag}.{versions}.mvt.gz"
        tmp = path.with_suffix(f".tmp{os.getpid()}.{threading.get_ident()}")
        tmp.write_bytes(entry.gz)
        os.replace(tmp, path)
        with self._lock:
            self._remember(key, path, replace(entry, gz=b""), len(entry.gz))
            while self._bytes > self.max_bytes and self._index:
                _, (gone, _) = self._index.popitem(last=False)
                self._bytes -= gone.stat().st_size if gone.exists() else 0
                gone.unlink(missing_ok=True)

    def drop(self, key: CacheKey) -> None:
        with self._lock:
            found = self._index.pop(key, None)
            if found is not None:
                self._bytes -= found[0].stat().st_size if found[0].exists() else 0
                found[0].unlink(missing_ok=True)

    def cached(self) -> list[CacheKey]:
        with self._lock:
            return list(self._index)

    def versions(self, most: int = 32) -> dict[str, set[int]]:
        """Per layer, the changesets files on disk were drawn at (the ``most`` commonest), to seed the change log."""
        counts: dict[str, Counter[int]] = {}
        with self._lock:
            for _, stub in self._index.values():
                for layer, v in stub.versions.items():
                    counts.setdefault(layer, Counter())[v] += 1
        return {layer: {v for v, _ in c.most_common(most)} for layer, c in counts.items()}
