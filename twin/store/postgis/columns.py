"""Reading PostGIS columns as the GeoPackage engine gives them, so both engines return identical values.

Dates come back as ``YYYY-MM-DD``, date-times as ``YYYY-MM-DDTHH:MM:SS.mmmZ`` (changeset and validity times
with microseconds), booleans as 0/1 and geometries as ISO WKB: the same plain values the write path hands in,
which is also what makes "unchanged" comparisons work on re-import.
"""

from __future__ import annotations

from twin.catalogue import FieldType, LayerSpec

MILLIS = "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'"
MICROS = "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'"
#: Columns of twin's own, with their type.
SYSTEM_TYPES = {"fid": "id", "key": "text", "fp": "id", "version": "id", "changeset": "id",
                "valid_from": "micros", "valid_to": "micros", "changeset_to": "id", "op": "text",
                "status": "text", "updated_at": FieldType.datetime.value}


def time_text(expr: str, micros: bool = False) -> str:
    """A ``timestamptz`` expression as twin's UTC text."""
    return f"to_char({expr} AT TIME ZONE 'UTC', {MICROS if micros else MILLIS})"


def read_expr(column: str, kind: str, alias: str = "t") -> str:
    """SQL reading ``alias.column`` of type ``kind`` (a FieldType value or a system kind) as twin's plain value."""
    ref = f'{alias}."{column}"' if alias else f'"{column}"'
    if column == "geom":
        return f"ST_AsBinary({ref})"
    if kind == FieldType.boolean.value:
        return f"{ref}::int"
    if kind == FieldType.date.value:
        return f"to_char({ref}, 'YYYY-MM-DD')"
    if kind == FieldType.datetime.value:
        return time_text(ref)
    if kind == "micros":
        return time_text(ref, micros=True)
    return ref


def kind_of(spec: LayerSpec, column: str) -> str:
    """The type of one of a layer's columns."""
    if column in SYSTEM_TYPES:
        return SYSTEM_TYPES[column]
    return spec.field(column).type.value


def select_list(spec: LayerSpec, columns: list[str] | tuple[str, ...], alias: str = "t") -> str:
    """``columns`` of a layer table read as plain values, in order."""
    return ", ".join(read_expr(c, "geometry" if c == "geom" else kind_of(spec, c), alias) for c in columns)
