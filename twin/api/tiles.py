"""Vector tile routes (OGC API - Tiles, TileJSON and a ``/tiles/{layers}/{z}/{x}/{y}.mvt`` shortcut) over
:class:`tiles.TileEngine`.

Tiles go out gzip-compressed when the client accepts it, with a strong ETag (``If-None-Match`` gives
304) and ``Cache-Control`` that makes clients revalidate, so an edit shows on the next request. An
empty tile is a 204.

Every route serves the caller's view (:class:`tiles.view.View`): layers they may not read are a 401 or
403, a scoped user gets only their area (a tile that does not meet it is a 404), personal fields are
masked by role. Answers that depend on the caller are ``private`` and vary by ``Authorization`` and
``Cookie``.
"""

from __future__ import annotations

import gzip
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response

from tiles import TileEngine, TileFilter, parse_tile
from tiles import metadata as meta
from tiles.grid import TMS_ID
from tiles.view import View
from twin.access import Principal
from twin.api.auth import Who
from twin.api.render import json_response
from twin.errors import InvalidQueryError
from twin.query.versions import as_of_stamp

#: OGC API - Tiles conformance classes these routes implement (for the landing page's /conformance).
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tileset",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tilesets-list",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/geodata-tilesets",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/mvt",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/tms/2.0/conf/json-tilematrixset",
]
_TAG = "Vector tiles"
#: Every tile answer depends on who asks (their layers, area and unmasked fields).
VARY = "Accept-Encoding, Authorization, Cookie"

FilterParam = Annotated[str | None, Query(description="CQL2 filter, as for the features API.")]
FilterLangParam = Annotated[str | None, Query(alias="filter-lang", description="cql2-text (default) or cql2-json.")]
FilterCrsParam = Annotated[str | None, Query(alias="filter-crs", description="CRS of geometries in `filter`.")]
DatetimeParam = Annotated[str | None, Query(description="Instant or interval on `updated_at` (RFC 3339).")]
AsOfParam = Annotated[str | None, Query(description="An instant (RFC 3339, or a date: its end): the components as "
                                                     "they were then, from their history")]
#: The map adds ``?v=<its view's tag>`` to tile URLs so that a browser never reuses a tile drawn for another view.
CacheKeyParam = Annotated[str | None, Query(max_length=200, description="Ignored: a cache key of the client's "
                                            "choosing (the map sends a tag of the signed-in user's view).")]


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _check_tms(tms: str) -> None:
    if tms != TMS_ID:
        raise HTTPException(404, f"unknown tile matrix set {tms[:60]!r}; this service offers {TMS_ID}")


def _accepts_gzip(request: Request) -> bool:
    for item in request.headers.get("accept-encoding", "").split(","):
        name, _, params = item.strip().partition(";")
        if name.strip().lower() in ("gzip", "*"):
            q = params.strip().removeprefix("q=")
            return not (params and q.replace(".", "", 1).isdigit() and float(q) == 0)
    return False


def _matches(request: Request, etag: str) -> bool:
    header = request.headers.get("if-none-match")
    if not header:
        return False
    tags = {t.strip().removeprefix("W/").strip('"') for t in header.split(",")}
    return "*" in tags or etag in tags


