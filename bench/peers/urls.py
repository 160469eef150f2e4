"""How each server spells the shared workloads, as request paths relative to its base URL.

Every builder has the same four methods, so a benchmark asks for "items in this box", "this feature",
"this box where a property equals a value" or "this tile" without knowing whose API it talks to.
Equality is the one attribute filter all three servers express:

- tipg: collections are ``public.<layer>``; CQL2 text in ``filter=``; vector tiles at
  ``/collections/{id}/tiles/WebMercatorQuad/{z}/{x}/{y}``; feature ids are twin's keys (``pk=key``).
- pygeoapi: collections are the layer names; an attribute filter is a plain query parameter
  (``status=faulty``: equality is the only filter its OGR and SQLiteGPKG providers take); no vector
  tiles from these providers; ``f=json`` is explicit because a request without ``Accept`` may get HTML.
- twin: its OGC API - Features routes with CQL2 ``filter=``; OGC API - Tiles paths, which order the tile
  as ``{z}/{y}/{x}`` (tileMatrix/tileRow/tileCol), unlike tipg's ``{z}/{x}/{y}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, urlencode

Box = tuple[float, float, float, float]


def _query(params: dict[str, object]) -> str:
    return urlencode(params, quote_via=quote, safe=",")


def bbox_text(box: Box) -> str:
    return ",".join(f"{v:.7f}" for v in box)


def cql_equals(prop: str, value: str) -> str:
    """CQL2 text ``prop = 'value'`` (quotes in the value doubled)."""
    return f"{prop}='{value.replace(chr(39), chr(39) * 2)}'"


@dataclass(frozen=True)
class TipgUrls:
    """tipg 1.x on the PostGIS copy made by ``load.sh``."""

    base: str
    name: str = "tipg"
    schema: str = "public"

    def _items(self, layer: str) -> str:
        return f"/collections/{self.schema}.{layer}/items"

    def items(self, layer: str, bbox: Box, limit: int) -> str:
        return f"{self._items(layer)}?{_query({'bbox': bbox_text(bbox), 'limit': limit})}"

    def item(self, layer: str, key: str) -> str:
        return f"{self._items(layer)}/{quote(key)}"

    def filtered(self, layer: str, bbox: Box, prop: str, value: str, limit: int) -> str:
        params = {"bbox": bbox_text(bbox), "filter": cql_equals(prop, value), "limit": limit}
        return f"{self._items(layer)}?{_query(params)}"

    def tile(self, layer: str, z: int, x: int, y: int) -> str | None:
        return f"/collections/{self.schema}.{layer}/tiles/WebMercatorQuad/{z}/{x}/{y}"


@dataclass(frozen=True)
class PygeoapiUrls:
    """pygeoapi reading the twin GeoPackage itself (OGR or SQLiteGPKG provider)."""

    base: str
    name: str = "pygeoapi"

    def items(self, layer: str, bbox: Box, limit: int) -> str:
        return f"/collections/{layer}/items?{_query({'f': 'json', 'bbox': bbox_text(bbox), 'limit': limit})}"

    def item(self, layer: str, key: str) -> str:
        return f"/collections/{layer}/items/{quote(key)}?f=json"

    def filtered(self, layer: str, bbox: Box, prop: str, value: str, limit: int) -> str:
        params = {"f": "json", "bbox": bbox_text(bbox), prop: value, "limit": limit}
        return f"/collections/{layer}/items?{_query(params)}"

    def tile(self, layer: str, z: int, x: int, y: int) -> str | None:
        return None


@dataclass(frozen=True)
class TwinUrls:
    """twin's own API; ``tile_template`` is a path with ``{layer} {z} {x} {y}`` (None: no tile workload)."""

    base: str
    name: str = "twin"
    tile_template: str | None = "/collections/{layer}/tiles/WebMercatorQuad/{z}/{y}/{x}"

    def items(self, layer: str, bbox: Box, limit: int) -> str:
        return f"/collections/{layer}/items?{_query({'bbox': bbox_text(bbox), 'limit': limit})}"

    def item(self, layer: str, key: str) -> str:
        return f"/collections/{layer}/items/{quote(key)}"

    def filtered(self, layer: str, bbox: Box, prop: str, value: str, limit: int) -> str:
        params = {"bbox": bbox_text(bbox), "filter": cql_equals(prop, value), "limit": limit}
        return f"/collections/{layer}/items?{_query(params)}"

    def tile(self, layer: str, z: int, x: int, y: int) -> str | None:
        if self.tile_template is None:
            return None
        return self.tile_template.format(layer=layer, z=z, x=x, y=y)


PeerUrls = TipgUrls | PygeoapiUrls | TwinUrls
