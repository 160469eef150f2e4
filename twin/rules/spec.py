"""Risk rules as declared in ``rules/*.yaml``: what condition raises an alert, how severe it is, and the text shown to
the officer. Files are checked against the catalogue (and the indicators) when loaded, at start-up: an unknown layer,
a filter that does not parse, an unknown indicator or level stops start-up with the file and the place named.

Two kinds:

- ``proximity``: a component of one layer (``subject``, with a filter) within ``within_m`` metres of one of another
  (``object``, with a filter); 0 m means touching or crossing. One alert per pair.
- ``indicator``: an indicator's value in an area of a level past a bound (``above`` or ``below``). One alert per
  area.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from twin.catalogue import IDENT, Catalogue, LayerSpec, read_model
from twin.errors import CatalogueError
from twin.model.filter import Filter
from twin.vitals.spec import LEVELS, Indicators, checked_filter

#: The largest distance a proximity rule may ask about.
MAX_WITHIN_M = 1000.0


class RulesConfigError(CatalogueError):
    """A rule file is malformed; the message names the file and the place."""


class Side(BaseModel):
    model_config = ConfigDict(extra="forbid")
    layer: str
    filter: str | None = None


class RuleSpec(BaseModel):
    """One rule file."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=IDENT)
    title_zh: str
    title_en: str
    severity: Literal["high", "medium", "low"] = "medium"
    kind: Literal["proximity", "indicator"]
    message: str
    subject: Side | None = None
    object: Side | None = None
    within_m: float | None = Field(None, ge=0, le=MAX_WITHIN_M)
    indicator: str | None = None
    level: str | None = None
    above: float | None = None
    below: float | None = None

    @model_validator(mode="after")
    def _consistent(self) -> RuleSpec:
        if self.kind == "proximity":
            if self.subject is None or self.object is None or self.within_m is None:
                raise ValueError("a proximity rule needs 'subject', 'object' and 'within_m'")
            if self.indicator is not None or self.above is not None or self.below is not None:
                raise ValueError("'indicator', 'above' and 'below' are for indicator rules")
        else:
            if self.indicator is None or self.level is None or (self.above is None) == (self.below is None):
                raise ValueError("an indicator rule needs 'indicator', 'level' and one of 'above' or 'below'")
            if self.subject is not None or self.object is not None or self.within_m is not None:
                raise ValueError("'subject', 'object' and 'within_m' are for proximity rules")
            if self.level not in LEVELS:
                raise ValueError(f"unknown level {self.level!r}; levels are {', '.join(LEVELS)}")
        return self


class Rule:
    """A rule checked against the catalogue."""

    def __init__(self, spec: RuleSpec, subject: tuple[LayerSpec, Filter | None] | None = None,
                 obj: tuple[LayerSpec, Filter | None] | None = None) -> None:
        self.spec = spec
        self.id = spec.id
        self.subject = subject
        self.object = obj

    @property
    def layers(self) -> tuple[str, ...]:
        """The layers whose changes can change the rule's alerts."""
        if self.subject is None or self.object is None:
            return ()
        return tuple(dict.fromkeys((self.subject[0].id, self.object[0].id)))

    @cached_property
    def signature(self) -> str:
        """What the kept alerts were found by: the rule file as read."""
        return hashlib.blake2b(self.spec.model_dump_json().encode(), digest_size=8).hexdigest()


class Rules(Mapping[str, Rule]):
    def __init__(self, items: list[Rule]) -> None:
        self._items = {r.id: r for r in items}

    def __getitem__(self, key: str) -> Rule:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


def load_rule(path: Path, catalogue: Catalogue, indicators: Indicators) -> Rule:
    """Read one rule file and check it against the catalogue and the indicators."""
    spec = read_model(path, RuleSpec, RulesConfigError, "rule")
    if spec.kind == "indicator":
        if spec.indicator not in indicators:
            raise RulesConfigError(f"{path}: field 'indicator': no indicator {spec.indicator!r} "
                                   "(twin vitals list names them)")
        if spec.level not in indicators[str(spec.indicator)].spec.levels:
            raise RulesConfigError(f"{path}: field 'level': {spec.indicator} is kept at "
                                   f"{', '.join(indicators[str(spec.indicator)].spec.levels)}, not {spec.level}")
        return Rule(spec)
    sides = []
    for name, side in (("subject", spec.subject), ("object", spec.object)):
        assert side is not None
        if side.layer not in list(catalogue):
            raise RulesConfigError(f"{path}: field '{name}.layer': no layer {side.layer!r} in the catalogue "
                                   f"(layers: {', '.join(catalogue)})")
        layer = catalogue[side.layer]
        try:
            flt = checked_filter(side.filter, layer)
        except CatalogueError as exc:
            raise RulesConfigError(f"{path}: field '{name}.filter': {exc}") from None
        sides.append((layer, flt))
    return Rule(spec, sides[0], sides[1])


def load_rules(directory: Path, catalogue: Catalogue, indicators: Indicators) -> Rules:
    """Every ``*.yaml`` in ``directory`` (none when it does not exist)."""
    if not directory.is_dir():
        return Rules([])
    return Rules([load_rule(p, catalogue, indicators) for p in sorted(directory.glob("*.yaml"))])
