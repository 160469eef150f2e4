"""``POST /collections/{collectionId}/import``: ``twin import`` over HTTP (a twin extension).

The upload is bounded before it is read: a request without ``Content-Length`` is refused (411) and
one above ``max_upload_mb`` gets a 413. The file (one zip or file, or a shapefile's parts as several
``file`` fields) is handed to :func:`twin.io.import_file` with options built by
:func:`twin.io.options.import_options`, exactly as ``twin import`` does: the same zip defences,
encoding and CRS detection, repairs and checks, on the service's own store. ``dry_run`` defaults to
true: nothing is written unless the client says ``dry_run=false``. The answer is the report, a GeoJSON
preview of every row with its action (what the web import page draws) and the changeset id.

Every outcome is audited: ``ok``, ``rejected`` (a refused request or file, with the reason) and
``failed`` (an error nobody expected: the client gets a 500 quoting a request id, never the error,
and the trail and the log hold the id).
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from twin.access import Principal
from twin.api import render
from twin.api.auth import Who
from twin.api.consistency import after_write
from twin.api.deps import LayerPath, layer_spec, service
from twin.api.errors import PayloadTooLargeError, server_error, status_of
from twin.api.import_preview import ImportPreview
from twin.catalogue import LayerSpec
from twin.errors import InvalidQueryError, TwinError
from twin.io import ImportOptions, import_file
from twin.io.options import import_options

router = APIRouter(tags=["twin extensions"])
_SAFE_NAME = re.compile(r"[^\w.\-]+")
_FORM_SCHEMA = {
    "type": "object",
    "required": ["file"],
    "properties": {
        "file": {"type": "array", "items": {"type": "string", "format": "binary"},
                 "description": "A zipped shapefile, GeoPackage, GeoJSON, FlatGeobuf or CSV (named with its type), "
                                "or a shapefile's .shp, .shx, .dbf, .prj (.cpg) as several parts."},
        "encoding": {"type": "string", "description": "Attribute text encoding (GBK, UTF-8 ...); else detected."},
        "crs": {"type": "string", "description": "CRS of the coordinates (EPSG:4549, gcj02 ...); else detected."},
        "source_layer": {"type": "string", "description": "Layer in a GeoPackage, or dataset in a zip."},
        "lon": {"type": "string", "description": "CSV column with longitudes or eastings."},
        "lat": {"type": "string", "description": "CSV column with latitudes or northings."},
        "map": {"type": "array", "items": {"type": "string"}, "description": "SOURCE_COLUMN=field (repeatable)."},
        "mapping": {"type": "string", "description": "YAML mapping document (fields: and values:)."},
        "extent": {"type": "string", "description": "City extent minx,miny,maxx,maxy (default: the service's)."},
        "allow_outside": {"type": "boolean", "description": "Import features outside the city extent too."},
        "dry_run": {"type": "boolean", "default": True,
                    "description": "Report what would happen and write nothing (the default); false imports."},
        "strict": {"type": "boolean", "description": "Import nothing if any row has a problem."},
        "note": {"type": "string", "description": "Note recorded on the changeset."},
    },
}


def _flag(form: FormData, name: str, default: bool = False) -> bool:
    raw = str(form.get(name) or str(default)).strip().lower()
    if raw not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
        raise InvalidQueryError(f"{name} must be true or false, not {raw[:20]!r}")
    return raw in ("true", "1", "yes", "on")


def _text(form: FormData, name: str) -> str | None:
    value = form.get(name)
    return value if isinstance(value, str) else None


def _check_size(request: Request) -> None:
    limit = request.app.state.settings.service.max_upload_mb * 1024 * 1024
    length = request.headers.get("content-length")
    if length is None:
        raise HTTPException(411, "send the upload with a Content-Length header")
    if not length.isdigit() or int(length) > limit:
        raise PayloadTooLargeError(f"the upload is {length} bytes; the limit is {limit} bytes "
                                   f"({limit // 2**20} MB, setting TWIN_MAX_UPLOAD_MB)")


def _options(form: FormData, request: Request, author: str) -> ImportOptions:
    """The form's fields as the same typed options ``twin import`` builds from its flags."""
    return import_options(
        city_bbox=request.app.state.settings.city_bbox, author=author, source_layer=_text(form, "source_layer"),
        encoding=_text(form, "encoding"), crs=_text(form, "crs"), lon=_text(form, "lon"), lat=_text(form, "lat"),
        maps=[str(v) for v in form.getlist("map")], mapping=_text(form, "mapping"), mapping_name="mapping",
        extent=_text(form, "extent"), allow_outside=_flag(form, "allow_outside"),
        dry_run=_flag(form, "dry_run", default=True), strict=_flag(form, "strict"), note=_text(form, "note") or "")