class _Routes:
    """The route handlers, bound to one engine."""

    def __init__(self, engine: TileEngine, city_bbox: tuple[float, float, float, float]) -> None:
        self.engine = engine
        self.city_bbox = city_bbox

    def headers(self, who: Principal, layers: tuple[str, ...], view: View) -> dict[str, str]:
        """Caching headers: shared caches may keep only what everyone sees alike (public layers, masked,
        unscoped); everything else is ``private``. Either way the answer depends on the credentials."""
        public = set(layers) <= set(who.policy.public_layers) and not view.variant(layers)
        age = self.engine.settings.max_age
        control = f"max-age={age}, must-revalidate" if age else "no-cache"
        if public:
            return {"Cache-Control": f"public, {control}" if age else control, "Vary": VARY}
        return {"Cache-Control": f"private, {control}", "Vary": VARY}

    def view(self, who: Principal, layers: tuple[str, ...]) -> View:
        """What ``who`` sees of ``layers`` (401 or 403 when one of them may not be read)."""
        return View.of(who, layers, self.engine.catalogue)

    def bounds(self, layers: tuple[str, ...], view: View) -> tuple[float, float, float, float]:
        """The layers' extent; for a scoped view, its area's bounds cut to that extent."""
        boxes = [b for b in (self.engine.store.extent(layer) for layer in layers) if b is not None]
        data = self.city_bbox if not boxes else (
            min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))
        if view.area is None:
            return data
        a = view.area.bounds
        cut = (max(a[0], data[0]), max(a[1], data[1]), min(a[2], data[2]), min(a[3], data[3]))
        return cut if cut[0] <= cut[2] and cut[1] <= cut[3] else a

    def tile_response(self, request: Request, who: Principal, layers: tuple[str, ...], view: View, z: str, x: str,
                      y: str, flt: TileFilter) -> Response:
        result = self.engine.tile(layers, parse_tile(z, x, y), flt, view)
        headers = {"ETag": f'"{result.etag}"', "Twin-Tile-Source": result.source, **self.headers(who, layers, view)}
        if _matches(request, result.etag):
            return Response(status_code=304, headers=headers)
        if result.empty:
            return Response(status_code=204, headers=headers)
        if _accepts_gzip(request):
            return Response(result.gz, media_type=meta.MVT_MEDIA_TYPE, headers={**headers, "Content-Encoding": "gzip"})
        return Response(gzip.decompress(result.gz), media_type=meta.MVT_MEDIA_TYPE, headers=headers)

    def document(self, doc: dict[str, Any], who: Principal, layers: tuple[str, ...], view: View) -> Response:
        return json_response(doc, headers=self.headers(who, layers, view))

    def matrix_sets(self, request: Request) -> Response:
        return json_response(meta.tile_matrix_sets(_base(request)))

    def matrix_set(self, tms: str) -> Response:
        _check_tms(tms)
        return json_response(meta.tile_matrix_set())

    def layer_tilesets(self, request: Request, who: Who, layer: str) -> Response:
        spec = self.engine.catalogue[layer]
        view = self.view(who, (spec.id,))
        return self.document(meta.tilesets(_base(request), spec), who, (spec.id,), view)

    def layer_tileset(self, request: Request, who: Who, layer: str, tms: str) -> Response:
        spec = self.engine.catalogue[layer]
        _check_tms(tms)
        view = self.view(who, (spec.id,))
        doc = meta.tileset(_base(request), spec, self.engine.aggregates, self.bounds((spec.id,), view), view)
        return self.document(doc, who, (spec.id,), view)

    def layer_tilejson(self, request: Request, who: Who, layer: str, tms: str) -> Response:
        spec = self.engine.catalogue[layer]
        _check_tms(tms)
        view = self.view(who, (spec.id,))
        url = f"{_base(request)}/collections/{spec.id}/tiles/{TMS_ID}/{{z}}/{{y}}/{{x}}"
        doc = meta.tilejson(spec.id, [spec], self.engine.aggregates, url, self.bounds((spec.id,), view), view)
        return self.document(doc, who, (spec.id,), view)

    def layer_tile(self, request: Request, who: Who, layer: str, tms: str, z: str, y: str, x: str,
                   filter: FilterParam = None, filter_lang: FilterLangParam = None, filter_crs: FilterCrsParam = None,
                   datetime: DatetimeParam = None, as_of: AsOfParam = None, f: Annotated[str | None, Query()] = None,
                   v: CacheKeyParam = None) -> Response:
        spec = self.engine.catalogue[layer]
        _check_tms(tms)
        view = self.view(who, (spec.id,))
        if f not in (None, "mvt", "pbf"):
            raise InvalidQueryError(f"f={f[:40]!r}: tiles are only offered as mvt")
        flt = TileFilter(cql=filter, lang=filter_lang, crs=filter_crs, datetime=datetime,
                         as_of=None if as_of is None else as_of_stamp(as_of))
        return self.tile_response(request, who, (spec.id,), view, z, x, y, flt)

    def combined_tilejson(self, request: Request, who: Who, layers: str) -> Response:
        names = self.engine.layers(layers)
        view = self.view(who, names)
        url = f"{_base(request)}/tiles/{','.join(names)}/{{z}}/{{x}}/{{y}}.mvt"
        specs = [self.engine.catalogue[n] for n in names]
        doc = meta.tilejson(",".join(names), specs, self.engine.aggregates, url, self.bounds(names, view), view)
        return self.document(doc, who, names, view)

    def combined_tile(self, request: Request, who: Who, layers: str, z: str, x: str, y: str,
                      filter: FilterParam = None, filter_lang: FilterLangParam = None,
                      filter_crs: FilterCrsParam = None, datetime: DatetimeParam = None, as_of: AsOfParam = None,
                      v: CacheKeyParam = None) -> Response:
        names = self.engine.layers(layers)
        view = self.view(who, names)
        flt = TileFilter(cql=filter, lang=filter_lang, crs=filter_crs, datetime=datetime,
                         as_of=None if as_of is None else as_of_stamp(as_of))
        return self.tile_response(request, who, names, view, z, x, y, flt)


_TILE_RESPONSES: dict[int | str, dict[str, Any]] = {200: {"content": {meta.MVT_MEDIA_TYPE: {}}}, 204: {}, 304: {}}


def tiles_router(engine: TileEngine, city_bbox: tuple[float, float, float, float]) -> APIRouter:
    """The tile routes over ``engine`` (``city_bbox``: the extent of layers that hold nothing yet); mount with
    ``app.include_router(tiles_router(engine, bbox))``."""
    r = _Routes(engine, city_bbox)
    router = APIRouter(tags=[_TAG])
    for path, handler, summary in (
        ("/tileMatrixSets", r.matrix_sets, "Tile matrix sets offered"),
        ("/tileMatrixSets/{tms}", r.matrix_set, "A tile matrix set's definition"),
        ("/collections/{layer}/tiles", r.layer_tilesets, "A layer's vector tilesets"),
        ("/collections/{layer}/tiles/{tms}", r.layer_tileset, "A layer's vector tileset"),
        ("/collections/{layer}/tiles/{tms}/tilejson.json", r.layer_tilejson, "TileJSON 3.0.0 of a layer's tiles"),
        ("/tiles/{layers}/tilejson.json", r.combined_tilejson, "TileJSON 3.0.0 of a combined tile set"),
    ):
        router.add_api_route(path, handler, methods=["GET"], summary=summary)
    router.add_api_route("/collections/{layer}/tiles/{tms}/{z}/{y}/{x}", r.layer_tile, methods=["GET"],
                         summary="A vector tile of a layer", response_class=Response, responses=_TILE_RESPONSES)
    router.add_api_route("/tiles/{layers}/{z}/{x}/{y}.mvt", r.combined_tile, methods=["GET"],
                         summary="A vector tile of one or more layers (comma-separated)", response_class=Response,
                         responses=_TILE_RESPONSES)
    return router
