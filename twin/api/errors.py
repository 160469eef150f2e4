"""One table from twin's errors to HTTP statuses, and the OGC error body ``{"code", "description"}``.

A 500 never shows exception text: it carries a fixed message and a request id, and the details
go to the log under that id. Nor does a 503: what the store said names its database (host, port, schema), which
is the operator's business, not the client's.
"""

from __future__ import annotations

import logging
import uuid

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from twin.access.redaction import redact
from twin.errors import (
    AccessConfigError,
    AuthenticationError,
    ComponentExistsError,
    CursorGoneError,
    FeatureNotFoundError,
    ImportRejectedError,
    InvalidKeyError,
    InvalidQueryError,
    LayerNotFoundError,
    NotFoundError,
    NotReadyError,
    OutOfScopeError,
    PermissionDeniedError,
    QueryTooExpensiveError,
    SchemaViolationError,
    StepOutOfOrderError,
    StoreError,
    TwinError,
    VersionConflictError,
)

log = logging.getLogger("twin.api")


class NotAcceptableError(TwinError):
    """No representation the client's ``Accept`` header allows."""


class PayloadTooLargeError(TwinError):
    """An upload over the configured size limit."""


#: Most specific first: the first matching class decides the status and the OGC code.
STATUS: list[tuple[type[TwinError], int, str]] = [
    (AuthenticationError, 401, "Unauthorized"),
    (PermissionDeniedError, 403, "Forbidden"),
    (AccessConfigError, 400, "InvalidParameterValue"),
    (FeatureNotFoundError, 404, "NotFound"),
    (VersionConflictError, 412, "PreconditionFailed"),
    (ComponentExistsError, 409, "Conflict"),
    (CursorGoneError, 410, "Gone"),
    (InvalidKeyError, 404, "NotFound"),
    (LayerNotFoundError, 404, "NotFound"),
    (NotFoundError, 404, "NotFound"),
    (StepOutOfOrderError, 409, "Conflict"),
    (QueryTooExpensiveError, 400, "QueryTooExpensive"),
    (InvalidQueryError, 400, "InvalidParameterValue"),
    (SchemaViolationError, 422, "SchemaViolation"),
    (ImportRejectedError, 422, "ImportRejected"),
    (NotAcceptableError, 406, "NotAcceptable"),
    (PayloadTooLargeError, 413, "PayloadTooLarge"),
    (NotReadyError, 503, "NotReady"),
    (StoreError, 503, "StoreUnavailable"),
]
_HTTP_CODES = {400: "InvalidParameterValue", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
               405: "MethodNotAllowed", 406: "NotAcceptable", 411: "LengthRequired",
               413: "PayloadTooLarge", 415: "UnsupportedMediaType", 422: "InvalidParameterValue"}


def status_of(exc: TwinError) -> tuple[int, str]:
    """HTTP status and OGC code for a twin error (500 for any not in the table)."""
    for cls, status, code in STATUS:
        if isinstance(exc, cls):
            return status, code
    return 500, "ServerError"


def error_response(status: int, code: str, description: str, **extra: object) -> Response:
    """The OGC error body; a credential the request carried is never echoed (clients print these bodies)."""
    body = orjson.dumps({"code": code, "description": redact(description), **extra})
    return Response(body, status_code=status, media_type="application/json")


async def _twin_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, TwinError)
    status, code = status_of(exc)
    if status == 500:
        return await _server_error(request, exc)
    if status == 503 and not isinstance(exc, NotReadyError):
        return _unavailable(request, exc)
    if status in (401, 403) or isinstance(exc, OutOfScopeError):
        _audit_denial(request, status, str(exc))
    response = error_response(status, code, str(exc))
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="twin"'
    if status == 503:
        response.headers["Retry-After"] = "10"
    return response


def _audit_denial(request: Request, status: int, why: str) -> None:
    """Every refused request goes to the audit trail (out-of-area look-ups too, though they answer 404)."""
    gate = getattr(request.app.state, "gate", None)
    if gate is None:
        return
    who = getattr(request.state, "principal", None)
    layer = request.path_params.get("collectionId") or request.path_params.get("layer")
    gate.audit.record("denied", "denied", user=None if who is None else who.name,
                      role=None if who is None else who.role.name, status=status, method=request.method,
                      path=str(request.url.path)[:500], layer=None if layer is None else str(layer)[:100],
                      detail=why[:500])


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    problems = []
    for err in exc.errors()[:5]:
        where = " ".join(str(p) for p in err.get("loc", ()))
        problems.append(f"{where}: {err.get('msg', 'invalid')}")
    return error_response(400, "InvalidParameterValue", "; ".join(problems) or "invalid request")


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "Error")
    response = error_response(exc.status_code, code, str(exc.detail))
    if exc.headers:
        response.headers.update(exc.headers)
    return response


def server_error(request: Request, exc: BaseException) -> tuple[str, Response]:
    """Log ``exc`` with its traceback under a new request id; the id, and the 500 that quotes only the id."""
    request_id = uuid.uuid4().hex[:16]
    log.error("request %s %s %s failed", request_id, request.method, request.url.path, exc_info=exc)
    return request_id, error_response(500, "ServerError", f"internal error; quote request id {request_id} to the "
                                      "operator", request_id=request_id)


def _unavailable(request: Request, exc: Exception) -> Response:
    """The store could not do the work (its database stopped, restarted or refused it): a 503 to retry, the
    store's own words in the log under a request id."""
    request_id = uuid.uuid4().hex[:16]
    log.warning("request %s %s %s: %s", request_id, request.method, request.url.path, exc)
    response = error_response(503, "StoreUnavailable", "the store could not do this now (its database stopped, "
                              f"restarted or refused the work); retry shortly, or quote request id {request_id} to "
                              "the operator", request_id=request_id)
    response.headers["Retry-After"] = "5"
    return response


async def _server_error(request: Request, exc: Exception) -> Response:
    return server_error(request, exc)[1]


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""
    app.add_exception_handler(TwinError, _twin_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _server_error)
