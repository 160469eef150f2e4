"""OGC API - Features Part 4 (create, replace, update, delete) over :class:`twin.editing.Editor`.

``POST /collections/{layer}/items`` adds a component (201, ``Location``), ``PUT`` and ``PATCH`` on an item replace
or change it (200 with the component as the user sees it), ``DELETE`` retires it (204). Every item carries a strong
``ETag`` naming its version; a write with ``If-Match`` is done only if the component is still at that version
(412 with the current version otherwise). The body is one GeoJSON feature in CRS84 (``PATCH`` also takes the bare
properties to set, as a JSON merge patch), at most ``max_upload_mb``. Every write, done or refused, is audited.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import orjson
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from twin.access import Principal
from twin.api import render
from twin.api.auth import Who
from twin.api.consistency import after_write
from twin.api.deps import LayerPath, layer_spec, service
from twin.api.errors import PayloadTooLargeError, error_response, status_of
from twin.editing import Editor, Written
from twin.errors import InvalidQueryError, TwinError, VersionConflictError
from twin.query import encode
from twin.query.crs import CRS84

router = APIRouter(tags=["OGC API - Features Part 4"])
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/create-replace-delete",
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/update",
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/features",
]
_BODY_TYPES = ("application/geo+json", "application/json", "application/merge-patch+json")
_ETAG = re.compile(r'^"v(\d{1,18})"$')
_FEATURE_BODY = {"required": True, "content": {t: {"schema": {"type": "object"}} for t in _BODY_TYPES[:2]}}
_PATCH_BODY = {"required": True, "content": {t: {"schema": {"type": "object"}} for t in _BODY_TYPES}}
_RESPONSES: dict[int | str, dict[str, object]] = {
    403: {"description": "The role may not write the layer, or the place is outside the user's area"},
    412: {"description": "If-Match names a version the component no longer has"},
    422: {"description": "Values the layer's schema refuses (nothing written)"},
}


def etag(version: int) -> str:
    """The strong entity tag of a component's version."""
    return f'"v{version}"'


def expected_version(request: Request) -> int | None:
    """The version ``If-Match`` names (``None`` without one, or for ``*``); a weak or foreign tag never matches."""
    raw = request.headers.get("if-match")
    if raw is None or raw.strip() == "*":
        return None
    tags = [t.strip() for t in raw.split(",") if t.strip()]
    if len(tags) != 1:
        raise InvalidQueryError("If-Match: give the one ETag of the version you read")
    found = _ETAG.match(tags[0])
    return int(found.group(1)) if found else -1


async def _body(request: Request, patch: bool = False) -> object:
    limit = request.app.state.settings.service.max_upload_mb * 1024 * 1024
    length = request.headers.get("content-length")
    if length is None:
        raise HTTPException(411, "send the body with a Content-Length header")
    if not length.isdigit() or int(length) > limit:
        raise PayloadTooLargeError(f"the body is {length} bytes; the limit is {limit} bytes (TWIN_MAX_UPLOAD_MB)")
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in (_BODY_TYPES if patch else _BODY_TYPES[:2]):
        raise HTTPException(415, f"send the feature as {' or '.join(_BODY_TYPES if patch else _BODY_TYPES[:2])}, "
                                 f"not {media or 'no Content-Type'}")
    try:
        return orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise InvalidQueryError(f"the body is not valid JSON: {exc}") from None


def _audit(request: Request, who: Principal, layer: str, outcome: str, status: int, detail: str) -> None:
    request.app.state.gate.audit.record("edit", outcome, user=who.name, role=who.role.name, status=status,
                                        method=request.method, path=str(request.url.path), layer=layer,
                                        count=1 if outcome == "ok" else None, detail=detail[:500])


def _answer(request: Request, who: Principal, layer: str, done: Written, status: int = 200) -> Response:
    """The component as ``who`` sees it after the write, with its ETag (no body once deleted)."""
    if done.deleted:
        response = Response(status_code=204)
    else:
        rows, version = service(request).versioned_item(layer, done.key, who)  # body and ETag of one snapshot
        feature = encode.features(encode.prepare(rows, CRS84))[0]
        response = render.json_response(feature, status=status, media_type="application/geo+json")
        if version is not None:
            response.headers["ETag"] = etag(version)
        if status == 201:
            response.headers["Location"] = str(request.url_for("item", collectionId=layer, key=done.key))
    after_write(request, response)
    return response


