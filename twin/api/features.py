"""OGC API - Features Parts 1-3: landing page, conformance, collections, items, one item, queryables."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from twin.access import Principal
from twin.api import render
from twin.api.auth import ANONYMOUS_NOTE, Who, challenge
from twin.api.deps import CrsParam, FormatParam, ItemsRequest, LayerPath, items_request, readable_spec, service
from twin.api.edits import CONFORMANCE as EDIT_CONFORMANCE
from twin.api.negotiation import DOCUMENT, FEATURE, FEATURES, MEDIA_TYPES, choose
from twin.api.tiles import CONFORMANCE as TILES_CONFORMANCE
from twin.api.versions import AsOf, item_as_of
from twin.catalogue import FieldType, LayerSpec
from twin.errors import FeatureNotFoundError
from twin.model.query import Box, FeatureQuery
from twin.query import encode
from twin.query.crs import CRS84, EXTENSION_CRS, SUPPORTED_CRS, resolve_crs
from twin.query.filters import GEOMETRY, Queryable, queryables
from twin.query.versions import as_of_stamp

router = APIRouter(tags=["OGC API - Features"])
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators",
    "http://www.opengis.net/spec/cql2/1.0/conf/case-insensitive-comparison",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions-plus",
    "http://www.opengis.net/spec/cql2/1.0/conf/spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/property-property",
    "http://www.opengis.net/spec/cql2/1.0/conf/arithmetic",
    *TILES_CONFORMANCE,
    *EDIT_CONFORMANCE,
]
_JSON_TYPES = {FieldType.string: {"type": "string"}, FieldType.integer: {"type": "integer"},
               FieldType.float: {"type": "number"}, FieldType.boolean: {"type": "boolean"},
               FieldType.date: {"type": "string", "format": "date"},
               FieldType.datetime: {"type": "string", "format": "date-time"}}
_GEOMETRY_FORMATS = {"point": "geometry-point", "line": "geometry-multilinestring",
                     "polygon": "geometry-multipolygon", "point_or_polygon": "geometry-any"}


def property_schema(qa: Queryable) -> dict[str, object]:
    """The JSON Schema of a non-geometry queryable."""
    schema: dict[str, object] = dict(_JSON_TYPES[FieldType(qa.type)])
    if qa.values:
        schema["enum"] = list(qa.values)
    return schema


@router.get("/", summary="Landing page")
def landing(request: Request, who: Who, f: FormatParam = None) -> Response:
    fmt = choose(request, f, DOCUMENT)
    base = request.url_for("landing")
    doc = {
        "title": "twin 上海城市数字孪生地图 · OGC API - Features",
        "description": "City components of Shanghai (street lights, hydrants, pipelines, sites, compounds, heritage, "
                       "administrative areas), queryable by location, attributes and CQL2 filters."
                       + (f" {ANONYMOUS_NOTE}" if who.anonymous else ""),
        "links": [
            *render.self_links(request, DOCUMENT, fmt),
            render.link(request.url_for("openapi"), "service-desc", "application/vnd.oai.openapi+json;version=3.0",
                        "OpenAPI definition"),
            render.link(request.url_for("api_html"), "service-doc", "text/html", "API documentation"),
            render.link(request.url_for("conformance"), "conformance", "application/json", "Conformance classes"),
            render.link(request.url_for("conformance"), "http://www.opengis.net/def/rel/ogc/1.0/conformance",
                        "application/json", "Conformance classes"),
            render.link(request.url_for("collections"), "data", "application/json", "Collections (layers)"),
            render.link(request.url_for("collections"), "http://www.opengis.net/def/rel/ogc/1.0/data",
                        "application/json", "Collections (layers)"),
            render.link(request.url_for("search"), "search", "application/geo+json",
                        "Twin extension: search every layer"),
        ],
    }
    if fmt == "html":
        return render.html_response("landing.html", doc=doc, base=base)
    return render.json_response(doc, headers=challenge(who))


@router.get("/conformance", summary="Conformance classes")
def conformance(request: Request, f: FormatParam = None) -> Response:
    fmt = choose(request, f, DOCUMENT)
    if fmt == "html":
        return render.html_response("conformance.html", classes=CONFORMANCE)
    return render.json_response({"conformsTo": CONFORMANCE})


def scoped_extent(request: Request, spec: LayerSpec, who: Principal) -> tuple[Box | None, int, bool]:
    """The layer's extent and count as ``who`` sees them: for a user with an area, only what lies in it
    (the count exact up to the query API's cap, then flagged as a lower bound)."""
    with service(request).read() as snap:
        extent = snap.extent(spec.id)
        if who.area is None:
            return extent, snap.layer_count(spec.id), True
        a = who.area.bounds
        if extent is not None:
            extent = (max(a[0], extent[0]), max(a[1], extent[1]), min(a[2], extent[2]), min(a[3], extent[3]))
            if extent[0] > extent[2] or extent[1] > extent[3]:
                extent = None
        count, exact = snap.count(FeatureQuery(layer=spec.id, scope=who.area))
    return (extent if count else None), count, exact


def collection_doc(request: Request, spec: LayerSpec, who: Principal) -> dict[str, object]:
    """One collection's metadata: titles in Chinese and English, extent, CRSs, links."""
    extent, count, exact = scoped_extent(request, spec, who)
    items = request.url_for("items", collectionId=spec.id)
    with service(request).read() as snap:
        last = snap.last_change(spec.id)
    return {
        "id": spec.id,
        "title": f"{spec.title_zh} {spec.title_en}",
        "description": spec.description,
        "itemType": "feature",
        "extent": {
            "spatial": {"bbox": [list(extent) if extent else [-180.0, -90.0, 180.0, 90.0]], "crs": CRS84.uri},
            "temporal": {"interval": [[None, last]],
                         "trs": "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"},
        },
        "crs": list(SUPPORTED_CRS),
        "storageCrs": CRS84.uri,
        "twin:extensionCrs": list(EXTENSION_CRS),
        "twin:code": spec.code,
        "twin:geometry": spec.geometry.value,
        "twin:count": count,
        "twin:countExact": exact,
        "links": [
            render.link(request.url_for("collection", collectionId=spec.id), "self", "application/json", spec.title_en),
            render.link(items, "items", "application/geo+json", "Features as GeoJSON"),
            render.link(str(items) + "?f=html", "items", "text/html", "Features as HTML"),
            render.link(request.url_for("queryables", collectionId=spec.id),
                        "http://www.opengis.net/def/rel/ogc/1.0/queryables", "application/schema+json", "Queryables"),
            render.link(request.url_for("nearest", collectionId=spec.id), "twin:nearest", "application/geo+json",
                        "Twin extension: nearest components"),
            render.link(f"{request.url_for('collection', collectionId=spec.id)}/tiles",
                        "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector", "application/json",
                        "Vector tilesets"),
        ],
    }


@router.get("/collections", summary="Collections (one per catalogue layer)")
def collections(request: Request, who: Who, f: FormatParam = None) -> Response:
    fmt = choose(request, f, DOCUMENT)
    catalogue = service(request).catalogue
    cols = [collection_doc(request, catalogue[layer], who) for layer in who.check_read_any(list(catalogue))]
    doc = {"collections": cols, "links": render.self_links(request, DOCUMENT, fmt), "crs": list(SUPPORTED_CRS)}
    if who.anonymous:
        doc["twin:message"] = ANONYMOUS_NOTE
    if fmt == "html":
        return render.html_response("collections.html", doc=doc)
    return render.json_response(doc, headers=challenge(who))


@router.get("/collections/{collectionId}", summary="One collection")
def collection(request: Request, who: Who, layer: LayerPath, f: FormatParam = None) -> Response:
    fmt = choose(request, f, DOCUMENT)
    spec = readable_spec(request, layer, who)
    doc = collection_doc(request, spec, who)
    if fmt == "html":
        return render.html_response("collection.html", doc=doc, spec=spec)
    return render.json_response(doc)


@router.get("/collections/{collectionId}/queryables", name="queryables", summary="Queryable properties (JSON Schema)")
def queryables_doc(request: Request, who: Who, layer: LayerPath, f: FormatParam = None) -> Response:
    fmt = choose(request, f, DOCUMENT)
    spec = readable_spec(request, layer, who)
    props: dict[str, object] = {}
    for name, qa in queryables(spec, who.unmasked(spec)).items():
        if qa.type == GEOMETRY:
            props[name] = {"title": qa.title, "format": _GEOMETRY_FORMATS[spec.geometry.value],
                           "x-ogc-role": "primary-geometry"}
            continue
        props[name] = {"title": qa.title, **property_schema(qa)}
    doc = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": str(request.url.remove_query_params("f")),
           "type": "object", "title": f"{spec.title_zh} {spec.title_en}", "properties": props,
           "additionalProperties": False}
    if fmt == "html":
        return render.html_response("queryables.html", doc=doc, spec=spec)
    return render.json_response(doc, media_type="application/schema+json")


