"""``POST /collections/{collectionId}/import``: ``twin import`` over HTTP (a twin extension).

The upload is bounded before it is read: a request without ``Content-Length`` is refused (411) and
one above ``max_upload_mb`` gets a 413. The file (one zip or file, or a shapefile's parts as several
``file`` fields) is handed to :func:`twin.io.import_file`, which applies the same zip defences,
encoding and CRS detection, repairs and checks as the command line. ``dry_run`` defaults to true:
nothing is written unless the client says ``dry_run=false``. The answer is the report, a GeoJSON
preview of every row with its action (what the web import page draws) and the changeset id.
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

from twin.access import Principal
from twin.api import render
from twin.api.auth import Who
from twin.api.deps import LayerPath, layer_spec, service
from twin.api.errors import PayloadTooLargeError
from twin.api.import_preview import RecordingStore
from twin.errors import ImportRejectedError, InvalidQueryError
from twin.io import ImportOptions, import_file
from twin.io.mapping import load_mapping_file, parse_pairs

router = APIRouter(tags=["twin extensions"])
_SAFE_NAME = re.compile(r"[^\w.\-]+")
_FLAGS = ("allow_outside", "dry_run", "strict")
_TEXT = ("source_layer", "encoding", "crs", "lon", "lat", "note")
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


def _check_size(request: Request) -> None:
    limit = request.app.state.settings.max_upload_mb * 1024 * 1024
    length = request.headers.get("content-length")
    if length is None:
        raise HTTPException(411, "send the upload with a Content-Length header")
    if not length.isdigit() or int(length) > limit:
        raise PayloadTooLargeError(f"the upload is {length} bytes; the limit is {limit} bytes "
                                   f"({request.app.state.settings.max_upload_mb} MB, setting TWIN_MAX_UPLOAD_MB)")


def _options(form: FormData, workdir: Path, request: Request, author: str) -> ImportOptions:
    text = {k: str(form[k]) for k in _TEXT if isinstance(form.get(k), str) and str(form[k]).strip()}
    pairs: dict[str, str] = {}
    values: dict[str, dict[str, object]] = {}
    mapping = form.get("mapping")
    if isinstance(mapping, str) and mapping.strip():
        doc = workdir / "mapping.yaml"
        doc.write_text(mapping, encoding="utf-8")
        pairs, values = load_mapping_file(doc)
    pairs.update(parse_pairs([str(v) for v in form.getlist("map")]))
    cfg = request.app.state.settings
    flags = {k: _flag(form, k, default=k == "dry_run") for k in _FLAGS}
    return ImportOptions(mapping=pairs, values=values, extent=cfg.city_bbox, author=author,
                         **flags, **text)  # type: ignore[arg-type]


def _audit(request: Request, who: Principal, layer: str, outcome: str, count: int | None, detail: str) -> None:
    request.app.state.gate.audit.record("import", outcome, user=who.name, role=who.role.name, method="POST",
                                        path=str(request.url.path), layer=layer, count=count, detail=detail[:500])


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
    if not request.app.state.settings.import_enabled:
        raise HTTPException(403, "imports over HTTP are switched off on this server (TWIN_IMPORT_ENABLED)")
    _check_size(request)
    try:
        form = await request.form(max_files=20, max_fields=100)
    except Exception as exc:  # Starlette raises several types for a malformed multipart body
        raise InvalidQueryError(f"the body is not a valid multipart form: {str(exc)[:200]}") from None
    uploads = [u for u in form.getlist("file") if isinstance(u, UploadFile)]
    if not uploads:
        raise InvalidQueryError("send the file to import in a form field named 'file'")
    workdir = Path(tempfile.mkdtemp(prefix="twin-upload-"))
    try:
        path = await _save(uploads, workdir)
        options = _options(form, workdir, request, author=str(who.name))
        watched = RecordingStore(service(request).store)
        report = await run_in_threadpool(import_file, watched, path, spec.id, options)
    except ImportRejectedError as exc:
        _audit(request, who, spec.id, "rejected", None, str(exc))
        raise
    finally:
        await form.close()
        shutil.rmtree(workdir, ignore_errors=True)
    counts = f"read {report.read}, inserted {report.inserted}, updated {report.updated}, rejected {report.rejected}"
    _audit(request, who, spec.id, "ok", report.inserted + report.updated,
           f"{'dry run' if report.dry_run else f'changeset {report.changeset}'} of {uploads[0].filename}: {counts}")
    return render.json_response({"report": report.to_dict(), "preview": watched.preview(),
                                 "changeset": report.changeset})
