"""OpenAPI 3.1 (what FastAPI writes) to OpenAPI 3.0.3 (what OGC API - Features Part 1 requires, class *oas30*).

3.1 schemas are JSON Schema 2020-12; 3.0 schemas are an older dialect. What FastAPI and pydantic write that
3.0 lacks is rewritten: ``null`` as a type becomes ``nullable``, ``const`` an ``enum`` of one, a list of
``examples`` one ``example``, numeric ``exclusiveMinimum``/``exclusiveMaximum`` the boolean forms, binary
content ``format: binary``, a ``$ref`` with siblings an ``allOf``, tuple ``prefixItems`` plain ``items``.
"""

from __future__ import annotations

import copy
from typing import Any

VERSION = "3.0.3"
_NULL = {"type": "null"}
#: JSON Schema keywords that OpenAPI 3.0 does not know, dropped from schemas.
_UNKNOWN_30 = ("$schema", "$id", "$anchor", "$comment", "$defs", "contentSchema", "unevaluatedProperties",
               "unevaluatedItems", "dependentRequired", "dependentSchemas", "propertyNames", "if", "then", "else",
               "patternProperties", "contains", "minContains", "maxContains")


def to_openapi30(doc: dict[str, Any]) -> dict[str, Any]:
    """A 3.0.3 copy of a 3.1 document; ``doc`` is left as it is."""
    out = copy.deepcopy(doc)
    out["openapi"] = VERSION
    for key in ("jsonSchemaDialect", "webhooks"):
        out.pop(key, None)
    info = out.get("info", {})
    info.pop("summary", None)
    info.get("license", {}).pop("identifier", None)
    out.get("components", {}).pop("pathItems", None)
    stack: list[Any] = [out]
    while stack:  # every dict of the document; schema keywords are rewritten where they appear
        node = stack.pop()
        if isinstance(node, dict):
            if _is_schema(node):
                _schema30(node)
            stack += list(node.values())
        elif isinstance(node, list):
            stack += node
    return out


def _is_schema(node: dict[str, Any]) -> bool:
    """Whether a dict is (or may be) a schema: it has a schema keyword."""
    return any(k in node for k in ("type", "anyOf", "oneOf", "allOf", "const", "properties", "items", "$ref",
                                   "prefixItems", "contentMediaType", "exclusiveMinimum", "exclusiveMaximum"))


def _schema30(schema: dict[str, Any]) -> None:
    """Rewrite one schema object in place (its sub-schemas are visited on their own)."""
    _nullable(schema)  # first: it may merge a variant's keywords into this schema
    for key in _UNKNOWN_30:
        schema.pop(key, None)
    if "const" in schema:
        schema["enum"] = [schema.pop("const")]
    if isinstance(schema.get("examples"), list):
        examples = schema.pop("examples")
        if examples:
            schema["example"] = examples[0]
    for bound, plain in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        value = schema.get(bound)
        if isinstance(value, int | float) and not isinstance(value, bool):
            schema[plain] = value
            schema[bound] = True
    if "contentMediaType" in schema or "contentEncoding" in schema:
        encoding = schema.pop("contentEncoding", None)
        schema.pop("contentMediaType", None)
        if schema.get("type") == "string":
            schema["format"] = "byte" if encoding == "base64" else "binary"
    if "prefixItems" in schema:
        items = schema.pop("prefixItems")
        schema.setdefault("items", items[0] if len(items) == 1 else {"anyOf": items})
    if "$ref" in schema and len(schema) > 1:
        schema["allOf"] = [{"$ref": schema.pop("$ref")}]
    if schema.get("type") == "array" and "items" not in schema:
        schema["items"] = {}


def _nullable(schema: dict[str, Any]) -> None:
    """``type: [x, "null"]`` and ``anyOf: [..., {"type": "null"}]`` as 3.0's ``nullable: true``."""
    kinds = schema.get("type")
    if isinstance(kinds, list):
        rest = [k for k in kinds if k != "null"]
        if len(rest) < len(kinds):
            schema["nullable"] = True
        if len(rest) == 1:
            schema["type"] = rest[0]
        else:
            del schema["type"]
            if rest:
                schema["anyOf"] = [{"type": k} for k in rest]
    elif kinds == "null":
        del schema["type"]
        schema["nullable"] = True
        schema["enum"] = [None]
    for key in ("anyOf", "oneOf"):
        variants = schema.get(key)
        if not isinstance(variants, list) or _NULL not in variants:
            continue
        rest = [v for v in variants if v != _NULL]
        schema["nullable"] = True
        del schema[key]
        if len(rest) == 1 and "$ref" not in rest[0]:
            for k, v in rest[0].items():
                schema.setdefault(k, v)
        elif len(rest) == 1:
            schema["allOf"] = rest
        elif rest:
            schema[key] = rest
