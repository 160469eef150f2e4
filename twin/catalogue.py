"""The layer catalogue: one declarative YAML file per layer in ``layers/``.

GIS staff edit these files without touching code. ``load_catalogue`` validates every file and
fails with a :class:`~twin.errors.CatalogueError` that names the file and the field.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from twin.errors import CatalogueError, LayerNotFoundError

IDENT = r"^[a-z][a-z0-9_]{0,40}$"
M = TypeVar("M", bound=BaseModel)
#: Columns every layer table has besides its own attributes; attribute names may not reuse them.
RESERVED_COLUMNS = frozenset(
    {"fid", "geom", "geometry", "key", "fp", "version", "changeset", "valid_from", "valid_to",
     "changeset_to", "op", "status", "updated_at", "id"}
)
DEFAULT_STATUSES = ("in_service", "faulty", "under_repair", "retired")


class FieldType(StrEnum):
    """Attribute types, each mapped to a GeoPackage column type."""

    string = "string"
    integer = "integer"
    float = "float"
    boolean = "boolean"
    date = "date"
    datetime = "datetime"

    @property
    def sql(self) -> str:
        return {"string": "TEXT", "integer": "INTEGER", "float": "REAL", "boolean": "BOOLEAN",
                "date": "DATE", "datetime": "DATETIME"}[self.value]


class MaskRule(StrEnum):
    """How a sensitive field is desensitised (脱敏) for roles that may not see it."""

    name = "name"          # 张三丰 -> 张**
    phone = "phone"        # 13812341234 -> 138****1234
    id_number = "id_number"  # first and last characters only
    address = "address"    # cut to building level
    drop = "drop"          # the field is left out


class GeometryKind(StrEnum):
    """Geometry kinds a layer may hold; single and multi parts are both accepted."""

    point = "point"
    line = "line"
    polygon = "polygon"
    point_or_polygon = "point_or_polygon"

    @property
    def gpkg_type(self) -> str:
        return {"point": "POINT", "line": "MULTILINESTRING", "polygon": "MULTIPOLYGON",
                "point_or_polygon": "GEOMETRY"}[self.value]

    @property
    def shapely_types(self) -> frozenset[str]:
        return {
            "point": frozenset({"Point", "MultiPoint"}),
            "line": frozenset({"LineString", "MultiLineString"}),
            "polygon": frozenset({"Polygon", "MultiPolygon"}),
            "point_or_polygon": frozenset({"Point", "MultiPoint", "Polygon", "MultiPolygon"}),
        }[self.value]


class Group(StrEnum):
    """Map legend groups."""

    infrastructure = "infrastructure"
    construction = "construction"
    residential = "residential"
    heritage = "heritage"
    administrative = "administrative"


class FieldSpec(BaseModel):
    """One attribute of a layer."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(pattern=IDENT)]
    type: FieldType = FieldType.string
    title_zh: str | None = None
    required: bool = False
    values: tuple[str | int | float, ...] | None = Field(None, description="Allowed values, if restricted.")
    unit: str | None = None
    description: str = ""
    sensitive: MaskRule | None = Field(None, description="Mask rule for personal data, or none.")
    max_length: int = Field(1000, gt=0, le=100_000)
    measured: bool = Field(False, description="A value status reports may carry (a pressure, a water level).")

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, v: str) -> str:
        if v in RESERVED_COLUMNS:
            raise ValueError(f"{v!r} is reserved for twin's own columns ({', '.join(sorted(RESERVED_COLUMNS))})")
        return v

    @model_validator(mode="after")
    def _measured_is_a_number(self) -> FieldSpec:
        if self.measured and self.type not in (FieldType.integer, FieldType.float):
            raise ValueError(f"field {self.name!r}: only a number can be measured, not a {self.type.value}")
        return self


