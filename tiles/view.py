"""What one caller may see in a tile: their area (when scoped) and, per layer, the personal fields seen unmasked.

The engine draws, caches and validates tiles per :class:`View`, never per user: callers whose role and area
give the same view share cached tiles, and a tile drawn for one view is never served to another. The
default :data:`MASKED` view (the whole city, every personal field masked) is the one pre-built pyramids hold.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from tiles.grid import TileID
from twin.access import Area, Principal
from twin.catalogue import Catalogue
from twin.errors import OutOfScopeError, TwinError


class TileOutOfScopeError(OutOfScopeError):
    """A tile that does not meet the caller's area: answered as a 404, like a component outside it."""

    def __init__(self, tile: TileID) -> None:
        TwinError.__init__(self, f"tile {tile} does not meet your area")
        self.key = str(tile)


@lru_cache(maxsize=1024)
def _area_name(area: Area) -> str:
    """The area's key and a digest of its outline (an edited outline is another view)."""
    return f"{area.key}@{hashlib.blake2b(area.wkb, digest_size=8).hexdigest()}"


@dataclass(frozen=True)
class View:
    """An area (``None``: the whole city) and, for layers with any, the personal fields seen as stored."""

    area: Area | None = None
    unmasked: tuple[tuple[str, frozenset[str]], ...] = ()

    @classmethod
    def of(cls, who: Principal, layers: Iterable[str], catalogue: Catalogue) -> View:
        """``who``'s view of ``layers``; 401 or 403 (:meth:`Principal.check_read`) when one may not be read."""
        pairs = []
        for layer in layers:
            who.check_read(layer)
            fields = who.unmasked(catalogue[layer])
            if fields:
                pairs.append((layer, fields))
        return cls(who.area, tuple(pairs))

    def fields(self, layer: str) -> frozenset[str]:
        """Personal fields of ``layer`` seen unmasked."""
        return next((f for name, f in self.unmasked if name == layer), frozenset())

    def variant(self, layers: Iterable[str]) -> str:
        """A stable name of what this view shows of ``layers`` ('' for :data:`MASKED`), for cache keys."""
        wanted = set(layers)
        parts = [f"{name}:{','.join(sorted(f))}" for name, f in self.unmasked if name in wanted]
        if self.area is not None:
            parts.insert(0, _area_name(self.area))
        if not parts:
            return ""
        return "v" + hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).hexdigest()


#: The whole city with every personal field masked: the view of pre-built pyramids and of in-process callers.
MASKED = View()
