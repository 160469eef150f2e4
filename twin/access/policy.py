"""The access policy: roles, the layers each reads and writes, the personal fields each sees unmasked.

Loaded once from YAML (``TWIN_ACCESS_POLICY``, else the packaged ``policy.yaml``) and checked against the
catalogue, so a role naming an unknown layer or field fails at start-up with the file and the place.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from twin.access.users import MAX_DAYS
from twin.catalogue import IDENT, Catalogue, LayerSpec
from twin.errors import AccessConfigError, LayerNotFoundError

DEFAULT_POLICY = Path(__file__).with_name("policy.yaml")

LayerSet = Annotated[str | tuple[str, ...], Field(description='"*" or a list of layer ids.')]


class ScopeRule(StrEnum):
    none = "none"
    optional = "optional"
    required = "required"


class Role(BaseModel):
    """What one role may do."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Annotated[str, Field(pattern=IDENT)]
    read: LayerSet = ()
    write: LayerSet = ()
    unmask: LayerSet = ()
    scope: ScopeRule = ScopeRule.none
    manage: bool = False

    @field_validator("read", "write", "unmask")
    @classmethod
    def _star_or_list(cls, v: str | tuple[str, ...]) -> str | tuple[str, ...]:
        if isinstance(v, str) and v != "*":
            raise ValueError('give "*" or a list')
        return v

    def reads(self, layer: str) -> bool:
        return self.read == "*" or layer in self.read

    def writes(self, layer: str) -> bool:
        return self.write == "*" or layer in self.write

    def unmasked(self, spec: LayerSpec) -> frozenset[str]:
        """The sensitive fields of ``spec`` this role sees as stored."""
        sensitive = spec.sensitive_fields
        if self.unmask == "*":
            return frozenset(sensitive)
        out = set()
        for item in self.unmask:
            layer, _, name = item.partition(".")
            if layer == spec.id:
                out |= set(sensitive) if name == "*" else {name} & set(sensitive)
        return frozenset(out)


class Policy(BaseModel):
    """Every role, the administrative layers areas come from, and the layers open to anyone."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    roles: dict[str, Role]
    area_layers: tuple[str, ...] = ("district", "subdistrict", "committee")
    public_layers: tuple[str, ...] = ()
    token_days: int = Field(90, ge=1, le=MAX_DAYS)

    def role(self, name: str) -> Role:
        try:
            return self.roles[name]
        except KeyError:
            raise AccessConfigError(f"unknown role {name!r}; roles: {', '.join(self.roles)}") from None

    def check(self, catalogue: Catalogue, source: str) -> None:
        """Every layer and field the policy names exists in ``catalogue``."""
        def layer(name: str, where: str) -> LayerSpec:
            try:  # not `name in catalogue`: Mapping.__contains__ lets the catalogue's LayerNotFoundError through
                return catalogue[name]
            except LayerNotFoundError:
                raise AccessConfigError(f"{source}: {where} names unknown layer {name!r}; "
                                        f"layers: {', '.join(catalogue)}") from None

        for name in (*self.area_layers, *self.public_layers):
            layer(name, "area_layers/public_layers")
        for role in self.roles.values():
            for what in ("read", "write"):
                value = getattr(role, what)
                for name in () if value == "*" else value:
                    layer(name, f"roles.{role.name}.{what}")
            for item in () if role.unmask == "*" else role.unmask:
                lname, _, fname = item.partition(".")
                spec = layer(lname, f"roles.{role.name}.unmask")
                if fname != "*" and fname not in spec.sensitive_fields:
                    raise AccessConfigError(f"{source}: roles.{role.name}.unmask names {item!r}, but {lname} has "
                                            f"no sensitive field {fname!r} (it has: "
                                            f"{', '.join(spec.sensitive_fields) or 'none'})")


def load_policy(path: Path | None, catalogue: Catalogue) -> Policy:
    """The policy in ``path`` (the packaged default when ``None``), checked against ``catalogue``."""
    path = Path(path) if path is not None else DEFAULT_POLICY
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise AccessConfigError(f"{path}: cannot read the access policy: {exc}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("roles"), dict):
        raise AccessConfigError(f"{path}: an access policy needs a 'roles' mapping")
    raw["roles"] = {name: {"name": name, **(spec or {})} for name, spec in raw["roles"].items()}
    try:
        policy = Policy.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise AccessConfigError(f"{path}: {where}: {err['msg']}") from None
    policy.check(catalogue, str(path))
    return policy
