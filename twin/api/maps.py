"""The planners' web map (``/map``), the import page (``/import``) and the static files both load (``/static``).

Nothing these pages use comes from outside the service: Leaflet and its plugins are served from
``twin/api/static/vendor`` and the offline basemap's roads from twin's own data.
"""

from __future__ import annotations

import gzip
import hashlib
from functools import cache

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.routing import Mount, NoMatchFound

from twin.api import render
from twin.maps.assets import STATIC_DIR
from twin.maps.basemap import MapSettings, online_basemaps, roads_geojson_gz
from twin.maps.page import import_page, map_config, map_page

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
    return request.scope.get("root_path", "") + path


def _config(request: Request) -> dict[str, object]:
    state = request.app.state
    settings: MapSettings = state.map_settings
    city = getattr(getattr(state, "settings", None), "city_bbox", (120.85, 30.67, 122.25, 31.88))
    return map_config(state.service.store, settings, root=request.scope.get("root_path", ""),
                      tiles=_tiles_template(request), city_bbox=tuple(city))


@router.get("/map", name="map")
def map_html(request: Request) -> HTMLResponse:
    """The twin map of Shanghai: every layer, search, measure, nearby, basemaps; Chinese first."""
    html = map_page(_config(request), assets=request.scope.get("root_path", "") + _STATIC)
    return HTMLResponse(html, headers={"Cache-Control": "no-cache"})


@router.get("/map/config.json", name="map_config")
def map_config_json(request: Request) -> Response:
    """The map's configuration: layers with styles, Chinese field titles, counts and drawing modes; basemaps."""
    return render.json_response(_config(request), headers={"Cache-Control": "no-cache"})


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
def import_html(request: Request) -> HTMLResponse:
    """The import page for GIS staff: upload, dry run drawn on the map, confirm or cancel."""
    html = import_page(_config(request), assets=request.scope.get("root_path", "") + _STATIC)
    return HTMLResponse(html, headers={"Cache-Control": "no-cache"})


def install(app: FastAPI, settings: MapSettings | None = None) -> None:
    """Add the map pages to ``app`` and mount ``twin/api/static`` at ``/static`` (unless already mounted).

    The import page drives ``POST /collections/{layer}/import`` of :mod:`twin.api.imports`.
    """
    app.state.map_settings = settings or MapSettings()
    online_basemaps(app.state.map_settings)  # a misconfigured basemap fails at start-up, not on the first page
    app.include_router(router)
    if not any(isinstance(r, Mount) and r.path == _STATIC for r in app.routes):
        app.mount(_STATIC, StaticFiles(directory=STATIC_DIR), name="static")
