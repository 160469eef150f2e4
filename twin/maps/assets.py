"""Folium maps that load nothing from outside: every script and style sheet is twin's own copy.

folium and branca write ``<script src>`` / ``<link href>`` tags pointing at public CDNs. A
:class:`LocalFigure` renders its children first (that is when they add those tags), then points every
tag at the copy in ``twin/api/static`` (fetched by ``scripts/vendor-assets``): as a URL under the
service's ``/static`` mount, or inlined as a ``data:`` URI so that one HTML file carries everything (for
notebooks, reports and intranets). A tag twin has no copy of is an error rather than a silent CDN fetch.
"""

from __future__ import annotations

import base64
import mimetypes
import re
from functools import cache
from pathlib import Path
from typing import cast

from branca.element import CssLink, Element, Figure, JavascriptLink

from twin.errors import OfflineAssetError

STATIC_DIR = Path(__file__).resolve().parent.parent / "api" / "static"
#: ``default_js``/``default_css`` URLs with this prefix name a file under :data:`STATIC_DIR`.
STATIC = "static:"
#: folium's and branca's asset names (as they add them to the page header) and twin's copy of each.
FOLIUM_ASSETS = {
    "leaflet": "vendor/leaflet/leaflet.js",
    "leaflet_css": "vendor/leaflet/leaflet.css",
    "jquery": "vendor/jquery/jquery.min.js",
    "bootstrap": "vendor/bootstrap/js/bootstrap.bundle.min.js",
    "bootstrap_css": "vendor/bootstrap/css/bootstrap.min.css",
    "glyphicons_css": "vendor/glyphicons/glyphicons.css",
    "awesome_markers": "vendor/awesome-markers/leaflet.awesome-markers.js",
    "awesome_markers_css": "vendor/awesome-markers/leaflet.awesome-markers.css",
    "awesome_markers_font_css": "vendor/fontawesome/css/all.min.css",
    "awesome_rotate_css": "twin/awesome-rotate.css",
    "d3": "vendor/d3/d3.min.js",
    "vectorGrid": "vendor/vectorgrid/Leaflet.VectorGrid.bundled.min.js",
}
_CSS_URL = re.compile(r"url\(\s*(['\"]?)([^'\")]+)\1\s*\)")
_FONT_SRC = re.compile(r"src:\s*([^;}]*)")
_FONT_ENTRY = re.compile(r"url\([^)]*\)\s*format\(\s*['\"]?([\w-]+)['\"]?\s*\)")
_MEDIA = {".js": "text/javascript", ".css": "text/css", ".woff2": "font/woff2", ".woff": "font/woff",
          ".ttf": "font/ttf", ".png": "image/png", ".svg": "image/svg+xml"}


def static_path(relative: str) -> Path:
    """The file of a static asset, checked to exist and to stay inside the static folder."""
    path = (STATIC_DIR / relative).resolve()
    if STATIC_DIR not in path.parents or not path.is_file():
        raise OfflineAssetError(f"{relative}: no such asset in {STATIC_DIR}; run scripts/vendor-assets")
    return path


def asset_of(name: str, url: str) -> str:
    """The static file (relative to :data:`STATIC_DIR`) that replaces the page asset ``name`` at ``url``."""
    if url.startswith(STATIC):
        return url[len(STATIC):]
    if name in FOLIUM_ASSETS:
        return FOLIUM_ASSETS[name]
    raise OfflineAssetError(
        f"the map asks for {name!r} from {url}, which twin does not serve itself; nothing may be loaded from "
        "outside: add it to scripts/vendor-assets and twin.maps.assets.FOLIUM_ASSETS, or leave that feature out")


def media_type(path: Path) -> str:
    return _MEDIA.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def data_uri(data: bytes, media: str) -> str:
    return f"data:{media};base64,{base64.b64encode(data).decode('ascii')}"


def _first_font(match: re.Match[str]) -> str:
    """Keep one font format of an ``@font-face`` source list (WOFF2 when offered): one copy inlined, not four."""
    entries = _FONT_ENTRY.findall(match.group(1))
    if not entries:
        return match.group(0)
    choice = "woff2" if "woff2" in entries else entries[0]
    for item in re.finditer(r"url\([^)]*\)\s*format\([^)]*\)", match.group(1)):
        if choice in item.group(0):
            return f"src:{item.group(0)}"
    return match.group(0)


@cache
def inline_css(relative: str) -> str:
    """A style sheet with every ``url()`` it uses replaced by a ``data:`` URI (fonts cut to one format)."""
    path = static_path(relative)
    css = _FONT_SRC.sub(_first_font, path.read_text(encoding="utf-8"))

    def embed(match: re.Match[str]) -> str:
        target = match.group(2).split("?")[0].split("#")[0]
        if not target or target.startswith("data:"):  # data already, or an in-document reference (#default#VML)
            return match.group(0)
        file = static_path(str((path.parent / target).resolve().relative_to(STATIC_DIR)))
        return f'url("{data_uri(file.read_bytes(), media_type(file))}")'

    return _CSS_URL.sub(embed, css)


@cache
def inline_tag(relative: str) -> str:
    """A ``<script>`` or ``<style>`` element holding a static asset (style sheets with their images and fonts)."""
    path = static_path(relative)
    if path.suffix == ".css":
        return "<style>" + inline_css(relative).replace("</style", "<\\/style") + "</style>"
    code = path.read_text(encoding="utf-8").replace("</script", "<\\/script")
    return "<script>" + code + "</script>"


class Inline(Element):
    """Markup written as it is (a plain branca Element would read script code as a Jinja template)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def render(self, **kwargs: object) -> str:
        return self.text


def localise(header: Element, assets: str) -> None:
    """Point every script and style-sheet link in ``header`` at twin's copy (``assets``: "inline" or a URL).

    Inlined assets become ``<script>``/``<style>`` elements in place of the links, in the same order.
    """
    for name, child in list(header._children.items()):
        if not isinstance(child, JavascriptLink | CssLink):
            continue
        relative = asset_of(name, child.url)
        if assets == "inline":
            header._children[name] = Inline(inline_tag(relative))
        else:
            static_path(relative)
            child.url = f"{assets.rstrip('/')}/{relative}"


class LocalFigure(Figure):
    """A branca Figure whose page loads its scripts and styles from twin, never from a CDN.

    Parameters
    ----------
    assets
        ``"inline"`` (default) to embed every asset in the page, or the URL the service mounts
        ``twin/api/static`` at (such as ``"/static"``).
    """

    def __init__(self, assets: str = "inline", **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.assets = assets

    def render(self, **kwargs: object) -> str:
        for child in self._children.values():
            child.render(**kwargs)
        localise(self.header, self.assets)
        return cast(str, self._template.render(this=self, kwargs=kwargs))  # jinja2's Template() is typed Any
