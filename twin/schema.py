"""Conforming a batch of attribute values to a layer's schema, in bulk.

``conform`` coerces every column to its declared type and collects every problem as
``(row, field, message)`` before anything is written, so a bad batch is refused whole.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from twin.catalogue import FieldSpec, FieldType, LayerSpec
from twin.errors import SchemaViolationError

Problems = list[tuple[int, str, str]]
_TRUE = {"true", "t", "yes", "y", "1", "是", "真"}
_FALSE = {"false", "f", "no", "n", "0", "否", "假"}
#: Columns a batch may carry besides the layer's attributes.
SYSTEM_COLUMNS = ("status", "updated_at")


def _show(value: object) -> str:
    """A value as users wrote it, without numpy's type wrappers."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _text(v: object) -> str | None:
    if v is None or (isinstance(v, float) and v != v):
        return None
    return v if type(v) is str else str(v.item() if isinstance(v, np.generic) else v)


def _strings(col: pd.Series) -> pd.Series:
    return pd.Series([_text(v) for v in col.tolist()], dtype=object)


def _numbers(col: pd.Series, spec: FieldSpec, problems: Problems) -> pd.Series:
    num = pd.to_numeric(col, errors="coerce")
    bad = col.notna() & num.isna()
    if spec.type is FieldType.integer:
        frac = num.notna() & (num != np.floor(num.fillna(0)))
        for r in np.flatnonzero(frac.to_numpy()):
            problems.append((int(r), spec.name, f"{_show(col.iloc[r])} is not a whole number"))
        whole = num.notna() & ~frac
        out = num.astype(object).where(whole, None).map(lambda v: None if v is None else int(v))
    else:
        out = num.astype(object).where(num.notna(), None).map(lambda v: None if v is None else float(v))
    for r in np.flatnonzero(bad.to_numpy()):
        problems.append((int(r), spec.name, f"{_show(col.iloc[r])} is not a {spec.type.value}"))
    return out


def _booleans(col: pd.Series, spec: FieldSpec, problems: Problems) -> pd.Series:
    def one(r: int, v: object) -> int | None:
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return None
        if isinstance(v, bool | np.bool_):
            return int(v)
        s = str(v).strip().lower()
        if s in _TRUE:
            return 1
        if s in _FALSE:
            return 0
        problems.append((r, spec.name, f"{_show(v)} is not a boolean (true/false, 1/0, 是/否)"))
        return None

    return pd.Series([one(r, v) for r, v in enumerate(col.tolist())], index=col.index, dtype=object)


def _times(col: pd.Series, spec: FieldSpec, problems: Problems) -> pd.Series:
    parsed = pd.to_datetime(col, errors="coerce", utc=True, format="mixed")
    bad = col.notna() & parsed.isna() & (col.astype(object).map(lambda v: str(v).strip() != ""))
    for r in np.flatnonzero(bad.to_numpy()):
        problems.append((int(r), spec.name, f"{_show(col.iloc[r])} is not a {spec.type.value} (use ISO 8601)"))
    if spec.type is FieldType.date:
        text = parsed.dt.strftime("%Y-%m-%d")
    else:  # GeoPackage DATETIME: milliseconds and a Z
        text = parsed.dt.strftime("%Y-%m-%dT%H:%M:%S.%f").str[:-3] + "Z"
    return text.astype(object).where(parsed.notna(), None)


def conform_field(col: pd.Series, spec: FieldSpec, problems: Problems) -> pd.Series:
    """Coerce one column to ``spec``, appending problems rather than raising."""
    col = col.reset_index(drop=True)
    if col.dtype == object or isinstance(col.dtype, pd.StringDtype):
        col = pd.Series([None if isinstance(v, str) and not v.strip() else v for v in col.tolist()], dtype=object)
    if spec.type is FieldType.string:
        out = _strings(col)
        limit = spec.max_length
        for r in np.flatnonzero(np.fromiter((v is not None and len(v) > limit for v in out.tolist()), bool, len(out))):
            problems.append((int(r), spec.name, f"value is {len(out.iloc[r])} characters long; "
                                                f"the limit is {spec.max_length}"))
            out.iloc[r] = None
    elif spec.type in (FieldType.integer, FieldType.float):
        out = _numbers(col, spec, problems)
    elif spec.type is FieldType.boolean:
        out = _booleans(col, spec, problems)
    else:
        out = _times(col, spec, problems)
    if spec.required:
        for r in np.flatnonzero(out.isna().to_numpy()):
            problems.append((int(r), spec.name, "a value is required"))
    if spec.values is not None:
        allowed = set(spec.values)
        bad = out.map(lambda v: v is not None and v not in allowed)
        for r in np.flatnonzero(bad.to_numpy()):
            problems.append((int(r), spec.name, f"{_show(out.iloc[r])} is not one of {list(spec.values)}"))
    return out


def conform(spec: LayerSpec, frame: pd.DataFrame, default_time: str) -> pd.DataFrame:
    """Return the batch's attributes coerced to the layer schema, plus ``status`` and ``updated_at``.

    Raises
    ------
    SchemaViolationError
        Listing every unknown column and every value that does not fit, by row and field.
    """
    problems: Problems = []
    known = set(spec.field_names) | set(SYSTEM_COLUMNS)
    for name in frame.columns:
        if name not in known:
            problems.append((0, str(name), f"the layer has no field {name!r} (fields: {', '.join(spec.field_names)})"))
    out = pd.DataFrame(index=pd.RangeIndex(len(frame)))
    for f in spec.fields:
        col = frame[f.name] if f.name in frame.columns else pd.Series([None] * len(frame), dtype=object)
        out[f.name] = conform_field(col, f, problems).to_numpy()
    n = len(frame)
    default_time = to_gpkg_datetime(default_time)
    status_spec = FieldSpec.model_construct(name="status", values=spec.statuses)
    time_spec = FieldSpec.model_construct(name="updated_at", type=FieldType.datetime)
    for sys_spec, default in ((status_spec, spec.statuses[0]), (time_spec, default_time)):
        name = sys_spec.name
        col = frame[name] if name in frame.columns else pd.Series([None] * n, dtype=object)
        out[name] = conform_field(col, sys_spec, problems).fillna(default).to_numpy()
    if problems:
        problems.sort()
        raise SchemaViolationError(spec.id, problems)
    return out


def to_gpkg_datetime(iso: str) -> str:
    """Cut an ISO 8601 UTC time with microseconds to GeoPackage's millisecond form."""
    return iso[:23] + "Z" if len(iso) > 24 and iso.endswith("Z") else iso