def _page_links(request: Request, query: FeatureQuery, returned: int, matched: int,
                exact: bool) -> list[dict[str, Any]]:
    links = []
    more = query.offset + returned < matched if exact else returned == query.limit
    if more:
        url = request.url.include_query_params(offset=query.offset + query.limit, limit=query.limit)
        links.append(render.link(url, "next", "application/geo+json", "next page"))
    if query.offset > 0:
        url = request.url.include_query_params(offset=max(0, query.offset - query.limit), limit=query.limit)
        links.append(render.link(url, "prev", "application/geo+json", "previous page"))
    return links


@router.get("/collections/{collectionId}/items", summary="Features of a collection",
            responses={200: {"content": {MEDIA_TYPES[k]: {} for k in FEATURES if k != "json"}}})
def items(request: Request, who: Who, req: Annotated[ItemsRequest, Depends(items_request)],
          as_of: AsOf = None) -> Response:
    fmt = choose(request, req.f, FEATURES)
    query = req.query if as_of is None else replace(req.query, as_of=as_of_stamp(as_of))
    with service(request).store.turn():
        page = service(request).page(query)
        returned = len(page.rows.rows)
        render.audit_download(request, who, fmt, query.layer, returned)
        tail = {
            "numberReturned": returned, "numberMatched": page.matched, "twin:numberMatchedExact": page.exact,
            "timeStamp": render.now_stamp(), **render.as_of_member(query.as_of),
            "links": [*render.self_links(request, FEATURES, fmt),
                      *_page_links(request, query, returned, page.matched, page.exact),
                      render.link(request.url_for("collection", collectionId=query.layer), "collection",
                                  "application/json")],
        }
        spec = page.rows.spec
        title = f"{spec.title_zh} {spec.title_en}" + ("" if query.as_of is None else f" @ {query.as_of}")
        response = render.features_response(request, fmt, page.rows, req.crs, tail, properties=query.properties,
                                            title=title)
    return render.stamped(response, query.as_of)


