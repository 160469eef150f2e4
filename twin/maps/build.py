"""``build_map``: a folium map of chosen layers of a store or a twin service, for notebooks and reports.

The map carries its data (GeoJSON of the components in the bbox that pass the CQL2 filter), the
offline basemap (main roads and district outlines) and a Chinese legend; with the default
``assets="inline"`` it also carries Leaflet and folium's other scripts, so the saved HTML opens on a
computer with no network at all.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import folium
from branca.element import MacroElement
from folium.template import Template

from twin.catalogue import Catalogue, GeometryKind, LayerSpec
from twin.errors import InvalidQueryError
from twin.maps.assets import LocalFigure
from twin.maps.basemap import ROAD_STYLES, roads_in
from twin.maps.sources import Box, Layer, Source, open_source
from twin.maps.styles import GROUP_NAMES, field_title, path_style, status_color, status_name
from twin.store import Store

DEFAULT_MAX_FEATURES = 20_000
SHANGHAI = (120.85, 30.67, 122.25, 31.88)


def build_map(source: Store | Path | str, layers: Sequence[str] | None = None,
              bbox: Box | None = None, filter: str | None = None, *, catalogue: Catalogue | None = None,
              basemap: bool = True, assets: str = "inline", max_features: int = DEFAULT_MAX_FEATURES,
              title: str | None = None, token: str | None = None) -> folium.Map:
    """A folium map of ``layers`` (default: every layer) within ``bbox``, filtered by a CQL2 ``filter``.

    Parameters
    ----------
    source
        An open store, a store file, or the URL of a twin service (``http://host:8000``).
    layers
        Layer ids; each is one toggle in the map's layer control.
    bbox
        ``(minx, miny, maxx, maxy)`` in lon/lat; the map opens on it (default: the data, else Shanghai).
    filter
        CQL2 text applied to every chosen layer (``status = 'faulty'``); a layer lacking a field it names
        is an error.
    assets
        ``"inline"`` to embed Leaflet and folium's scripts (self-contained file), or the URL where a twin
        service serves its static files (``"/static"``).
    max_features
        Most components drawn per layer; the legend says when a layer was cut.
    token
        For a service: your API token (default: the ``TWIN_TOKEN`` variable); the map then holds what the
        service shows you (your area, personal fields masked for your role). A store is read as the API
        reads it for a user with no area and no unmasked fields.
    """
    src = open_source(source, catalogue, token)
    try:
        specs = [src.catalogue[name] for name in (list(src.catalogue) if layers is None else layers)]
        data = {spec.id: _read(src, spec, bbox, filter, max_features) for spec in specs}
        view = bbox or _extent(data) or SHANGHAI
        fmap = folium.Map(location=[(view[1] + view[3]) / 2, (view[0] + view[2]) / 2], zoom_start=_zoom(view),
                          tiles=None, control_scale=False, prefer_canvas=False)
        LocalFigure(assets=assets, title=title or "twin 上海城市数字孪生地图").add_child(fmap)
        Chrome().add_to(fmap)  # type: ignore[no-untyped-call]  # branca's MacroElement.__init__ has no annotations
        if basemap:
            _basemap(src, fmap, bbox, skip=set(data))
        for spec in specs:
            _overlay(src, spec, data[spec.id]).add_to(fmap)
        Legend(specs, data, title).add_to(fmap)
        folium.LayerControl(collapsed=False).add_to(fmap)
        fmap.fit_bounds([[view[1], view[0]], [view[3], view[2]]])
        return fmap
    finally:
        src.close()


def _read(src: Source, spec: LayerSpec, bbox: Box | None, cql: str | None, limit: int) -> Layer:
    try:
        return src.features(spec.id, bbox, cql, limit)
    except InvalidQueryError as exc:
        raise InvalidQueryError(f"layer {spec.id}: {exc}") from None


def _extent(data: dict[str, Layer]) -> Box | None:
    xs: list[float] = []
    ys: list[float] = []
    for layer in data.values():
        for f in layer.features:
            _coords(f["geometry"]["coordinates"], xs, ys)
    return (min(xs), min(ys), max(xs), max(ys)) if xs else None


def _coords(c: Any, xs: list[float], ys: list[float]) -> None:
    if c and isinstance(c[0], int | float):
        xs.append(c[0])
        ys.append(c[1])
    else:
        for part in c:
            _coords(part, xs, ys)


def _zoom(box: Box) -> int:
    span = max(box[2] - box[0], (box[3] - box[1]) * 1.2, 1e-4)
    return int(max(3, min(18, math.floor(math.log2(360 / span)) + 1)))


def _basemap(src: Source, fmap: folium.Map, bbox: Box | None, skip: set[str]) -> None:
    """Main roads and (when not drawn as a layer already) district outlines, as one 'basemap' layer."""
    group = folium.FeatureGroup(name="底图 Basemap", control=True, overlay=True)
    roads = roads_in(bbox)
    if len(roads):
        folium.GeoJson(roads.__geo_interface__, name="roads", interactive=False,
                       style_function=lambda f: {**ROAD_STYLES[f["properties"]["c"]], "opacity": 1.0}).add_to(group)
    if "district" in src.catalogue and "district" not in skip:
        outline = src.features("district", bbox, None, 100)
        if outline.features:
            folium.GeoJson({"type": "FeatureCollection", "features": outline.features}, interactive=False,
                           style_function=lambda f: {"color": "#555555", "weight": 2, "fill": False,
                                                     "dashArray": "6 4"}).add_to(group)
    group.add_to(fmap)


def _popup_fields(spec: LayerSpec, feats: list[dict[str, Any]]) -> list[str]:
    present = {k for f in feats[:200] for k, v in f["properties"].items() if v is not None}
    return ["key", "status_zh", *(n for n in spec.field_names if n in present)]


def _alias(spec: LayerSpec, name: str) -> str:
    return {"api": "API", "status_zh": "状态", "key": "位置编码"}.get(name) or field_title(spec, name)


def _overlay(src: Source, spec: LayerSpec, layer: Layer) -> folium.FeatureGroup:
    """One layer as a toggle: components coloured by status, with a Chinese popup of their attributes."""
    label = f"{spec.title_zh} {spec.title_en} ({len(layer.features):,}{'+' if layer.truncated else ''})"
    group = folium.FeatureGroup(name=label, overlay=True, show=True)
    if not layer.features:
        folium.GeoJson({"type": "FeatureCollection", "features": []}, name=spec.id).add_to(group)
        return group
    api = src.item_url(spec.id, "") is not None
    for f in layer.features:
        props = f["properties"]
        props["key"] = f.get("id")
        props["status_zh"] = status_name(str(props.get("status")))[0] if props.get("status") else None
        if api:
            props["api"] = src.item_url(spec.id, str(f.get("id")))
    fields = _popup_fields(spec, layer.features) + (["api"] if api else [])
    styles = {s: path_style(spec, s) for s in spec.statuses}
    plain = path_style(spec, None)
    points = spec.geometry in (GeometryKind.point, GeometryKind.point_or_polygon)
    folium.GeoJson(
        {"type": "FeatureCollection", "features": layer.features}, name=spec.id,
        style_function=lambda f: styles.get(f["properties"].get("status"), plain),
        marker=folium.CircleMarker(radius=spec.style.radius) if points else None,
        popup=folium.GeoJsonPopup(fields=fields, aliases=[_alias(spec, n) for n in fields], max_width=360),
        tooltip=folium.GeoJsonTooltip(fields=["key"], aliases=[spec.title_zh]),
    ).add_to(group)
    return group


class Chrome(MacroElement):
    """A metric scale bar and the paper colour of the offline basemap."""

    _template = Template("""
        {% macro header(this, kwargs) %}
        <style>.leaflet-container{background:#f2efe9}</style>
        {% endmacro %}
        {% macro script(this, kwargs) %}
        L.control.scale({imperial: false}).addTo({{ this._parent.get_name() }});
        {% endmacro %}
    """)


class Legend(MacroElement):
    """A fixed legend box: each layer's colour per status, grouped as the catalogue groups layers."""

    _template = Template("""
        {% macro html(this, kwargs) %}
        <div class="twin-legend" style="position:absolute;bottom:40px;left:10px;z-index:1000;background:#fff;
             padding:8px 10px;border-radius:6px;box-shadow:0 1px 4px rgba(0,0,0,.3);font:13px/1.5 sans-serif;
             max-height:60%;overflow:auto">{{ this.body }}</div>
        {% endmacro %}
    """)

    def __init__(self, specs: list[LayerSpec], data: dict[str, Layer], title: str | None) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # branca's MacroElement.__init__ has no annotations
        self._name = "TwinLegend"
        self.body = legend_html(specs, data, title)


def legend_html(specs: list[LayerSpec], data: dict[str, Layer], title: str | None) -> str:
    """The legend's HTML (escaped)."""
    out = [f"<b>{html.escape(title or '图例 Legend')}</b>"]
    for group, (zh, en) in GROUP_NAMES.items():
        members = [s for s in specs if s.group is group]
        if not members:
            continue
        out.append(f"<div style='margin-top:4px;color:#666'>{zh} {en}</div>")
        for spec in members:
            layer = data[spec.id]
            cut = f" · 仅显示前 {len(layer.features):,} 个" if layer.truncated else ""
            out.append(f"<div><b>{html.escape(spec.title_zh)}</b> {html.escape(spec.title_en)}"
                       f" ({len(layer.features):,}{cut})</div>")
            statuses = spec.statuses if spec.style.status_colors else ()
            for s in statuses:
                out.append(f"<div style='margin-left:10px'><span style='display:inline-block;width:10px;"
                           f"height:10px;border-radius:5px;background:{status_color(spec, s)}'></span> "
                           f"{status_name(s)[0]} {status_name(s)[1]}</div>")
    return "".join(out)
