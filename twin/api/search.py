"""Twin extensions: nearest-k in a layer, search across every layer, and look-up of a key in any layer."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from twin.api import render
from twin.api.auth import Who
from twin.api.deps import (
    CrsParam,
    FormatParam,
    LayerPath,
    PointCrsParam,
    parse_point,
    radius_search,
    readable_spec,
    service,
)
from twin.api.negotiation import FEATURE, FEATURES, MEDIA_TYPES, choose
from twin.api.versions import AsOf
from twin.errors import InvalidQueryError
from twin.model.query import MAX_LIMIT
from twin.model.rows import Rows
from twin.query import encode
from twin.query.crs import resolve_crs
from twin.query.model import clamp_limit
from twin.query.search import MAX_K, parse_geometry
from twin.query.versions import as_of_stamp

router = APIRouter(tags=["twin extensions"])
_EXT = {"x-twin-extension": True}


@router.get("/collections/{collectionId}/nearest", summary="Twin extension: the k components nearest a point",
            description="Exact metric nearest-k from the store's spatial index (ties, to the micrometre, broken "
                        "by id). Each feature carries `distance_m` (metres) and `rank` (1 = nearest).",
            openapi_extra=_EXT,
            responses={200: {"content": {MEDIA_TYPES[k]: {} for k in FEATURES if k != "json"}}})
def nearest(request: Request, who: Who, layer: LayerPath,
            point: Annotated[str, Query(description="lon,lat (CRS84, or `point-crs`).")],
            k: Annotated[int, Query(ge=1, le=MAX_K, description=f"How many, 1 to {MAX_K}.")] = 5,
            point_crs: PointCrsParam = None, crs: CrsParam = None, f: FormatParam = None,
            as_of: AsOf = None) -> Response:
    fmt = choose(request, f, FEATURES)
    spec = readable_spec(request, layer, who)
    lon, lat = parse_point(point, resolve_crs(point_crs, name="point-crs"), "point")
    moment = None if as_of is None else as_of_stamp(as_of)
    rows, extra = service(request).nearest(spec.id, lon, lat, k, who, moment)
    render.audit_download(request, who, fmt, spec.id, len(rows.rows))
    tail = {"numberReturned": len(rows.rows), "timeStamp": render.now_stamp(), **render.as_of_member(moment),
            "links": render.self_links(request, FEATURES, fmt)}
    return render.stamped(render.features_response(request, fmt, rows, resolve_crs(crs), tail, extra=extra,
                                                   title=f"{spec.title_zh} · nearest {k}"), moment)


@router.get("/search", summary="Twin extension: search every layer by geometry or radius",
            description="Every component, whatever its layer, that intersects `intersects` (or lies within "
                        "`distance` metres of it: a corridor along a line), or lies within `radius` metres of "
                        "`near`. Features carry their `layer`.", openapi_extra=_EXT,
            responses={200: {"content": {MEDIA_TYPES[k]: {} for k in FEATURES if k != "json"}}})
def search(request: Request, who: Who,
           intersects: Annotated[str | None, Query(description="WKT or GeoJSON geometry (CRS84, or "
                                                   "`intersects-crs`).")] = None,
           intersects_crs: Annotated[str | None, Query(alias="intersects-crs", description="CRS of `intersects`.")
                                     ] = None,
           distance: Annotated[float, Query(ge=0, le=5000, description="Metres around `intersects` (0: touch it).")
                               ] = 0.0,
           near: Annotated[str | None, Query(description="lon,lat of a radius search.")] = None,
           radius: Annotated[float | None, Query(description="Radius of `near` in metres.")] = None,
           layers: Annotated[str | None, Query(description="Comma-separated layer ids (default: all).")] = None,
           limit: Annotated[int, Query(ge=1, description=f"Most features in all (clamped to {MAX_LIMIT}).",
                                       json_schema_extra={"maximum": MAX_LIMIT})] = 100,
           point_crs: PointCrsParam = None, crs: CrsParam = None, f: FormatParam = None,
           as_of: AsOf = None) -> Response:
    fmt = choose(request, f, ("geojson", "json", "html", "csv"))
    moment = None if as_of is None else as_of_stamp(as_of)
    if intersects is not None and near is not None:
        raise InvalidQueryError("give either intersects or near, not both")
    geometry = None
    if intersects is not None:
        geometry = parse_geometry(intersects, resolve_crs(intersects_crs, name="intersects-crs"))
    names = [n.strip() for n in layers.split(",") if n.strip()] if layers else None
    found, truncated = service(request).search(geometry=geometry, distance=distance,
                                               near=radius_search(near, radius, point_crs), layers=names,
                                               limit=clamp_limit(limit), who=who, as_of=moment)
    render.audit_download(request, who, fmt, ",".join(r.spec.id for r in found if r.rows),
                          sum(len(r.rows) for r in found))
    return render.stamped(_mixed(request, fmt, found, resolve_crs(crs), truncated, moment), moment)


def _mixed(request: Request, fmt: str, found: list[Rows], crs, truncated: bool,  # type: ignore[no-untyped-def]
           moment: str | None) -> Response:
    """Features of several layers in one answer (GeoJSON, HTML or CSV)."""
    parts = [(rows.spec.id, encode.prepare(rows, crs, axis_order=fmt != "csv")) for rows in found if rows.rows]
    total = sum(len(enc.ids) for _, enc in parts)
    if fmt == "csv":
        body = encode.csv_bytes(*(enc for _, enc in parts), layers=[layer for layer, _ in parts])
        return Response(body, media_type="text/csv; charset=utf-8")
    feats = [feat for layer, enc in parts for feat in encode.features(enc, layer)]
    tail = {"numberReturned": total, "twin:truncated": truncated, "timeStamp": render.now_stamp(),
            **render.as_of_member(moment),
            "links": render.self_links(request, ("geojson", "html", "csv"), fmt)}
    if fmt == "html":
        return render.html_response("search.html", feats=feats, tail=tail)
    return Response(b"".join(encode.geojson_chunks(feats, tail)), media_type=MEDIA_TYPES["geojson"],
                    headers=render.crs_headers(crs))


@router.get("/keys/{key}", summary="Twin extension: a component by its location key, whatever its layer",
            description="Redirects (307) to `/collections/{layer}/items/{key}`, with the same `crs` and `f`; 404 for "
                        "an unknown key.",
            openapi_extra=_EXT, response_class=RedirectResponse, status_code=307,
            responses={404: {"description": "No such component"}})
def key_lookup(request: Request, who: Who, key: str, crs: CrsParam = None, f: FormatParam = None) -> Response:
    choose(request, f, FEATURE)
    layer = service(request).layer_of(key, who)
    url = request.url_for("item", collectionId=layer, key=key)
    if request.url.query:
        url = url.replace(query=request.url.query)
    return RedirectResponse(str(url), status_code=307)