@router.get("/collections/{collectionId}/items/{key}", summary="One feature, by its location key")
def item(request: Request, who: Who, layer: LayerPath, key: str, crs: CrsParam = None, f: FormatParam = None,
         as_of: AsOf = None) -> Response:
    fmt = choose(request, f, FEATURE)
    spec = readable_spec(request, layer, who)
    if service(request).store.layer_of(key) != spec.id:
        raise FeatureNotFoundError(key)
    if as_of is not None:
        return item_as_of(request, who, spec, key, as_of, resolve_crs(crs))
    rows, version = service(request).versioned_item(spec.id, key, who)
    tag = {} if version is None else {"ETag": f'"v{version}"'}
    if tag and request.headers.get("if-none-match", "").strip() in (tag["ETag"], "*"):
        return Response(status_code=304, headers=tag)
    out_crs = resolve_crs(crs)
    links = [*render.self_links(request, FEATURE, fmt),
             render.link(request.url_for("collection", collectionId=spec.id), "collection", "application/json",
                         spec.title_en)]
    if fmt == "html":
        enc = encode.prepare(rows, CRS84)
        return render.html_response("item.html", spec=spec, key=key, props=enc.properties[0],
                                    geom=enc.geoms[0], map=render.svg_map(enc.geoms), links=links)
    feature = encode.features(encode.prepare(rows, out_crs))[0]
    feature["links"] = links
    return render.json_response(feature, media_type=MEDIA_TYPES["geojson"],
                                headers={**render.crs_headers(out_crs), **tag})