class Style(BaseModel):
    """Default map style of a layer."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    color: Annotated[str, Field(pattern=r"^#[0-9a-fA-F]{6}$")] = "#3388ff"
    fill_color: Annotated[str | None, Field(pattern=r"^#[0-9a-fA-F]{6}$")] = None
    fill_opacity: float = Field(0.3, ge=0, le=1)
    line_width: float = Field(2.0, gt=0, le=20)
    radius: float = Field(4.0, gt=0, le=30)
    icon: str = "circle"
    status_colors: dict[str, Annotated[str, Field(pattern=r"^#[0-9a-fA-F]{6}$")]] = Field(default_factory=dict)


class LayerSpec(BaseModel):
    """One layer of city components, as declared in ``layers/<id>.yaml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[str, Field(pattern=IDENT)]
    code: Annotated[str, Field(pattern=r"^[A-Z]{2}$", description="Two-letter prefix of location keys.")]
    title_zh: Annotated[str, Field(min_length=1)]
    title_en: Annotated[str, Field(min_length=1)]
    group: Group
    geometry: GeometryKind
    description: str = ""
    min_zoom: int = Field(14, ge=0, le=22, description="Minimum zoom at which raw features are drawn.")
    statuses: tuple[str, ...] = DEFAULT_STATUSES
    style: Style = Style()
    fields: tuple[FieldSpec, ...] = ()
    identity: tuple[str, ...] | None = Field(
        None, description="Fields that name a component (a permit number, a name): an import adding rows whose "
                          "values equal a nearby component's is warned of duplicates. Default: name, if the "
                          "layer has it; [] turns the check off.")

    @model_validator(mode="after")
    def _unique_fields(self) -> LayerSpec:
        seen: set[str] = set()
        for f in self.fields:
            if f.name in seen:
                raise ValueError(f"field {f.name!r} is declared twice")
            seen.add(f.name)
        if self.id.endswith("_history"):
            raise ValueError("a layer id may not end in '_history'")
        unknown = [n for n in self.identity or () if n not in seen]
        if unknown:
            raise ValueError(f"identity names {', '.join(map(repr, unknown))}, which is not a field of the layer "
                             f"({', '.join(sorted(seen)) or 'none'})")
        return self

    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]

    @property
    def identity_fields(self) -> tuple[str, ...]:
        """The fields that identify a component: ``identity``, else ``name`` when the layer has one."""
        if self.identity is not None:
            return self.identity
        return ("name",) if "name" in self.field_names else ()

    def field(self, name: str) -> FieldSpec:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    @property
    def sensitive_fields(self) -> dict[str, MaskRule]:
        return {f.name: f.sensitive for f in self.fields if f.sensitive is not None}


class Catalogue(Mapping[str, LayerSpec]):
    """The validated set of layers, by id."""

    def __init__(self, layers: list[LayerSpec]) -> None:
        self._layers = {spec.id: spec for spec in layers}
        self._by_code = {spec.code: spec for spec in layers}

    def __getitem__(self, layer_id: str) -> LayerSpec:
        try:
            return self._layers[layer_id]
        except KeyError:
            raise LayerNotFoundError(layer_id, list(self._layers)) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._layers)

    def __len__(self) -> int:
        return len(self._layers)

    def by_code(self, code: str) -> LayerSpec:
        """The layer whose key prefix is ``code``."""
        try:
            return self._by_code[code]
        except KeyError:
            raise LayerNotFoundError(code, list(self._by_code)) from None


def _loc(loc: tuple[Any, ...], data: Any) -> str:
    """Turn a pydantic error location into a readable path, naming fields by their ``name``."""
    parts: list[str] = []
    node = data
    for step in loc:
        if isinstance(step, int) and isinstance(node, list) and 0 <= step < len(node):
            item = node[step]
            label = item.get("name") if isinstance(item, dict) else None
            parts[-1] = f"{parts[-1]}[{step}]" + (f" ({label})" if label else "")
            node = item
        else:
            parts.append(str(step))
            node = node.get(step) if isinstance(node, dict) else None
    return ".".join(parts)


def read_model(path: Path, model: type[M], error: type[CatalogueError], what: str) -> M:
    """One YAML configuration file (a layer, an indicator, a rule) validated as ``model``, its ``id`` the file's
    name; ``error`` naming the file and the place when it is not."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise error(f"{path}: not valid UTF-8 YAML: {exc}") from None
    if not isinstance(data, dict):
        raise error(f"{path}: expected a mapping of {what} settings at the top level")
    try:
        found = model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = _loc(err["loc"], data) or "(top level)"
        raise error(f"{path}: field {where!r}: {err['msg']}") from None
    given = getattr(found, "id", path.stem)
    if given != path.stem:
        raise error(f"{path}: field 'id': {given!r} must match the file name {path.stem!r}")
    return found


def load_layer(path: Path) -> LayerSpec:
    """Read and validate one catalogue file."""
    return read_model(path, LayerSpec, CatalogueError, "layer")


def load_catalogue(directory: Path) -> Catalogue:
    """Load every ``*.yaml`` file in ``directory``; ids and key codes must be unique."""
    if not directory.is_dir():
        raise CatalogueError(f"{directory}: catalogue folder not found")
    specs: list[LayerSpec] = []
    codes: dict[str, Path] = {}
    for path in sorted(directory.glob("*.yaml")):
        spec = load_layer(path)
        if spec.code in codes:
            raise CatalogueError(f"{path}: field 'code': {spec.code!r} is already used by {codes[spec.code].name}")
        codes[spec.code] = path
        specs.append(spec)
    if not specs:
        raise CatalogueError(f"{directory}: no layer files (*.yaml) found")
    return Catalogue(specs)


def layer_id_is_valid(name: str) -> bool:
    """Whether ``name`` is a well-formed layer id (used before any SQL identifier is formed)."""
    return re.fullmatch(IDENT, name) is not None
