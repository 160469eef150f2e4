"""Indicators (体征) as declared in ``indicators/*.yaml``: what each measures over which layer, at which levels, and
where its thresholds lie. Files are validated against the catalogue when loaded (at start-up): an unknown layer or
field, a filter that does not parse or names what the layer lacks, or a level the layer cannot be grouped by stops
start-up with the file and the place named.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from twin.catalogue import IDENT, Catalogue, FieldType, GeometryKind, LayerSpec, read_model
from twin.errors import CatalogueError, TwinError
from twin.model.filter import Filter
from twin.query.cql import parse_filter
from twin.query.crs import CRS84
from twin.query.filters import check_filter

#: The levels areas are counted at, finest last: each is an administrative layer whose components name their parent
#: in a field (a committee its sub-district, a sub-district its district).
LEVELS = ("district", "subdistrict", "committee")
#: Each level's parent field.
PARENT_FIELD = {"subdistrict": "district", "committee": "subdistrict"}
LEVEL_TITLES = {"district": "区", "subdistrict": "街道/镇", "committee": "居委"}
#: The three bands of an indicator's value and their default colours.
BANDS = ("normal", "attention", "warning")
BAND_TITLES = {"normal": "正常", "attention": "关注", "warning": "预警"}
DEFAULT_COLORS = {"normal": "#1a9850", "attention": "#fdae61", "warning": "#d73027"}
_NUMERIC = (FieldType.integer, FieldType.float)


class VitalsConfigError(CatalogueError):
    """An indicator file is malformed; the message names the file and the place."""


class Measure(StrEnum):
    count = "count"  # type: ignore[assignment]  # components that pass the filter (str.count is shadowed)
    share = "share"  # of those that pass ``of`` (all, by default), the percentage that pass the filter
    sum = "sum"  # of a numeric field over those that pass
    mean = "mean"  # of a numeric field over those that pass and have a value
    length = "length"  # km of the lines that pass
    density = "density"  # per km² of the area: components (or km of lines) that pass


class Thresholds(BaseModel):
    """Where 关注 and 预警 begin; with ``higher_is_worse`` false, where they begin going down."""

    model_config = ConfigDict(extra="forbid")
    attention: float
    warning: float
    higher_is_worse: bool = True
    colors: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_COLORS))

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        if self.higher_is_worse and self.warning < self.attention:
            raise ValueError("warning must not be below attention when higher is worse")
        if not self.higher_is_worse and self.warning > self.attention:
            raise ValueError("warning must not be above attention when lower is worse")
        unknown = set(self.colors) - set(BANDS)
        if unknown:
            raise ValueError(f"colors for unknown bands {sorted(unknown)}; the bands are {', '.join(BANDS)}")
        self.colors = {**DEFAULT_COLORS, **self.colors}
        return self

    def band(self, value: float | None) -> str | None:
        """The band of a value (``None`` has none)."""
        if value is None:
            return None
        sign = 1 if self.higher_is_worse else -1
        if sign * value >= sign * self.warning:
            return "warning"
        if sign * value >= sign * self.attention:
            return "attention"
        return "normal"


class IndicatorSpec(BaseModel):
    """One indicator file."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=IDENT)
    title_zh: str
    title_en: str
    category: str
    description: str = ""
    layer: str
    filter: str | None = None
    measure: Measure = Measure.count
    field: str | None = None
    of: str | None = None
    per: str | None = None  # density: "count" or "length"
    unit: str = ""
    levels: list[str] = Field(default_factory=lambda: list(LEVELS))
    thresholds: Thresholds

    @model_validator(mode="after")
    def _consistent(self) -> IndicatorSpec:
        if self.measure in (Measure.sum, Measure.mean) and self.field is None:
            raise ValueError(f"a {self.measure.value} needs a 'field' (the numeric field it adds up)")
        if self.measure not in (Measure.sum, Measure.mean) and self.field is not None:
            raise ValueError(f"'field' is for sum and mean, not {self.measure.value}")
        if self.of is not None and self.measure != Measure.share:
            raise ValueError("'of' (the whole a share is of) is for measure: share only")
        if self.per is not None and (self.measure != Measure.density or self.per not in ("count", "length")):
            raise ValueError("'per' is for measure: density, and is 'count' or 'length'")
        if not self.levels:
            raise ValueError("'levels' is empty; name one or more of " + ", ".join(LEVELS))
        for level in self.levels:
            if level not in LEVELS:
                raise ValueError(f"unknown level {level!r}; levels are {', '.join(LEVELS)}")
        self.levels = [lv for lv in LEVELS if lv in self.levels]
        return self


