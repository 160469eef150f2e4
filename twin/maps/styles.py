"""How each catalogue layer looks and reads on a map: colours by status, Chinese and English names, popup fields.

One source for the service's web map (through :func:`layer_entry`, sent to the browser as JSON) and for
the folium maps of notebooks and reports, so a faulty hydrant has the same colour everywhere.
"""

from __future__ import annotations

from typing import Any

from twin.catalogue import FieldType, GeometryKind, Group, LayerSpec

#: Chinese and English names of the statuses the catalogue uses.
STATUS_NAMES: dict[str, tuple[str, str]] = {
    "in_service": ("在用", "In service"),
    "faulty": ("故障", "Faulty"),
    "under_repair": ("维修中", "Under repair"),
    "retired": ("已退役", "Retired"),
    "planned": ("规划中", "Planned"),
    "active": ("施工中", "Active"),
    "suspended": ("停工", "Suspended"),
    "completed": ("已竣工", "Completed"),
    "under_renovation": ("改造中", "Under renovation"),
}
#: Legend groups in display order, with their Chinese and English titles.
GROUP_NAMES: dict[Group, tuple[str, str]] = {
    Group.infrastructure: ("市政设施", "Infrastructure"),
    Group.construction: ("建设施工", "Construction"),
    Group.residential: ("居住", "Residential"),
    Group.heritage: ("历史风貌", "Heritage"),
    Group.administrative: ("行政区划", "Administrative"),
}
#: Fields searched by name or address (only those a layer has, and never sensitive ones).
SEARCH_FIELDS = ("name", "address", "project_name")
#: Statuses that must stand out on the map: drawn larger and outlined.
ALERT_STATUSES = frozenset({"faulty", "suspended"})


def status_name(status: str) -> tuple[str, str]:
    """Chinese and English name of a status (the raw value for one the table does not know)."""
    return STATUS_NAMES.get(status, (status, status.replace("_", " ")))


def status_color(spec: LayerSpec, status: str | None) -> str:
    """The catalogue's colour for a component of ``spec`` in ``status`` (the layer colour by default)."""
    return spec.style.status_colors.get(status or "", spec.style.color)


def path_style(spec: LayerSpec, status: str | None) -> dict[str, Any]:
    """Leaflet path options for one component: outline, fill and, for points, the circle radius."""
    colour = status_color(spec, status)
    alert = status in ALERT_STATUSES
    if spec.geometry is GeometryKind.point:
        return {"radius": spec.style.radius + (2 if alert else 0), "color": "#222222" if alert else "#ffffff",
                "weight": 2 if alert else 1, "fill": True, "fillColor": colour, "fillOpacity": 0.95, "opacity": 1.0}
    if spec.geometry is GeometryKind.line:
        return {"color": colour, "weight": spec.style.line_width + (1.5 if alert else 0), "opacity": 0.9}
    return {"color": colour, "weight": spec.style.line_width + (1 if alert else 0), "opacity": 0.9, "fill": True,
            "fillColor": spec.style.fill_color or colour, "fillOpacity": spec.style.fill_opacity,
            "radius": spec.style.radius}


def field_title(spec: LayerSpec, name: str) -> str:
    """A field's Chinese title with its unit: ``压力 (MPa)``."""
    try:
        f = spec.field(name)
    except KeyError:
        return {"status": "状态", "updated_at": "更新时间", "key": "位置编码"}.get(name, name)
    title = f.title_zh or name
    return f"{title} ({f.unit})" if f.unit else title


def search_fields(spec: LayerSpec) -> list[str]:
    """The name/address fields of ``spec`` a search may filter on."""
    return [f.name for f in spec.fields
            if f.name in SEARCH_FIELDS and f.type is FieldType.string and f.sensitive is None]


def layer_entry(spec: LayerSpec) -> dict[str, Any]:
    """Everything the web map needs to draw, toggle, explain and search one layer (JSON-ready)."""
    return {
        "id": spec.id, "code": spec.code, "title_zh": spec.title_zh, "title_en": spec.title_en,
        "group": spec.group.value, "geometry": spec.geometry.value, "min_zoom": spec.min_zoom,
        "color": spec.style.color,
        "statuses": [{"id": s, "zh": status_name(s)[0], "en": status_name(s)[1], "color": status_color(spec, s),
                      "style": path_style(spec, s)} for s in spec.statuses],
        "style": path_style(spec, None), "status_colored": bool(spec.style.status_colors),
        "fields": [{"name": f.name, "title_zh": f.title_zh or f.name, "unit": f.unit, "type": f.type.value}
                   for f in spec.fields],
        "search": search_fields(spec),
    }


def groups() -> list[dict[str, str]]:
    """The legend groups in display order."""
    return [{"id": g.value, "zh": zh, "en": en} for g, (zh, en) in GROUP_NAMES.items()]
