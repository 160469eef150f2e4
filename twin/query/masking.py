"""Desensitising (脱敏) personal fields before they leave the service.

Every field marked ``sensitive`` in the catalogue leaves the service masked by its rule, unless the
caller's role is allowed to see it (see :mod:`twin.access.policy`); a filter or ``sortby`` may name it
only then, since filtering on a masked value would leak it bit by bit.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from twin.catalogue import LayerSpec, MaskRule

_BUILDING = re.compile(r"(号楼|栋|幢|座|弄|号)")


def mask_name(v: str) -> str:
    """张三丰 -> 张**."""
    return v[:1] + "*" * (len(v) - 1)


def mask_phone(v: str) -> str:
    """13812341234 -> 138****1234; short numbers keep only their last two digits."""
    if len(v) >= 11:
        return v[:3] + "*" * (len(v) - 7) + v[-4:]
    return "*" * max(len(v) - 2, 0) + v[-2:]


def mask_id_number(v: str) -> str:
    """310101199001011234 -> 3****************4."""
    return v[:1] + "*" * max(len(v) - 2, 0) + (v[-1:] if len(v) > 1 else "")


def mask_address(v: str) -> str:
    """Cut an address after its first building marker: 南京东路100号3号楼501室 -> 南京东路100号."""
    m = _BUILDING.search(v)
    return v[: m.end()] if m else v[: max(len(v) // 2, 1)] + "…"


_RULES: dict[MaskRule, Callable[[str], str]] = {
    MaskRule.name: mask_name, MaskRule.phone: mask_phone,
    MaskRule.id_number: mask_id_number, MaskRule.address: mask_address,
}


def maskers(spec: LayerSpec, unmasked: frozenset[str] = frozenset()) -> dict[str, Callable[[object], object] | None]:
    """For each sensitive field not in ``unmasked``, the function masking a value; ``None``: the field is dropped."""
    out: dict[str, Callable[[object], object] | None] = {}
    for name, rule in spec.sensitive_fields.items():
        if name in unmasked:
            continue
        if rule is MaskRule.drop:
            out[name] = None
        else:
            out[name] = _masker(_RULES[rule])
    return out


def _masker(fn: Callable[[str], str]) -> Callable[[object], object]:
    """``fn`` applied to a value as text; ``None`` stays ``None``."""
    return lambda v: None if v is None else fn(str(v))
