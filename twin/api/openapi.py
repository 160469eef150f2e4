"""The API definition: FastAPI's OpenAPI document with twin's extensions, CRSs and the standard's parameters.

``/api`` serves it as OpenAPI 3.0 (OGC API - Features Part 1, class *oas30*, is what OGC clients and
validators read); ``/api/openapi-3.1.json`` serves FastAPI's own 3.1 form of the same document.
"""

from __future__ import annotations

import copy
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response

from twin.api.deps import property_params
from twin.api.features import property_schema
from twin.api.openapi30 import to_openapi30
from twin.api.render import json_response
from twin.catalogue import Catalogue
from twin.keys import KEY_RE
from twin.model.query import DEFAULT_LIMIT, MAX_LIMIT
from twin.query.crs import EXTENSION_CRS, SUPPORTED_CRS
from twin.query.filters import queryables

DESCRIPTION = f"""
OGC API - Features (Part 1 Core, Part 2 CRS, Part 3 Filtering with CQL2) over twin's store of Shanghai city
components (上海城市部件). Feature ids are location keys such as `HY-wtw3sjq6-0`.

* `limit`: default 10, larger than {MAX_LIMIT} is clamped to {MAX_LIMIT} (not an error, as Part 1 allows).
* `numberMatched` is exact up to 10,000 matches (or for a whole layer); above that it is an estimate and
  `twin:numberMatchedExact` is `false`.
* CRSs: {", ".join(SUPPORTED_CRS)}. Coordinates follow each CRS's axis order (lat/lon for EPSG:4326 and
  EPSG:4490, northing/easting for the Gauss-Krüger zones); CRS84 is lon/lat.

**Twin extensions** (operations tagged *twin extensions*, marked `x-twin-extension`):
`near=lon,lat&radius=m` on items; `/collections/{{layer}}/nearest`; `/search` across layers; `/keys/{{key}}`;
the CQL2 function `S_DWITHIN(geometry, <geometry>, <metres>)`; the CRSs {", ".join(EXTENSION_CRS)} (GCJ-02 and
BD-09, the offsets of Chinese web maps); output formats CSV, FlatGeobuf and GeoPackage (`f=csv|fgb|gpkg`).

Personal fields (脱敏) are served masked and cannot be filtered or sorted on.
A query parameter an operation does not declare, or one given twice, is a 400.
Errors are `{{"code": ..., "description": ...}}` with status 400 (bad parameter), 401, 403, 404, 406, 413 or 422.
"""
MEDIA_TYPE_30 = "application/vnd.oai.openapi+json;version=3.0"
#: The items parameters exactly as OGC API - Features Part 1 defines them (its OpenAPI parameter fragments).
STANDARD_PARAMETERS: dict[str, dict[str, Any]] = {
    "bbox": {"schema": {"type": "array", "oneOf": [{"minItems": 4, "maxItems": 4}, {"minItems": 6, "maxItems": 6}],
                        "items": {"type": "number"}}, "style": "form", "explode": False},
    "limit": {"schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
              "style": "form", "explode": False},
    "datetime": {"schema": {"type": "string"}, "style": "form", "explode": False},
}
_EXCEPTION = {"type": "object", "required": ["code", "description"],
              "properties": {"code": {"type": "string"}, "description": {"type": "string"}}}
