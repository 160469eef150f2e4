"""The API definition at /api: a valid OpenAPI 3.0 document (OGC API - Features Part 1, class oas30) whose
items operations declare bbox, limit and datetime exactly as the standard's OpenAPI fragments do."""

from __future__ import annotations

import copy
from typing import Any

from openapi_spec_validator import OpenAPIV30SpecValidator, OpenAPIV31SpecValidator

from tests.api.conftest import Server
from twin.api.openapi30 import to_openapi30
from twin.model.query import DEFAULT_LIMIT, MAX_LIMIT

#: OGC API - Features - Part 1: Core 1.0, openapi/parameters/{bbox,limit,datetime}.yaml (without descriptions).
STANDARD = {
    "bbox": {"name": "bbox", "in": "query", "required": False, "style": "form", "explode": False,
             "schema": {"type": "array", "oneOf": [{"minItems": 4, "maxItems": 4}, {"minItems": 6, "maxItems": 6}],
                        "items": {"type": "number"}}},
    "limit": {"name": "limit", "in": "query", "required": False, "style": "form", "explode": False,
              "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT}},
    "datetime": {"name": "datetime", "in": "query", "required": False, "style": "form", "explode": False,
                 "schema": {"type": "string"}},
}


def _errors(validator: type, doc: dict[str, Any]) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}" for e in validator(doc).iter_errors()]


def test_api_is_a_valid_openapi_30_document(server: Server) -> None:
    r = server.get("/api")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/vnd.oai.openapi+json;version=3.0"
    doc = r.json()
    assert doc["openapi"].startswith("3.0.")
    assert _errors(OpenAPIV30SpecValidator, doc) == []
    landing = server.get("/").json()
    desc = next(link for link in landing["links"] if link["rel"] == "service-desc")
    assert desc["href"].endswith("/api") and desc["type"] == r.headers["content-type"]


def test_the_openapi_31_form_stays_available_and_valid(server: Server) -> None:
    doc = server.get("/api/openapi-3.1.json").json()
    assert doc["openapi"].startswith("3.1.")
    assert _errors(OpenAPIV31SpecValidator, doc) == []
    assert set(doc["paths"]) == set(server.get("/api").json()["paths"])


def test_items_operations_declare_bbox_limit_and_datetime_as_the_standard(server: Server) -> None:
    doc = server.get("/api").json()
    items = [path for path in doc["paths"] if path.endswith("/items")]
    assert "/collections/{collectionId}/items" in items and "/collections/hydrant/items" in items
    for path in items:
        params = {p["name"]: p for p in doc["paths"][path]["get"]["parameters"]}
        for name, fragment in STANDARD.items():
            declared = {k: v for k, v in params[name].items() if k != "description"}
            assert declared == fragment, (path, name, declared)


def test_errors_are_declared_as_400_with_an_ogc_exception_body(server: Server) -> None:
    doc = server.get("/api").json()
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    assert doc["components"]["schemas"]["Exception"]["required"] == ["code", "description"]
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert "400" in op["responses"], (method, path)
            if "422" in op["responses"]:  # only a write (an import, an edit) may be refused as unprocessable
                assert path.endswith("/import") or method in ("post", "put", "patch", "delete"), (method, path)


SYNTHETIC_31: dict[str, Any] = {
    "openapi": "3.1.0", "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
    "info": {"title": "t", "version": "1", "summary": "s", "license": {"name": "MIT", "identifier": "MIT"}},
    "paths": {"/x": {"get": {
        "parameters": [
            {"name": "a", "in": "query", "schema": {"anyOf": [{"type": "integer", "exclusiveMinimum": 0},
                                                              {"type": "null"}], "title": "A"}},
            {"name": "b", "in": "query", "schema": {"type": ["string", "null"], "examples": ["x", "y"]}},
            {"name": "c", "in": "query", "schema": {"const": "only"}},
            {"name": "d", "in": "query", "schema": {"anyOf": [{"$ref": "#/components/schemas/S"}, {"type": "null"}]}},
            {"name": "e", "in": "query", "schema": {"type": "array", "prefixItems": [{"type": "number"}]}},
        ],
        "requestBody": {"content": {"multipart/form-data": {"schema": {"type": "object", "properties": {
            "file": {"type": "string", "contentMediaType": "application/octet-stream"}}}}}},
        "responses": {"200": {"description": "ok", "content": {"application/json": {"schema": {
            "$ref": "#/components/schemas/S", "description": "sibling of a $ref"}}}}},
    }}},
    "components": {"schemas": {"S": {"type": "object", "properties": {"n": {"type": "null"},
                                                                      "m": {"exclusiveMaximum": 5}}}}},
}


def test_openapi_31_keywords_are_rewritten_for_30() -> None:
    assert _errors(OpenAPIV30SpecValidator, {**copy.deepcopy(SYNTHETIC_31), "openapi": "3.0.3"})  # as it is: invalid
    doc = to_openapi30(SYNTHETIC_31)
    assert _errors(OpenAPIV30SpecValidator, doc) == []
    a, b, c, d, e = (p["schema"] for p in doc["paths"]["/x"]["get"]["parameters"])
    assert a == {"type": "integer", "minimum": 0, "exclusiveMinimum": True, "nullable": True, "title": "A"}
    assert b == {"type": "string", "nullable": True, "example": "x"}
    assert c == {"enum": ["only"]}
    assert d == {"allOf": [{"$ref": "#/components/schemas/S"}], "nullable": True}
    assert e == {"type": "array", "items": {"type": "number"}}
    body = doc["paths"]["/x"]["get"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert body["properties"]["file"] == {"type": "string", "format": "binary"}
    assert SYNTHETIC_31["openapi"] == "3.1.0"  # the input is left as it was

