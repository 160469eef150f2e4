"""Areas a user can be scoped to: components of the administrative layers (区, 街道, 居委), by key
(the :class:`~twin.model.area.Area` value itself lives with the other shared values)."""

from __future__ import annotations

import threading

import shapely

from twin.errors import AccessConfigError, FeatureNotFoundError, InvalidKeyError, LayerNotFoundError
from twin.model.area import Area
from twin.store import Changeset, Store


class AreaResolver:
    """Areas by key, read from the store's administrative layers and kept until the store's change feed says that
    layer changed (by any writer)."""

    def __init__(self, store: Store, layers: tuple[str, ...]) -> None:
        self.store = store
        self.layers = layers
        self._cache: dict[str, tuple[int, Area]] = {}
        self._changed: dict[str, int] = {}  # the last changeset of each area layer the feed published
        self._lock = threading.Lock()
        store.feed.subscribe(self._on_changeset)

    def close(self) -> None:
        self.store.feed.unsubscribe(self._on_changeset)

    def _on_changeset(self, cs: Changeset) -> None:
        if cs.layer in self.layers:
            with self._lock:
                self._changed[cs.layer] = max(cs.id, self._changed.get(cs.layer, 0))

    def get(self, key: str) -> Area:
        """The area of ``key``; :class:`AccessConfigError` when it is not a component of an area layer."""
        try:
            layer = self.store.layer_of(key)
        except (InvalidKeyError, LayerNotFoundError):
            raise AccessConfigError(f"area {key!r} is not the key of a {'/'.join(self.layers)} component") from None
        if layer not in self.layers:
            raise AccessConfigError(f"area {key!r} is a {layer} component; areas come from "
                                    f"{', '.join(self.layers)}")
        self.store.feed.sync()
        with self._lock:
            version = self._changed.get(layer, 0)  # an entry read after this is current unless a later one comes
            cached = self._cache.get(key)
            if cached is not None and cached[0] >= version:
                return cached[1]
        try:
            frame = self.store.get(key)
        except FeatureNotFoundError:  # a missing area is the user's configuration, not the request, at fault
            raise AccessConfigError(f"area {key!r} does not exist (deleted, or never imported)") from None
        geom = shapely.make_valid(frame.geometry.iloc[0])
        name = str(frame["name"].iloc[0]) if "name" in frame.columns else key
        area = Area(key, layer, name, geom)
        with self._lock:
            self._cache[key] = (version, area)
        return area
