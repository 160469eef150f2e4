"""The service's web pages, built with folium: the planners' map (``/map``) and the import page (``/import``).

folium lays out the page and the Leaflet map, :class:`~twin.maps.assets.LocalFigure` points every asset
at the service's ``/static`` copy, and twin's own scripts (``twin/api/static/twin``) do the rest in the
browser from a JSON configuration made here from the catalogue, for the user who asks (see
:mod:`twin.maps.viewer`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import folium
from folium.elements import JSCSSMixin
from folium.template import Template
from jinja2 import Environment, FileSystemLoader, select_autoescape

from twin.access import Principal
from twin.catalogue import Catalogue, GeometryKind, Group
from twin.maps.assets import STATIC_DIR, Inline, LocalFigure
from twin.maps.basemap import online_basemaps
from twin.maps.styles import groups, layer_entry
from twin.maps.viewer import Seen, can_write, fields_seen, user_entry, variant_tag
from twin.settings import MapSettings

_TEMPLATES = Environment(loader=FileSystemLoader(STATIC_DIR.parent / "templates"), autoescape=select_autoescape(),
                         trim_blocks=True, lstrip_blocks=True)
#: Drawing order of tiled layers: areas under lines under points.
_ORDER = {GeometryKind.polygon: 0, GeometryKind.point_or_polygon: 1, GeometryKind.line: 2, GeometryKind.point: 3}
_COMMON_JS = [("vectorGrid", "static:vendor/vectorgrid/Leaflet.VectorGrid.bundled.min.js"),
              ("twin_i18n", "static:twin/i18n.js"), ("twin_geo", "static:twin/geo.js")]


def map_config(catalogue: Catalogue, seen: Mapping[str, Seen], settings: MapSettings, who: Principal, *,
               root: str = "", tiles: str | None = None,
               city_bbox: tuple[float, float, float, float] = (120.85, 30.67, 122.25, 31.88)) -> dict[str, Any]:
    """What the browser needs, as ``who`` sees it: layers (style, fields, counts, how each is drawn), basemaps,
    URLs, the view, and the user with their area.

    ``seen`` holds the layers ``who`` may read, with their counts and extents inside ``who``'s area (the
    caller counts them); no other layer is listed. ``tiles`` is the vector-tile URL template with
    ``{layers}``, ``{z}``, ``{x}``, ``{y}`` (``None`` when the service has no tiles: big layers are then drawn
    from GeoJSON of the view, zoomed in).
    """
    layers = []
    for spec in catalogue.values():
        if spec.id not in seen:
            continue
        got = seen[spec.id]
        entry = layer_entry(spec)
        mode = "geojson" if got.exact and got.count <= settings.geojson_max else ("tiles" if tiles else "view")
        layers.append({**entry, "fields": fields_seen(spec, entry["fields"], who), "count": got.count,
                       "count_exact": got.exact, "extent": got.extent if got.count else None, "mode": mode,
                       "order": (_ORDER[spec.geometry], -got.count),
                       "visible": spec.group is not Group.administrative})
    writable = [{"id": s.id, "code": s.code, "title_zh": s.title_zh, "title_en": s.title_en}
                for s in catalogue.values() if can_write(who, s.id)]
    user = user_entry(who, catalogue, can_import=bool(writable))
    if user["area"] is not None:  # a scoped user opens on their area
        view = user["area"]["bbox"]
    else:  # where the twin has most components (the whole city for a full twin, the focus of a demo)
        busiest = max((la for la in layers if la["extent"] and la["group"] != Group.administrative.value),
                      key=lambda la: la["count"], default=None)
        view = busiest["extent"] if busiest else city_bbox
    basemaps = [{"id": "twin", "zh": "离线底图（本地数据）", "en": "Offline basemap (local data)", "crs": "wgs84"},
                *online_basemaps(settings), {"id": "none", "zh": "无底图", "en": "No basemap", "crs": "wgs84"}]
    return {"api": root, "tiles": f"{tiles}?v={variant_tag(who)}" if tiles else None,
            "roads": f"{root}/map/basemap/roads.geojson", "layers": layers, "groups": groups(),
            "basemaps": basemaps, "view": list(view), "import": f"{root}/import", "map": f"{root}/map",
            "login": f"{root}/login?next=", "logout": f"{root}/logout", "user": user, "writable": writable,
            "changes": f"{root}/changes/stream"}


class _App(JSCSSMixin):
    """Starts one of twin's page scripts on the folium map with the page's configuration."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        {{ this.start }}({{ this._parent.get_name() }}, {{ this.config|tojson }});
        {% endmacro %}
    """)

    def __init__(self, start: str, config: dict[str, Any]) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # branca's MacroElement.__init__ has no annotations
        self._name = "TwinApp"
        self.start, self.config = start, config


# folium annotates default_js and default_css as instance attributes, though they are read from the class
class MapApp(_App):
    default_js: ClassVar[list[tuple[str, str]]] = [  # type: ignore[misc]
        *_COMMON_JS, ("twin_layers", "static:twin/layers.js"), ("twin_popups", "static:twin/popups.js"),
        ("twin_tools", "static:twin/tools.js"), ("twin_live", "static:twin/live.js"),
        ("twin_timebar", "static:twin/timebar.js"), ("twin_vitals", "static:twin/vitals.js"),
        ("twin_watch", "static:twin/watch.js"),
        ("twin_map", "static:twin/map.js")]
    default_css: ClassVar[list[tuple[str, str]]] = [("twin_css", "static:twin/map.css")]  # type: ignore[misc]


class ImportApp(_App):
    default_js: ClassVar[list[tuple[str, str]]] = [  # type: ignore[misc]
        *_COMMON_JS, ("twin_import", "static:twin/import.js")]
    default_css: ClassVar[list[tuple[str, str]]] = [("twin_css", "static:twin/map.css")]  # type: ignore[misc]


def _page(app: _App, template: str, title: str, config: dict[str, Any], assets: str, **context: Any) -> str:
    view = config["view"]
    fmap = folium.Map(location=[(view[1] + view[3]) / 2, (view[0] + view[2]) / 2], zoom_start=10, tiles=None,
                      zoom_control="bottomright", control_scale=False, max_zoom=22)
    # these pages draw with Leaflet alone: leave out folium's jQuery, Bootstrap and icon fonts (about 0.6 MB)
    fmap.default_js = [a for a in fmap.default_js if a[0] == "leaflet"]
    fmap.default_css = [a for a in fmap.default_css if a[0] == "leaflet_css"]
    figure = LocalFigure(assets=assets, title=title)
    figure.add_child(fmap)
    figure.header.add_child(Inline('<meta name="viewport" content="width=device-width, initial-scale=1">'
                                   '<link rel="icon" href="data:,">'), name="viewport")
    figure.html.add_child(Inline(_TEMPLATES.get_template(template).render(config=config, **context)), name="chrome")
    app.add_to(fmap)
    return figure.render()


def map_page(config: dict[str, Any], *, assets: str = "/static") -> str:
    """The planners' map page (HTML)."""
    return _page(MapApp("TwinMap.start", config), "map.html", "twin 上海城市数字孪生地图", config, assets,
                 import_url=config["import"])


def import_page(config: dict[str, Any], *, assets: str = "/static") -> str:
    """The GIS staff's import page (HTML): upload, dry-run report drawn on the map, confirm or cancel."""
    return _page(ImportApp("TwinImport.start", config), "import.html", "twin 数据导入", config, assets,
                 map_url=f"{config['api']}/map")
