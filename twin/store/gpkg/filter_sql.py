"""Checked filters as SQLite SQL over a layer table aliased ``t`` (see :mod:`twin.store.filter_sql`).

Spatial terms call twin's exact, shapely-backed SQL functions (:mod:`twin.store.gpkg.sqlfuncs`) with the
literal as bound WKB; dates and date-times are compared as the text the store keeps, booleans as 0/1.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import shapely
from shapely.geometry.base import BaseGeometry

from twin.model.filter import Cond, Prop, SpatialOp, Value
from twin.store.filter_sql import to_sql
from twin.store.gpkg.ddl import q

#: Properties that are twin's own columns, by the name a filter uses.
_SYSTEM = {"id": 't."key"', "status": "t.status", "updated_at": "t.updated_at"}


def column(name: str) -> str:
    """The SQL naming a property (``id``, ``status``, ``updated_at`` or a catalogue field) of ``t``."""
    return _SYSTEM.get(name) or f"t.{q(name)}"


def stored(value: Value) -> object:
    """A filter value as SQLite holds it: dates as text, date-times as UTC text to the millisecond, booleans 0/1."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, datetime):
        moment = value.astimezone(UTC) if value.tzinfo else value
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:23] + "Z"
    if isinstance(value, date):
        return value.isoformat()
    return value


class SqliteDialect:
    """The SQLite side of the shared translation."""

    def column(self, prop: Prop) -> str:
        return column(prop.name)

    def bind(self, value: Value, prop: Prop | None, params: list[object]) -> str:
        params.append(stored(value))
        return "?"

    def spatial(self, op: SpatialOp, geometry: BaseGeometry, params: list[object]) -> str:
        params += [op, shapely.to_wkb(geometry)]
        return "twin_pred(?, t.geom, ?)"

    def dwithin(self, geometry: BaseGeometry, metres: float, params: list[object]) -> str:
        params += [shapely.to_wkb(geometry), float(metres)]
        return "twin_dwithin(t.geom, ?, ?)"

    def divisor(self, rhs: str) -> str:
        return rhs


DIALECT = SqliteDialect()


def where(root: Cond) -> tuple[str, list[object]]:
    """SQLite ``WHERE`` text of a checked condition and its parameters."""
    return to_sql(root, DIALECT)
