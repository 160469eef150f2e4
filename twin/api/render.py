"""Responses in every representation: JSON documents, GeoJSON (streamed when large), HTML, CSV and files."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

import numpy as np
import orjson
import pyogrio
import shapely
from fastapi import Request
from fastapi.responses import FileResponse, HTMLResponse, Response, StreamingResponse
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from starlette.background import BackgroundTask

from twin.access import Principal
from twin.api.negotiation import MEDIA_TYPES
from twin.catalogue import LayerSpec
from twin.crs import TwinCRS
from twin.model.rows import Rows
from twin.query import encode
from twin.query.crs import CRS84

STREAM_ABOVE = 1000  # features; larger GeoJSON answers are streamed in chunks
TEMPLATES = Environment(loader=PackageLoader("twin.api", "templates"), autoescape=select_autoescape(),
                        trim_blocks=True, lstrip_blocks=True)
_TITLES = {"json": "JSON", "geojson": "GeoJSON", "html": "HTML", "csv": "CSV", "fgb": "FlatGeobuf",
           "gpkg": "GeoPackage"}


def json_response(body: object, *, media_type: str = "application/json", status: int = 200,
                  headers: dict[str, str] | None = None) -> Response:
    data = orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY, default=str)
    return Response(data, status_code=status, media_type=media_type, headers=headers)


def html_response(template: str, **context: object) -> HTMLResponse:
    return HTMLResponse(TEMPLATES.get_template(template).render(**context))


def now_stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def link(href: object, rel: str, media: str, title: str | None = None) -> dict[str, str]:
    out = {"href": str(href), "rel": rel, "type": media}
    if title:
        out["title"] = title
    return out


def self_links(request: Request, offered: Sequence[str], current: str) -> list[dict[str, str]]:
    """``self`` in the current format and ``alternate`` in every other one offered."""
    head = str(request.url).partition("?")[0]
    kept = [(k, v) for k, v in parse_qsl(request.url.query, keep_blank_values=True) if k != "f"]  # parsed once
    out = []
    for key in dict.fromkeys(k if k != "json" or "geojson" not in offered else "geojson" for k in offered):
        rel = "self" if key == current or (current == "json" and key == "geojson") else "alternate"
        href = f"{head}?{urlencode([*kept, ('f', key)])}"
        out.append(link(href, rel, MEDIA_TYPES[key], f"this as {_TITLES[key]}"))
    return out


def as_of_member(moment: str | None) -> dict[str, str]:
    """``twin:asOf`` of a collection read as of ``moment`` (nothing for a read of now)."""
    return {} if moment is None else {"twin:asOf": moment}


def stamped(response: Response, moment: str | None) -> Response:
    """``response``, with the ``Twin-As-Of`` header of an answer read as of ``moment``."""
    if moment is not None:
        response.headers["Twin-As-Of"] = moment
    return response


def crs_headers(crs: TwinCRS) -> dict[str, str]:
    return {"Content-Crs": f"<{crs.uri}>"}


def svg_map(geoms: np.ndarray) -> Markup:
    """A small SVG map of lon/lat geometries (y flipped), for the HTML pages."""
    geoms = np.asarray([g for g in geoms if g is not None and not g.is_empty], dtype=object)
    if len(geoms) == 0:
        return Markup("")
    minx, miny, maxx, maxy = shapely.total_bounds(geoms)
    pad = max(maxx - minx, maxy - miny, 1e-4) * 0.05
    minx, miny, maxx, maxy = minx - pad, miny - pad, maxx + pad, maxy + pad
    scale = max(maxx - minx, maxy - miny) / 500
    body = "".join(g.svg(scale_factor=scale) for g in geoms[:2000])
    return Markup(  # shapely's own SVG of our geometries: no user text inside
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="{minx} {miny} {maxx - minx} {maxy - miny}" '
        f'preserveAspectRatio="xMidYMid meet" class="map"><g transform="matrix(1,0,0,-1,0,{maxy + miny})">'
        f"{body}</g></svg>"
    )


def features_response(request: Request, fmt: str, rows: Rows, crs: TwinCRS, tail: dict[str, object], *,
                      properties: Sequence[str] | None = None, extra: list[dict[str, object]] | None = None,
                      title: str = "") -> Response:
    """A FeatureCollection in ``fmt``; ``tail`` holds counts and links."""
    spec = rows.spec
    if fmt in DOWNLOADS:
        enc = encode.prepare(rows, crs, properties, axis_order=False, extra=extra)
        return _download(enc, fmt, spec, crs)
    if fmt == "html":
        enc = encode.prepare(rows, CRS84, properties, extra=extra)
        return html_response("items.html", spec=spec, enc=enc, tail=tail, title=title, map=svg_map(enc.geoms),
                             rows=zip(enc.ids, enc.properties, strict=True))
    enc = encode.prepare(rows, crs, properties, extra=extra)
    feats = encode.features(enc)
    chunks = encode.geojson_chunks(feats, tail)
    headers = crs_headers(crs)
    if len(feats) > STREAM_ABOVE:
        return StreamingResponse(chunks, media_type=MEDIA_TYPES["geojson"], headers=headers)
    return Response(b"".join(chunks), media_type=MEDIA_TYPES["geojson"], headers=headers)


#: Formats that are downloads (files to keep), audited as exports.
DOWNLOADS = ("csv", "fgb", "gpkg")


def audit_download(request: Request, who: Principal, fmt: str, layer: str, count: int) -> None:
    """Record a download in a file format (CSV, FlatGeobuf, GeoPackage) as an export in the audit trail."""
    gate = getattr(request.app.state, "gate", None)
    if fmt in DOWNLOADS and gate is not None:
        gate.audit.record("export", user=who.name, role=who.role.name, method=request.method,
                          path=str(request.url)[:500], layer=layer, count=count, detail=f"download as {fmt}")


def _download(enc: encode.Encoded, fmt: str, spec: LayerSpec, crs: TwinCRS) -> Response:
    name = f"{spec.id}.{fmt}"
    disposition = {"Content-Disposition": f'attachment; filename="{name}"', **crs_headers(crs)}
    if fmt == "csv":
        return Response(encode.csv_bytes(enc), media_type="text/csv; charset=utf-8", headers=disposition)
    folder = Path(tempfile.mkdtemp(prefix="twin-dl-"))
    path = folder / name
    frame = encode.geodataframe(enc, crs)
    driver = "FlatGeobuf" if fmt == "fgb" else "GPKG"
    kind = {"point": "Point", "line": "MultiLineString", "polygon": "MultiPolygon"}.get(enc.kind, "Unknown")
    pyogrio.write_dataframe(frame, path, layer=spec.id, driver=driver, geometry_type=kind)

    def cleanup() -> None:
        for p in folder.iterdir():
            p.unlink()
        folder.rmdir()

    return FileResponse(path, media_type=MEDIA_TYPES[fmt], headers=disposition, background=BackgroundTask(cleanup))
