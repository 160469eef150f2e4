"""Where a notebook or report map gets its components: a store file, an open store, or a running twin service.

Both kinds answer the same question (the GeoJSON features of one layer within a bbox and a CQL2 filter)
the same way: a store is read through the query service the API itself uses, so sensitive fields come
out masked exactly as the API serves them; a service is read page by page from its items endpoint.
"""

from __future__ import annotations

import contextlib
import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import orjson

from twin.catalogue import Catalogue, load_catalogue
from twin.errors import InvalidQueryError, StoreError
from twin.model.query import MAX_LIMIT, BBox, FeatureQuery
from twin.query import encode
from twin.query.cql import parse_filter
from twin.query.crs import CRS84
from twin.query.filters import check_filter
from twin.query.search import QueryService
from twin.settings import TwinSettings
from twin.store import Store, exists, open_store

Box = tuple[float, float, float, float]


@dataclass
class Layer:
    """Features of one layer as GeoJSON dicts, and whether ``limit`` cut them short."""

    features: list[dict[str, Any]]
    truncated: bool


class Source(Protocol):
    catalogue: Catalogue

    def features(self, layer: str, bbox: Box | None, cql: str | None, limit: int) -> Layer: ...

    def item_url(self, layer: str, key: str) -> str | None: ...

    def close(self) -> None: ...


class StoreSource:
    """Components read from a store through :class:`~twin.query.search.QueryService` (masking included)."""

    def __init__(self, store: Store, *, owned: bool = False) -> None:
        self.store, self.catalogue, self._owned = store, store.catalogue, owned
        self.service = QueryService(store)

    def features(self, layer: str, bbox: Box | None, cql: str | None, limit: int) -> Layer:
        spec = self.catalogue[layer]
        query = FeatureQuery(layer=spec.id, bbox=BBox(*bbox) if bbox else None, limit=min(limit + 1, MAX_LIMIT))
        if cql:
            query = replace(query, filter=check_filter(parse_filter(cql, None), spec, CRS84))
        feats: list[dict[str, Any]] = []
        while len(feats) <= limit:
            rows = self.service.page(query).rows
            feats += orjson.loads(orjson.dumps(encode.features(encode.prepare(rows, CRS84))))
            if len(rows.rows) < query.limit:
                break
            query = replace(query, offset=query.offset + query.limit)
        return Layer(feats[:limit], len(feats) > limit)

    def item_url(self, layer: str, key: str) -> str | None:
        return None

    def close(self) -> None:
        if self._owned:
            self.store.close()


class ApiSource:
    """Components read from a running twin service's ``/collections/{layer}/items`` (any OGC API works),
    as the holder of ``token`` sees them (their area only, personal fields masked for their role)."""

    def __init__(self, url: str, catalogue: Catalogue, *, token: str | None = None, timeout: float = 60.0) -> None:
        self.url, self.catalogue, self.timeout = url.rstrip("/"), catalogue, timeout
        self.headers = {"Accept": "application/geo+json"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"

    def _get(self, url: str) -> dict[str, Any]:
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=self.headers),
                                        timeout=self.timeout) as resp:
                doc = orjson.loads(resp.read())
        except urllib.error.HTTPError as exc:
            body = exc.read().decode("utf-8", "replace")
            with contextlib.suppress(orjson.JSONDecodeError, AttributeError):
                body = orjson.loads(body).get("description", body)
            raise InvalidQueryError(f"{url}: {exc.code} {body[:300]}") from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise StoreError(f"{self.url}: the twin service cannot be reached ({exc})") from None
        except orjson.JSONDecodeError:
            doc = None
        if not isinstance(doc, dict):
            raise StoreError(f"{url}: not a twin service (the answer is not a JSON object)")
        return doc

    def features(self, layer: str, bbox: Box | None, cql: str | None, limit: int) -> Layer:
        params: dict[str, str] = {"limit": str(min(limit + 1, MAX_LIMIT))}
        if bbox:
            params["bbox"] = ",".join(f"{v:.7f}" for v in bbox)
        if cql:
            params["filter"] = cql
        url: str | None = f"{self.url}/collections/{urllib.parse.quote(layer)}/items?{urllib.parse.urlencode(params)}"
        feats: list[dict[str, Any]] = []
        while url and len(feats) <= limit:
            doc = self._get(url)
            feats += doc.get("features", [])
            url = next((lk["href"] for lk in doc.get("links", []) if lk.get("rel") == "next"), None)
        return Layer(feats[:limit], len(feats) > limit)

    def item_url(self, layer: str, key: str) -> str | None:
        return f"{self.url}/collections/{urllib.parse.quote(layer)}/items/{urllib.parse.quote(key)}"

    def close(self) -> None:
        """Nothing to release: every request opens and closes its own connection."""


def open_source(where: Store | Path | str, catalogue: Catalogue | None = None,
                token: str | None = None) -> Source:
    """A source for a store (object or file path) or a service URL (``http://…``).

    The catalogue defaults to ``TWIN_LAYERS`` (the bundled ``layers/``); a service is assumed to use the same.
    A service is read with ``token`` (default: the ``TWIN_TOKEN`` variable), from ``twin user add``.
    """
    if isinstance(where, Store):
        return StoreSource(where)
    text = str(where)
    cat = catalogue or load_catalogue(TwinSettings().layers)
    if text.startswith(("http://", "https://")):
        return ApiSource(text, cat, token=token or os.environ.get("TWIN_TOKEN"))
    if not exists(text):
        raise StoreError(f"{text}: no store here (give a .gpkg store, a postgresql:// store or a twin service URL)")
    return StoreSource(open_store(text, cat, create=False), owned=True)