class Indicator:
    """An indicator checked against the catalogue: its spec, layer and checked filters."""

    def __init__(self, spec: IndicatorSpec, layer: LayerSpec, where: Filter | None, whole: Filter | None) -> None:
        self.spec = spec
        self.layer = layer
        self.where = where
        self.whole = whole
        self.id = spec.id

    @property
    def by_length(self) -> bool:
        """Whether lines are measured by their length (split among the areas they cross), not counted."""
        m = self.spec.measure
        return m == Measure.length or (m == Measure.density and (self.spec.per or (
            "length" if self.layer.geometry == GeometryKind.line else "count")) == "length")

    @property
    def signature(self) -> str:
        """What the kept values were computed from: the spec and the layer's fields."""
        text = self.spec.model_dump_json() + self.layer.model_dump_json()
        return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()

    def value(self, n: float, v: float, d: float, area_km2: float) -> float | None:
        """The indicator's value from an area's kept sums: ``n`` components that pass, ``v`` their value (the
        field's sum, or metres of line), ``d`` the whole of a share."""
        m = self.spec.measure
        if m == Measure.count:
            return n
        if m == Measure.share:
            return None if d <= 0 else 100.0 * n / d
        if m == Measure.sum:
            return v
        if m == Measure.mean:
            return None if n <= 0 else v / n
        if m == Measure.length:
            return v / 1000.0
        amount = v / 1000.0 if self.by_length else n
        return None if area_km2 <= 0 else amount / area_km2


class Indicators(Mapping[str, Indicator]):
    """The indicators of a folder, by id, in file order."""

    def __init__(self, items: list[Indicator]) -> None:
        self._items = {i.id: i for i in items}

    def __getitem__(self, key: str) -> Indicator:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def of_layer(self, layer: str) -> list[Indicator]:
        return [i for i in self._items.values() if i.layer.id == layer]


def checked_filter(text: str | None, layer: LayerSpec) -> Filter | None:
    """A CQL2 text filter of a configuration file checked against ``layer``; :class:`CatalogueError` saying why
    when it does not parse or names what the layer lacks."""
    if text is None:
        return None
    try:
        return check_filter(parse_filter(text, "cql2-text"), layer, CRS84, frozenset(layer.sensitive_fields))
    except TwinError as exc:
        raise CatalogueError(str(exc)) from None


def _checked(path: Path, key: str, text: str | None, layer: LayerSpec) -> Filter | None:
    try:
        return checked_filter(text, layer)
    except CatalogueError as exc:
        raise VitalsConfigError(f"{path}: field {key!r}: {exc}") from None


def load_indicator(path: Path, catalogue: Catalogue) -> Indicator:
    """Read one indicator file and check it against the catalogue."""
    spec = read_model(path, IndicatorSpec, VitalsConfigError, "indicator")
    if spec.layer not in list(catalogue):
        raise VitalsConfigError(f"{path}: field 'layer': no layer {spec.layer!r} in the catalogue "
                                f"(layers: {', '.join(catalogue)})")
    layer = catalogue[spec.layer]
    if spec.field is not None:
        if spec.field not in layer.field_names:
            raise VitalsConfigError(f"{path}: field 'field': layer {layer.id} has no field {spec.field!r} "
                                    f"(fields: {', '.join(layer.field_names)})")
        if layer.field(spec.field).type not in _NUMERIC:
            raise VitalsConfigError(f"{path}: field 'field': {spec.field!r} is {layer.field(spec.field).type.value}; "
                                    f"a {spec.measure.value} needs a number")
    if (spec.measure == Measure.length or spec.per == "length") and layer.geometry != GeometryKind.line:
        raise VitalsConfigError(f"{path}: field 'measure': layer {layer.id} holds {layer.geometry.value}s; "
                                "only lines have a length")
    for i, level in enumerate(spec.levels):
        if level not in list(catalogue):
            raise VitalsConfigError(f"{path}: field 'levels.{i}': the catalogue has no {level} layer to group by")
        if layer.id in LEVELS and LEVELS.index(layer.id) <= LEVELS.index(level):
            raise VitalsConfigError(f"{path}: field 'levels.{i}': {layer.id} components cannot be grouped by "
                                    f"{level} (a level at or below their own)")
    return Indicator(spec, layer, _checked(path, "filter", spec.filter, layer), _checked(path, "of", spec.of, layer))


def load_indicators(directory: Path, catalogue: Catalogue) -> Indicators:
    """Every ``*.yaml`` in ``directory`` (none when it does not exist)."""
    if not directory.is_dir():
        return Indicators([])
    return Indicators([load_indicator(p, catalogue) for p in sorted(directory.glob("*.yaml"))])