async def _run(request: Request, who: Principal, layer: str, status: int, work: Callable[..., Written],
               *args: object) -> Response:
    """Do one write in the thread pool; audit what came of it; a version conflict answers the current ETag."""
    try:
        done = await run_in_threadpool(work, *args)
    except VersionConflictError as exc:
        _audit(request, who, layer, "rejected", 412, str(exc))
        response = error_response(412, "PreconditionFailed", str(exc), current_version=exc.current)
        response.headers["ETag"] = etag(exc.current)
        return response
    except (StarletteHTTPException, TwinError) as exc:
        code = exc.status_code if isinstance(exc, StarletteHTTPException) else status_of(exc)[0]
        detail = str(exc.detail) if isinstance(exc, StarletteHTTPException) else str(exc)
        _audit(request, who, layer, "failed" if code >= 500 else "rejected", code, detail)
        raise
    _audit(request, who, layer, "ok", status, f"{request.method} {done.key}: changeset {done.changeset.id}")
    return await run_in_threadpool(_answer, request, who, layer, done, status)


def _refused(request: Request, who: Principal, layer: str, exc: Exception) -> None:
    code = exc.status_code if isinstance(exc, StarletteHTTPException) else (
        status_of(exc)[0] if isinstance(exc, TwinError) else 500)
    _audit(request, who, layer, "rejected", code, str(getattr(exc, "detail", exc)))


@router.post("/collections/{collectionId}/items", status_code=201, summary="Add a component (Part 4)",
             openapi_extra={"requestBody": _FEATURE_BODY}, responses={409: {"description": "A component "
                            "already stands at that location"}, **_RESPONSES})
async def create_item(request: Request, who: Who, layer: LayerPath) -> Response:
    spec = layer_spec(request, layer)
    try:
        body = await _body(request)
    except (StarletteHTTPException, TwinError) as exc:
        _refused(request, who, spec.id, exc)
        raise
    editor = Editor(service(request).store)
    return await _run(request, who, spec.id, 201, editor.create, spec.id, body, who)


@router.put("/collections/{collectionId}/items/{key}", summary="Replace a component (Part 4)",
            openapi_extra={"requestBody": _FEATURE_BODY}, responses=_RESPONSES)
async def replace_item(request: Request, who: Who, layer: LayerPath, key: str) -> Response:
    spec = layer_spec(request, layer)
    try:
        body, expect = await _body(request), expected_version(request)
    except (StarletteHTTPException, TwinError) as exc:
        _refused(request, who, spec.id, exc)
        raise
    editor = Editor(service(request).store)
    return await _run(request, who, spec.id, 200, editor.replace, spec.id, key, body, who, expect)


@router.patch("/collections/{collectionId}/items/{key}", summary="Change a component's properties or place "
              "(Part 4)", openapi_extra={"requestBody": _PATCH_BODY}, responses=_RESPONSES)
async def update_item(request: Request, who: Who, layer: LayerPath, key: str) -> Response:
    spec = layer_spec(request, layer)
    try:
        body, expect = await _body(request, patch=True), expected_version(request)
    except (StarletteHTTPException, TwinError) as exc:
        _refused(request, who, spec.id, exc)
        raise
    editor = Editor(service(request).store)
    return await _run(request, who, spec.id, 200, editor.update, spec.id, key, body, who, expect)


@router.delete("/collections/{collectionId}/items/{key}", status_code=204, summary="Retire a component (Part 4)",
               responses=_RESPONSES)
async def delete_item(request: Request, who: Who, layer: LayerPath, key: str) -> Response:
    spec = layer_spec(request, layer)
    try:
        expect = expected_version(request)
    except TwinError as exc:
        _refused(request, who, spec.id, exc)
        raise
    editor = Editor(service(request).store)
    return await _run(request, who, spec.id, 204, editor.delete, spec.id, key, who, expect)
