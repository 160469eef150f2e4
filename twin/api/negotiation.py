"""Choosing a representation from ``f=`` (400 when unknown) or the ``Accept`` header (406 when nothing fits)."""

from __future__ import annotations

from fastapi import Request

from twin.api.errors import NotAcceptableError
from twin.errors import InvalidQueryError

MEDIA_TYPES = {
    "json": "application/json",
    "geojson": "application/geo+json",
    "html": "text/html",
    "csv": "text/csv",
    "fgb": "application/flatgeobuf",
    "gpkg": "application/geopackage+sqlite3",
}
_ALIASES = {"application/json": "json", "application/geo+json": "geojson", "text/html": "html", "text/csv": "csv",
            "flatgeobuf": "fgb", "application/flatgeobuf": "fgb", "geopackage": "gpkg",
            "application/geopackage+sqlite3": "gpkg", "application/vnd.geo+json": "geojson"}
#: What each kind of resource offers, its default first.
DOCUMENT = ("json", "html")
FEATURES = ("geojson", "json", "html", "csv", "fgb", "gpkg")
FEATURE = ("geojson", "json", "html")


def _accepted(header: str) -> list[tuple[float, str]]:
    out = []
    for i, part in enumerate(header.split(",")):
        pieces = [p.strip() for p in part.split(";")]
        media = pieces[0].lower()
        weight = 1.0
        for p in pieces[1:]:
            if p.startswith("q="):
                try:
                    weight = float(p[2:])
                except ValueError:
                    weight = 0.0
        if media and weight > 0:
            out.append((-weight, i, media))
    out.sort()
    return [(-w, m) for w, _, m in out]


def choose(request: Request, f: str | None, offered: tuple[str, ...]) -> str:
    """The format key for this request among ``offered`` (``json`` and ``geojson`` are the same for features)."""
    if f:
        key = _ALIASES.get(f.strip().lower(), f.strip().lower())
        if key not in offered:
            raise InvalidQueryError(f"f={f[:40]!r} is not available here; use one of: {', '.join(offered)}")
        return key
    header = request.headers.get("accept", "")
    if not header.strip():
        return offered[0]
    for _, media in _accepted(header):
        if media in ("*/*", "application/*"):
            return offered[0]
        alias = _ALIASES.get(media)
        if alias in offered:
            return alias
        if media == "text/*" and "html" in offered:
            return "html"
    raise NotAcceptableError(
        f"none of the media types in Accept ({header[:100]}) is offered here; offered: "
        + ", ".join(MEDIA_TYPES[k] for k in offered)
    )
