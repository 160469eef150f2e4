"""The OpenAPI document at ``/api``: FastAPI's own, with twin's extensions and CRSs described."""

from __future__ import annotations

import copy
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from twin.api.deps import property_params
from twin.api.features import property_schema
from twin.catalogue import Catalogue
from twin.keys import KEY_RE
from twin.query.crs import EXTENSION_CRS, SUPPORTED_CRS
from twin.query.filters import queryables
from twin.query.model import MAX_LIMIT

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
Errors are `{{"code": ..., "description": ...}}` with status 400 (bad parameter), 404, 406, 413 or 422.
"""
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
    """The (cached) OpenAPI document, with tag descriptions, per-collection paths and the twin extensions."""
    if app.openapi_schema is None:
        doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes,
                          tags=TAGS)
        _path_parameters(doc, app.state.service.catalogue)
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