_BAD_REQUEST = {"description": "A parameter is malformed, unknown, repeated or beyond a limit; the description "
                               "names it.",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Exception"}}}}
TAGS = [
    {"name": "OGC API - Features", "description": "Standard endpoints (Parts 1, 2 and 3)."},
    {"name": "twin extensions", "description": "Beyond the standard: radius, nearest-k, cross-layer search, "
                                               "key look-up, import."},
]


def _collection_paths(doc: dict[str, Any], catalogue: Catalogue) -> None:
    """One items path per collection, listing its properties as equality query parameters.

    GDAL's OAPIF driver (and so QGIS) reads these to send attribute filters to the server.
    """
    generic = doc["paths"].get("/collections/{collectionId}/items", {}).get("get")
    if generic is None:
        return
    for spec in catalogue.values():
        op = copy.deepcopy(generic)
        op["operationId"] = f"items_{spec.id}"
        op["summary"] = f"{spec.title_zh} {spec.title_en}: features"
        columns = queryables(spec)
        extra = [{"name": name, "in": "query", "required": False, "schema": property_schema(columns[name]),
                  "description": f"{columns[name].title}: only features whose {name} equals this value"}
                 for name in property_params(spec)]
        op["parameters"] = [p for p in op.get("parameters", []) if p.get("in") != "path"] + extra
        doc["paths"][f"/collections/{spec.id}/items"] = {"get": op}


def _standard_parameters(doc: dict[str, Any]) -> None:
    """``bbox``, ``limit`` and ``datetime`` of every items operation as the standard's fragments declare them."""
    for path, ops in doc["paths"].items():
        if not path.endswith("/items"):
            continue
        for param in ops["get"].get("parameters", []):
            if param.get("in") == "query" and param["name"] in STANDARD_PARAMETERS:
                param.update(copy.deepcopy(STANDARD_PARAMETERS[param["name"]]))


def _error_responses(doc: dict[str, Any]) -> None:
    """FastAPI documents its 422 validation answer; twin answers 400 with an OGC exception body."""
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    schemas["Exception"] = _EXCEPTION
    for ops in doc["paths"].values():
        for op in ops.values():
            responses = op.setdefault("responses", {})
            generated = responses.get("422", {}).get("content", {}).get("application/json", {}).get("schema", {})
            if generated.get("$ref", "").endswith("/HTTPValidationError"):
                del responses["422"]
            responses.setdefault("400", _BAD_REQUEST)


def _path_parameters(doc: dict[str, Any], catalogue: Catalogue) -> None:
    """Say exactly which collection ids and what key shapes exist."""
    for ops in doc["paths"].values():
        for op in ops.values():
            for param in op.get("parameters", []):
                if param.get("in") != "path":
                    continue
                if param["name"] == "collectionId":
                    param["schema"] = {"type": "string", "enum": sorted(catalogue)}
                elif param["name"] == "key":
                    param["schema"] = {"type": "string", "pattern": KEY_RE.pattern}


def enrich(app: FastAPI) -> dict[str, Any]:
    """The (cached) OpenAPI 3.1 document, with tag descriptions, per-collection paths and the twin extensions."""
    if app.openapi_schema is None:
        doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes,
                          tags=TAGS)
        _path_parameters(doc, app.state.service.catalogue)
        _error_responses(doc)
        _standard_parameters(doc)
        _collection_paths(doc, app.state.service.catalogue)
        doc["x-twin-extensions"] = {
            "query-parameters": {"items": ["near", "radius", "point-crs", "<property>=<value>"]},
            "cql2-functions": ["S_DWITHIN"],
            "crs": list(EXTENSION_CRS),
            "formats": ["csv", "fgb", "gpkg"],
            "response-properties": ["twin:numberMatchedExact", "twin:truncated", "twin:count", "twin:code"],
        }
        app.openapi_schema = doc
    return app.openapi_schema


def install(app: FastAPI) -> None:
    """Serve the API definition: OpenAPI 3.0 at ``/api`` (route ``openapi``), 3.1 at ``/api/openapi-3.1.json``.

    ``app.openapi()`` (for the HTML page ``/api.html``) is the 3.1 document; build ``app`` with
    ``openapi_url=None`` so that FastAPI does not serve its own.
    """
    app.openapi = lambda: enrich(app)  # type: ignore[method-assign]

    def openapi30(request: Request) -> Response:
        if getattr(app.state, "openapi30", None) is None:
            app.state.openapi30 = to_openapi30(app.openapi())
        return json_response(app.state.openapi30, media_type=MEDIA_TYPE_30)

    def openapi31(request: Request) -> Response:
        return json_response(app.openapi(), media_type="application/vnd.oai.openapi+json;version=3.1")

    app.add_route("/api", openapi30, name="openapi", include_in_schema=False)
    app.add_route("/api/openapi-3.1.json", openapi31, name="openapi31", include_in_schema=False)
