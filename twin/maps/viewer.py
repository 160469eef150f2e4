"""The map as one user sees it: who they are, their area, and the layers and fields their role reads or writes.

Nothing here grants access: the API and the tiles scope and mask every answer themselves. This only keeps
the pages from offering what the user cannot have (a layer they may not read, a field dropped for their role,
an import they may not make) and tells them why a value looks like 王** (脱敏).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson
import shapely

from twin.access import Area, Principal
from twin.catalogue import Catalogue, LayerSpec
from twin.errors import AuthenticationError, PermissionDeniedError
from twin.query.masking import maskers

Box = tuple[float, float, float, float]
#: Chinese and English names of the packaged policy's roles (a role a site adds shows its own name).
ROLE_NAMES: dict[str, tuple[str, str]] = {
    "admin": ("管理员", "Administrator"),
    "gis_editor": ("GIS 数据编辑", "GIS editor"),
    "planner": ("规划人员", "Planner"),
    "area_officer": ("辖区工作人员", "Area officer"),
    "app": ("应用账号", "Service account"),
    "anonymous": ("访客", "Visitor"),
}
#: Outlines of areas are sent simplified to about a metre.
_OUTLINE_TOLERANCE = 1e-5


@dataclass(frozen=True)
class Seen:
    """How much of one layer a user sees: how many components (exact, or a lower bound) and where."""

    count: int
    extent: Box | None
    exact: bool = True


def can_write(who: Principal, layer: str) -> bool:
    try:
        who.check_write(layer)
    except (AuthenticationError, PermissionDeniedError):
        return False
    return True


def fields_seen(spec: LayerSpec, fields: list[dict[str, Any]], who: Principal) -> list[dict[str, Any]]:
    """The popup fields of ``spec`` as ``who`` sees them: dropped ones left out, masked ones flagged."""
    rules = maskers(spec, who.unmasked(spec))
    return [{**f, "masked": f["name"] in rules} for f in fields
            if not (f["name"] in rules and rules[f["name"]] is None)]


def variant_tag(who: Principal) -> str:
    """A short tag of what ``who`` sees, added to tile URLs so no browser cache mixes two users' tiles."""
    return hashlib.blake2b(who.variant.encode(), digest_size=6).hexdigest()


def area_entry(area: Area, catalogue: Catalogue) -> dict[str, Any]:
    """The user's area for the map: key, name, kind (居委, 街道/镇, 区), bounds and outline (GeoJSON)."""
    spec = catalogue[area.layer]
    outline = shapely.simplify(area.geometry, _OUTLINE_TOLERANCE, preserve_topology=True)
    return {"key": area.key, "name": area.name, "layer": area.layer, "zh": spec.title_zh, "en": spec.title_en,
            "bbox": list(area.bounds), "outline": orjson.loads(shapely.to_geojson(outline))}


def user_entry(who: Principal, catalogue: Catalogue, *, can_import: bool) -> dict[str, Any]:
    """The header's user: name, role in Chinese and English, area, and whether the import page is theirs."""
    zh, en = ROLE_NAMES.get(who.role.name, (who.role.name, who.role.name.replace("_", " ")))
    return {"name": who.name, "anonymous": who.anonymous, "role": who.role.name, "zh": zh, "en": en,
            "area": None if who.area is None else area_entry(who.area, catalogue), "can_import": can_import}
