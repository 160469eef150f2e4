"""Status reports over HTTP: ``POST /status`` takes a JSON array of reports or NDJSON (one per line, streamed),
keeps the good ones (:mod:`twin.status`) and lists the refused ones by line. Every batch is audited."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from twin.api import render
from twin.api.auth import Who
from twin.api.errors import PayloadTooLargeError
from twin.errors import AuthenticationError
from twin.model.reports import Reported
from twin.status import Intake, items_of, lines_of

router = APIRouter(tags=["Status reports"])
_TYPES = {"application/json": False, "application/x-ndjson": True, "application/ndjson": True}
_REPORT = {"type": "object", "required": ["key", "observed_at"], "properties": {
    "key": {"type": "string", "description": "the component's location key"},
    "status": {"type": "string", "description": "one of the layer's statuses"},
    "values": {"type": "object", "additionalProperties": {"type": "number"},
               "description": "measured fields of the layer (such as a hydrant's pressure)"},
    "observed_at": {"type": "string", "format": "date-time", "description": "when it was observed"},
    "source": {"type": "string", "description": "the sensor, system or officer reporting"}}}
_BODY = {"required": True, "content": {
    "application/json": {"schema": {"type": "array", "items": _REPORT}},
    "application/x-ndjson": {"schema": {"type": "string", "description": "one report (JSON) per line"}}}}


async def _read(request: Request) -> bytes:
    """The body, streamed in, refused past ``TWIN_MAX_UPLOAD_MB``."""
    limit = request.app.state.settings.service.max_upload_mb * 1024 * 1024
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLargeError(f"the body is over {limit} bytes (TWIN_MAX_UPLOAD_MB); send it in parts")
    return bytes(body)


@router.post("/status", summary="Status reports: what was observed about components, and when",
             openapi_extra={"requestBody": _BODY})
async def push(request: Request, who: Who,
               source: str = Query("status", min_length=1, max_length=200,
                                   description="Where the reports come from, for those that do not say")) -> Response:
    if who.anonymous:
        raise AuthenticationError("status reports need a token of a role that writes the layers")
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in _TYPES:
        raise HTTPException(415, f"send reports as application/json (an array) or application/x-ndjson, not "
                                 f"{media or 'no Content-Type'}")
    body = await _read(request)
    lines = lines_of([body]) if _TYPES[media] else items_of(body)
    intake = Intake(request.app.state.service.store, who, author=str(who.name), source=source)
    done: Reported = await run_in_threadpool(intake.push, lines)
    kept = done.applied + done.late
    status = 200 if kept or not done.rejected else 422
    request.app.state.gate.audit.record("status", "ok" if kept else "rejected", user=who.name, role=who.role.name,
                                        status=status, method="POST", path="/status", count=kept,
                                        detail=f"{kept} kept ({done.applied} applied), {len(done.rejected)} refused, "
                                               f"changesets {done.changesets}"[:500])
    body_out: dict[str, object] = {
        "kept": kept, "applied": done.applied, "late": done.late, "changesets": done.changesets,
        "rejected": [{"line": r.line, "key": r.key, "error": r.error} for r in done.rejected]}
    if status == 422:
        body_out = {"code": "ReportsRejected", "description": f"every one of the {len(done.rejected)} reports was "
                                                              "refused; see rejected", **body_out}
    return render.json_response(body_out, status=status)