def _audit(request: Request, who: Principal, layer: str, outcome: str, status: int, count: int | None,
           detail: str) -> None:
    request.app.state.gate.audit.record("import", outcome, user=who.name, role=who.role.name, status=status,
                                        method="POST", path=str(request.url.path), layer=layer, count=count,
                                        detail=detail[:500])


async def _save(uploads: list[UploadFile], workdir: Path) -> Path:
    """Write the parts to ``workdir``; the one to import is the only file, or the ``.shp`` among several."""
    paths = []
    for upload in uploads:
        name = _SAFE_NAME.sub("_", Path(upload.filename or "upload").name).lstrip(".") or "upload"
        path = workdir / name
        with path.open("wb") as out:
            while chunk := await upload.read(1024 * 1024):
                out.write(chunk)
        paths.append(path)
    if len(paths) == 1:
        return paths[0]
    shp = [p for p in paths if p.suffix.lower() == ".shp"]
    if len(shp) != 1:
        raise InvalidQueryError(f"{len(paths)} files were sent but {'none' if not shp else 'more than one'} is a "
                                ".shp: send one shapefile's .shp with its .shx, .dbf and .prj, or a single zip")
    return shp[0]


async def _import(request: Request, who: Principal, spec: LayerSpec) -> Response:
    """Receive the upload and import it; every error is raised for the caller to audit."""
    if not request.app.state.settings.service.import_enabled:
        raise HTTPException(403, "imports over HTTP are switched off on this server (TWIN_IMPORT_ENABLED)")
    _check_size(request)
    try:
        form = await request.form(max_files=20, max_fields=100)
    except Exception as exc:  # Starlette raises several types for a malformed multipart body
        raise InvalidQueryError(f"the body is not a valid multipart form: {str(exc)[:200]}") from None
    workdir = Path(tempfile.mkdtemp(prefix="twin-upload-"))
    try:
        uploads = [u for u in form.getlist("file") if isinstance(u, UploadFile)]
        if not uploads:
            raise InvalidQueryError("send the file to import in a form field named 'file'")
        options = _options(form, request, author=str(who.name))
        path = await _save(uploads, workdir)
        preview = ImportPreview()
        report = await run_in_threadpool(import_file, service(request).store, path, spec.id, options,
                                         observer=preview)
    finally:
        await form.close()
        shutil.rmtree(workdir, ignore_errors=True)
    _audit(request, who, spec.id, "ok", 200, report.inserted + report.updated, report.summary())
    response = render.json_response({"report": report.to_dict(), "preview": preview.collection(),
                                     "changeset": report.changeset})
    if report.changeset is not None:
        await run_in_threadpool(after_write, request, response)
    return response


@router.post("/collections/{collectionId}/import", summary="Twin extension: import a GIS file into a layer",
             description="Multipart upload with the options of `twin import`; `dry_run` defaults to true. 200 with "
                         "`report`, `preview` (every row as GeoJSON with its action: insert, update, unchanged, "
                         "reject) and `changeset` (null for a dry run); 422 for a file that cannot be imported "
                         "(nothing written), 413 over the size limit.",
             openapi_extra={"x-twin-extension": True, "requestBody": {
                 "required": True, "content": {"multipart/form-data": {"schema": _FORM_SCHEMA}}}},
             responses={413: {"description": "Too large"}, 422: {"description": "Rejected, nothing written"}})
async def import_upload(request: Request, who: Who, layer: LayerPath) -> Response:
    spec = layer_spec(request, layer)
    who.check_write(spec.id)
    try:
        return await _import(request, who, spec)
    except StarletteHTTPException as exc:
        _audit(request, who, spec.id, "rejected", exc.status_code, None, str(exc.detail))
        raise
    except TwinError as exc:
        status = status_of(exc)[0]
        _audit(request, who, spec.id, "failed" if status >= 500 else "rejected", status, None, str(exc))
        raise
    except Exception as exc:
        return _failed(request, who, spec, exc)


def _failed(request: Request, who: Principal, spec: LayerSpec, exc: Exception) -> Response:
    """An error nobody expected: logged with a request id, audited as failed, answered without its text."""
    request_id, response = server_error(request, exc)
    _audit(request, who, spec.id, "failed", response.status_code, None,
           f"internal error ({type(exc).__name__}); request id {request_id}, details in the service log")
    return response
