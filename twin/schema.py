"""Conforming a batch of attribute values to a layer's schema, in bulk.

``conform`` coerces every column to its declared type and collects every problem as
``(row, field, message)`` before anything is written, so a bad batch is refused whole.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import NDArray

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
    """A value as text; missing and blank values become ``None``."""
    if v is None or (isinstance(v, float) and v != v):
        return None
    if type(v) is not str:
        v = str(v.item() if isinstance(v, np.generic) else v)
    return v if v.strip() else None


def _values(col: pd.Series) -> pd.Series:
    """The column as objects, with missing and blank-text values as ``None`` (one pass, text columns only)."""
    if col.dtype.kind in "iufb":
        return col
    return pd.Series([None if v is None or (type(v) is str and not v.strip()) or (isinstance(v, float) and v != v)
                      else v for v in col.tolist()], dtype=object)


def _strings(col: pd.Series, spec: FieldSpec, problems: Problems) -> pd.Series:
    """Text values, each distinct one checked once: a column of a million rows holds a few thousand names."""
    if pd.api.types.infer_dtype(col, skipna=True) in ("string", "empty"):
        codes, distinct = pd.factorize(col)  # missing values get code -1, which picks the None appended last
        uniques = list(distinct)
    else:  # mixed types: 1, 1.0 and True are equal as keys but not as text, so each value goes on its own
        codes, uniques = np.arange(len(col)), col.tolist()
    texts = np.array([*(_text(v) for v in uniques), None], dtype=object)
    limit = spec.max_length
    sizes = np.fromiter((-1 if v is None else len(v) for v in texts), np.int64, len(texts))
    nul = np.fromiter((v is not None and "\x00" in v for v in texts), bool, len(texts))
    for r in np.flatnonzero((sizes > limit)[codes]).tolist():
        problems.append((r, spec.name, f"value is {sizes[codes[r]]} characters long; the limit is {limit}"))
    for r in np.flatnonzero((nul & (sizes <= limit))[codes]).tolist():  # PostgreSQL keeps no NUL in text
        problems.append((r, spec.name, f"value holds a NUL character (\\x00) at position "
                                       f"{texts[codes[r]].index(chr(0))}"))
    texts[(sizes > limit) | nul] = None
    return pd.Series(texts[codes], dtype=object)


def _numbers(col: pd.Series, spec: FieldSpec, problems: Problems) -> pd.Series:
    col = _values(col)
    num = pd.to_numeric(col, errors="coerce")
    bad = col.notna() & num.isna()
    for r in np.flatnonzero(bad.to_numpy()):
        problems.append((int(r), spec.name, f"{_show(col.iloc[r])} is not a {spec.type.value}"))
    arr = num.to_numpy(dtype=np.float64, na_value=np.nan)
    present = ~np.isnan(arr)
    if spec.type is FieldType.integer:
        frac = present & (arr != np.floor(np.where(present, arr, 0)))
        for r in np.flatnonzero(frac):
            problems.append((int(r), spec.name, f"{_show(col.iloc[r])} is not a whole number"))
        keep = present & ~frac
        return pd.Series([int(v) if k else None for v, k in zip(arr.tolist(), keep.tolist(), strict=True)],
                         dtype=object)
    return pd.Series([v if k else None for v, k in zip(arr.tolist(), present.tolist(), strict=True)], dtype=object)


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

    return pd.Series([one(r, v) for r, v in enumerate(_values(col).tolist())], dtype=object)


def _times(col: pd.Series, spec: FieldSpec, problems: Problems) -> pd.Series:
    col = _values(col)
    parsed = pd.to_datetime(col, errors="coerce", utc=True, format="mixed")
    bad = col.notna() & parsed.isna()
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
    if spec.type is FieldType.string:
        out = _strings(col, spec, problems)
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
        bad = out.notna() & ~out.isin(list(spec.values))
        for r in np.flatnonzero(bad.to_numpy()):
            problems.append((int(r), spec.name, f"{_show(out.iloc[r])} is not one of {list(spec.values)}"))
    return out


def _missing(spec: FieldSpec, n: int, default: object, problems: Problems) -> NDArray[np.object_]:
    """The column for a field the batch does not have at all."""
    if spec.required and default is None and n:
        problems.append((0, spec.name, "a value is required, and the data has no such column"))
    out = np.empty(n, dtype=object)
    out[:] = default
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
    n = len(frame)
    out = pd.DataFrame(index=pd.RangeIndex(n))
    status_spec = FieldSpec.model_construct(name="status", values=spec.statuses)
    time_spec = FieldSpec.model_construct(name="updated_at", type=FieldType.datetime)
    columns: list[tuple[FieldSpec, str | None]] = [(f, None) for f in spec.fields]
    columns += [(status_spec, spec.statuses[0]), (time_spec, to_gpkg_datetime(default_time))]
    for f, default in columns:
        if f.name not in frame.columns:
            out[f.name] = _missing(f, n, default, problems)
            continue
        col = conform_field(frame[f.name], f, problems)
        out[f.name] = (col if default is None else col.where(col.notna(), default)).to_numpy()
    if problems:
        problems.sort()
        raise SchemaViolationError(spec.id, problems)
    return out


def to_gpkg_datetime(iso: str) -> str:
    """Cut an ISO 8601 UTC time with microseconds to GeoPackage's millisecond form."""
    return iso[:23] + "Z" if len(iso) > 24 and iso.endswith("Z") else iso
