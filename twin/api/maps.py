"""The planners' web map (``/map``), the import page (``/import``) and the static files both load (``/static``).

Nothing these pages use comes from outside the service: Leaflet and its plugins are served from
``twin/api/static/vendor`` and the offline basemap's roads from twin's own data.

Both pages are built for the signed-in user: only the layers they may read (counted inside their area),
fields as their role sees them, their area outlined, and on the import page only the layers they may
write. A visitor who can read nothing is sent to ``/login``; someone who may import nothing gets a 403 page.
"""

from __future__ import annotations

import gzip
import hashlib
from functools import cache
from typing import Any, cast
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.routing import Mount, NoMatchFound

from twin.access import Principal
from twin.api import render
from twin.api.auth import Who, gate
from twin.api.features import scoped_extent
from twin.errors import AuthenticationError
from twin.maps.assets import STATIC_DIR
from twin.maps.basemap import online_basemaps, roads_geojson_gz
from twin.maps.page import import_page, map_config, map_page
from twin.maps.viewer import ROLE_NAMES, Seen
from twin.settings import MapSettings

router = APIRouter(include_in_schema=False)
_STATIC = "/static"
#: Name of the tile route of :mod:`twin.api.tiles` (``/tiles/{layers}/{z}/{x}/{y}.mvt``) the map draws from.
_TILE_ROUTE = "combined_tile"


def _tiles_template(request: Request) -> str | None:
    """The URL template of the service's combined vector tiles (``/tiles/{layers}/{z}/{x}/{y}.mvt``), if served."""
    marks = {"layers": "LAYERS", "z": "ZZ", "x": "XX", "y": "YY"}
    try:
        path = str(request.app.url_path_for(_TILE_ROUTE, **marks))
    except NoMatchFound:
        return None
    for name, mark in marks.items():
        path = path.replace(mark, "{" + name + "}")
    return _root(request) + path


#: Pages and configurations differ per user: never cached, never shared.
_PRIVATE = {"Cache-Control": "private, no-store"}


def _root(request: Request) -> str:
    return cast(str, request.scope.get("root_path", ""))


def _config(request: Request, who: Principal) -> dict[str, Any]:
    """The map's configuration for ``who``: the layers they may read, counted inside their area."""
    state = request.app.state
    settings: MapSettings = state.map_settings
    city = getattr(getattr(state, "settings", None), "city_bbox", (120.85, 30.67, 122.25, 31.88))
    catalogue = state.service.catalogue
    seen = {}
    for layer in who.readable(list(catalogue)):
        extent, count, exact = scoped_extent(request, catalogue[layer], who)
        seen[layer] = Seen(count, extent, exact)
    return map_config(catalogue, seen, settings, who, root=_root(request), tiles=_tiles_template(request),
                      city_bbox=tuple(city))


def _reads_nothing(request: Request, who: Principal) -> bool:
    return who.anonymous and not who.readable(list(request.app.state.service.catalogue))


def _to_login(request: Request, page: str) -> RedirectResponse:
    """Send a visitor to the sign-in page, which brings them back to ``page`` (the browser keeps the #view)."""
    root = _root(request)
    return RedirectResponse(f"{root}/login?next={quote(root + page, safe='/')}", status_code=303)


@router.get("/map", name="map")
def map_html(request: Request, who: Who) -> Response:
    """The twin map of Shanghai: every layer the user may read, search, measure, nearby, basemaps; Chinese first."""
    if _reads_nothing(request, who):
        return _to_login(request, "/map")
    html = map_page(_config(request, who), assets=_root(request) + _STATIC)
    return HTMLResponse(html, headers=_PRIVATE)


@router.get("/map/config.json", name="map_config")
def map_config_json(request: Request, who: Who) -> Response:
    """The map's configuration for the caller: readable layers with styles, fields as their role sees them,
    counts and extents inside their area, drawing modes; basemaps; the user and their area."""
    if _reads_nothing(request, who):
        raise AuthenticationError("the map needs a token: sign in at /login, or send 'Authorization: Bearer <token>'")
    return render.json_response(_config(request, who), headers=_PRIVATE)


@cache
def _roads_etag() -> str:
    return '"' + hashlib.blake2b(roads_geojson_gz(), digest_size=10).hexdigest() + '"'


@router.get("/map/basemap/roads.geojson", name="map_roads")
def roads(request: Request) -> Response:
    """The offline basemap's main roads (gzipped GeoJSON, property ``c``: 0 expressway/trunk, 1 main, 2 other)."""
    etag = _roads_etag()
    headers = {"ETag": etag, "Cache-Control": "public, max-age=86400", "Vary": "Accept-Encoding"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    body = roads_geojson_gz()
    if "gzip" in request.headers.get("accept-encoding", ""):
        return Response(body, media_type="application/geo+json", headers={**headers, "Content-Encoding": "gzip"})
    return Response(gzip.decompress(body), media_type="application/geo+json", headers=headers)


@router.get("/import", name="import_page")
def import_html(request: Request, who: Who) -> Response:
    """The import page for GIS staff: upload, dry run drawn on the map, confirm or cancel.

    Only the layers the user may write are offered; a user who may write none gets a 403 page (audited).
    """
    if who.anonymous:
        return _to_login(request, "/import")
    config = _config(request, who)
    if not config["writable"]:
        return _forbidden(request, who)
    return HTMLResponse(import_page(config, assets=_root(request) + _STATIC), headers=_PRIVATE)


def _forbidden(request: Request, who: Principal) -> HTMLResponse:
    gate(request).audit.record("denied", "denied", user=who.name, role=who.role.name, status=403,
                               method=request.method, path=request.url.path[:500],
                               detail=f"role {who.role.name!r} may not write any layer: import page refused")
    zh, en = ROLE_NAMES.get(who.role.name, (who.role.name, who.role.name))
    page = render.html_response("forbidden.html", root=_root(request) or "/", user=who.name, role=who.role.name,
                                role_zh=zh, role_en=en, map_url=_root(request) + "/map",
                                logout_url=_root(request) + "/logout")
    page.status_code = 403
    page.headers.update(_PRIVATE)
    return page


def install(app: FastAPI, settings: MapSettings) -> None:
    """Add the map pages to ``app`` and mount ``twin/api/static`` at ``/static`` (unless already mounted).

    The import page drives ``POST /collections/{layer}/import`` of :mod:`twin.api.imports`.
    """
    app.state.map_settings = settings
    online_basemaps(app.state.map_settings)  # a misconfigured basemap fails at start-up, not on the first page
    app.include_router(router)
    if not any(isinstance(r, Mount) and r.path == _STATIC for r in app.routes):
        app.mount(_STATIC, StaticFiles(directory=STATIC_DIR), name="static")
