"""Mapping a file's columns onto a layer's fields, and optionally its coded values onto the layer's values.

Columns map automatically when their name is a field's name (any case), the field's Chinese title
(``类型`` → ``kind``), or a shapefile's 10-character cut of it (``outlet_dia`` → ``outlet_diameter``).
``--map SRC=DST`` and a YAML mapping file add or override pairs::

    fields:            # source column: layer field
      消防栓类型: kind
      口径: outlet_diameter
    values:            # per layer field, source value: stored value
      kind: {地上式: above_ground, 地下式: underground}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml

from twin.catalogue import LayerSpec
from twin.errors import ImportRejectedError

#: System columns a file may carry, with their common Chinese headers.
SYSTEM_ALIASES = {"status": "status", "状态": "status", "updated_at": "updated_at", "更新时间": "updated_at"}
SHAPEFILE_NAME_LIMIT = 10


@dataclass(frozen=True)
class FieldMapping:
    """Which file column feeds which layer field, which columns are ignored, and value translations."""

    pairs: dict[str, str]
    ignored: list[str]
    values: dict[str, dict[str, object]] = field(default_factory=dict)

    def apply(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The file's columns renamed to layer fields, with coded values translated."""
        out = frame[list(self.pairs)].rename(columns=self.pairs)
        for name, table in self.values.items():
            if name in out.columns:
                out[name] = out[name].map(lambda v, t=table: t.get(v, v) if isinstance(v, str) else v)
        return out


def parse_pairs(items: list[str]) -> dict[str, str]:
    """``["口径=outlet_diameter", ...]`` as a dict, refusing malformed items."""
    out: dict[str, str] = {}
    for item in items:
        src, sep, dst = item.partition("=")
        if not sep or not src.strip() or not dst.strip():
            raise ImportRejectedError(f"--map {item!r}: write it as SOURCE_COLUMN=layer_field")
        out[src.strip()] = dst.strip()
    return out


def read_mapping_file(path: Path) -> str:
    """The text of a YAML mapping file, or a clear refusal."""
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ImportRejectedError(f"{path}: not a readable UTF-8 YAML mapping file ({exc})") from None


def parse_mapping(text: str, name: str) -> tuple[dict[str, str], dict[str, dict[str, object]]]:
    """Field pairs and value tables from a YAML mapping document (see the module docstring) called ``name``."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ImportRejectedError(f"{name}: not a readable YAML mapping ({exc})") from None
    if not isinstance(data, Mapping):
        raise ImportRejectedError(f"{name}: expected 'fields:' (and optionally 'values:') at the top level")
    fields = data.get("fields", data if "values" not in data else {})
    values = data.get("values", {}) or {}
    if not isinstance(fields, Mapping) or not isinstance(values, Mapping) or not all(
            isinstance(v, Mapping) for v in values.values()):
        raise ImportRejectedError(f"{name}: 'fields' must map column to field and 'values' field to a table")
    return ({str(k): str(v) for k, v in fields.items()},
            {str(k): {str(a): b for a, b in v.items()} for k, v in values.items()})


def load_mapping_file(path: Path) -> tuple[dict[str, str], dict[str, dict[str, object]]]:
    """Field pairs and value tables from a YAML mapping file."""
    return parse_mapping(read_mapping_file(path), str(path))


def _automatic(column: str, spec: LayerSpec, by_name: dict[str, str]) -> str | None:
    low = column.strip().lower()
    if low in by_name:
        return by_name[low]
    if column.strip() in SYSTEM_ALIASES:
        return SYSTEM_ALIASES[column.strip()]
    for f in spec.fields:
        if f.title_zh and column.strip() == f.title_zh:
            return f.name
    if len(low) == SHAPEFILE_NAME_LIMIT:
        cut = [f.name for f in spec.fields if f.name.startswith(low)]
        if len(cut) == 1:
            return cut[0]
    return None


def build_mapping(columns: list[str], spec: LayerSpec, explicit: dict[str, str],
                  values: dict[str, dict[str, object]] | None = None, skip: tuple[str, ...] = ()) -> FieldMapping:
    """Work out the column → field mapping for a file, refusing mappings that cannot work."""
    targets = {*spec.field_names, "status", "updated_at"}
    for src, dst in explicit.items():
        if src not in columns:
            raise ImportRejectedError(f"--map {src}={dst}: the file has no column {src!r} "
                                      f"(columns: {', '.join(columns)})")
        if dst not in targets:
            raise ImportRejectedError(f"--map {src}={dst}: layer {spec.id!r} has no field {dst!r} "
                                      f"(fields: {', '.join(sorted(targets))})")
    by_name = {f.lower(): f for f in targets}
    pairs: dict[str, str] = dict(explicit)
    taken = set(explicit.values())
    ignored = []
    for col in columns:
        if col in pairs or col in skip:
            continue
        found = _automatic(col, spec, by_name)
        if found is None or found in taken:
            ignored.append(col)
        else:
            pairs[col] = found
            taken.add(found)
    dupes = {d for d in pairs.values() if list(pairs.values()).count(d) > 1}
    if dupes:
        raise ImportRejectedError(f"several columns map to {', '.join(sorted(dupes))}; map each field once")
    missing = [f.name for f in spec.fields if f.required and f.name not in taken]
    if missing:
        raise ImportRejectedError(
            f"layer {spec.id!r} requires {', '.join(missing)} but no column of the file maps to it; pass "
            f"--map COLUMN={missing[0]} (columns: {', '.join(columns)})"
        )
    for name in values or {}:
        if name not in targets:
            raise ImportRejectedError(f"mapping file: 'values' names {name!r}, which is not a field of {spec.id!r}")
    return FieldMapping(pairs, ignored, dict(values or {}))
