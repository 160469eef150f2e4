"""The one typed interface every store backend implements, and its value objects."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import geopandas as gpd
import numpy as np
from numpy.typing import NDArray

from twin.catalogue import Catalogue

BBox = tuple[float, float, float, float]


@dataclass(frozen=True)
class Changeset:
    """A committed change: who changed what, when and from where, with counts."""

    id: int
    time: str
    author: str
    source: str
    layer: str
    kind: str  # "import", "edit" or "delete"
    inserted: int
    updated: int
    deleted: int
    unchanged: int
    source_crs: str | None = None
    note: str = ""


@dataclass
class WritePlan:
    """What one chunk of a write does (or, in a dry run, would do).

    ``frame`` holds the conformed chunk with its assigned ``key``; ``action`` per row is
    ``insert``, ``update`` or ``unchanged``.
    """

    layer: str
    frame: gpd.GeoDataFrame
    action: NDArray[np.object_]
    fids: NDArray[np.int64]  # existing fid of updated/unchanged rows, -1 for inserts
    fps: NDArray[np.int64]
    delete_fids: list[int] = field(default_factory=list)

    def count(self, action: str) -> int:
        return int((self.action == action).sum())


@dataclass(frozen=True)
class LayerChanges:
    """Index patch for one layer since a changeset: boxes to drop and boxes to add, by fid."""

    removed: list[tuple[int, BBox]]
    added: list[tuple[int, BBox]]
    last_changeset: int


@runtime_checkable
class Store(Protocol):
    """A store of city components, one table per catalogue layer, keeping every past version."""

    catalogue: Catalogue

    def writer(self, layer: str, *, author: str, source: str, kind: str = "import",
               source_crs: str | None = None, note: str = "", dry_run: bool = False
               ) -> AbstractContextManager[Any]:
        """One all-or-nothing changeset fed in chunks (``w.add(frame) -> WritePlan``); ``twin import``."""
        ...

    def upsert(self, layer: str, frame: gpd.GeoDataFrame, *, author: str, source: str,
               source_crs: str | None = None) -> Changeset:
        """Plan and apply in one call."""
        ...

    def edit(self, key: str, *, author: str, properties: dict[str, object] | None = None,
             geometry: object | None = None, source: str = "edit") -> Changeset:
        """Change one component's attributes or geometry, keeping its key."""
        ...

    def delete(self, layer: str, keys: Sequence[str], *, author: str, source: str = "delete") -> Changeset:
        """Retire components; their last versions stay in history."""
        ...

    def features(self, layer: str, *, bbox: BBox | None = None, keys: Sequence[str] | None = None,
                 limit: int | None = None, offset: int = 0, as_of: str | None = None) -> gpd.GeoDataFrame:
        """Components of a layer, now or as they were at ``as_of`` (ISO 8601 UTC)."""
        ...

    def get(self, key: str, *, as_of: str | None = None) -> gpd.GeoDataFrame:
        """The component a key resolves to, whatever its layer (one row)."""
        ...

    def history(self, key: str) -> gpd.GeoDataFrame:
        """Every version of a component, oldest first, with ``valid_from`` and ``valid_to``."""
        ...

    def changesets(self, *, layer: str | None = None, limit: int = 100) -> list[Changeset]:
        """The latest changesets, newest first."""
        ...

    def count(self, layer: str) -> int:
        """How many components a layer has now (kept up to date, cheap)."""
        ...

    def extent(self, layer: str) -> BBox | None:
        """Bounding box of a layer in lon/lat, or ``None`` when it is empty."""
        ...

    def changes_since(self, layer: str, changeset: int) -> LayerChanges:
        """Bounding boxes removed and added since ``changeset``, for the live index."""
        ...

    def subscribe(self, callback: Callable[[Changeset], None]) -> None:
        """Call ``callback`` after every changeset this process commits."""
        ...
