"""Checked filters as PostgreSQL SQL over a layer table aliased ``t`` (see :mod:`twin.store.filter_sql`).

Spatial terms are GEOS predicates in PostGIS, as the GeoPackage engine's are GEOS predicates in shapely;
``S_DWITHIN`` measures in the same local frame as :mod:`twin.geodesy` (the schema's ``twin_local``), so both
engines agree on what lies within a distance.
"""

from __future__ import annotations

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from twin.geodesy import to_local
from twin.model.filter import Cond, Prop, SpatialOp, Value
from twin.store.filter_sql import to_sql
from twin.store.postgis.ddl import schema_ident

_SYSTEM = {"id": 't."key"', "status": "t.status", "updated_at": "t.updated_at"}
_FUNCTIONS: dict[str, str] = {"intersects": "ST_Intersects", "within": "ST_Within", "contains": "ST_Contains",
                              "disjoint": "ST_Disjoint", "touches": "ST_Touches", "crosses": "ST_Crosses",
                              "overlaps": "ST_Overlaps", "equals": "ST_Equals"}


def column(name: str) -> str:
    """The SQL naming a property (``id``, ``status``, ``updated_at`` or a catalogue field) of ``t``."""
    return _SYSTEM.get(name) or f't."{name}"'


class PgDialect:
    """The PostgreSQL side of the shared translation, for the store in ``schema``."""

    def __init__(self, schema: str) -> None:
        self.s = schema_ident(schema)

    def column(self, prop: Prop) -> str:
        return column(prop.name)

    def bind(self, value: Value, prop: Prop | None, params: list[object]) -> str:
        params.append(value)
        return "%s"

    def spatial(self, op: SpatialOp, geometry: BaseGeometry, params: list[object]) -> str:
        params.append(shapely.to_wkb(geometry))
        return f"{_FUNCTIONS[op]}(t.geom, ST_GeomFromWKB(%s, 4326))"

    def dwithin(self, geometry: BaseGeometry, metres: float, params: list[object]) -> str:
        centre = geometry.centroid
        local = to_local(np.array([geometry], dtype=object), centre.x, centre.y)[0]
        params += [centre.x, centre.y, shapely.to_wkb(local), float(metres)]
        return f"ST_DWithin({self.s}.twin_local(t.geom, %s, %s), ST_GeomFromWKB(%s, 4326), %s)"

    def divisor(self, rhs: str) -> str:
        return f"NULLIF({rhs}, 0)"


def where(root: Cond, schema: str) -> tuple[str, list[object]]:
    """PostgreSQL ``WHERE`` text of a checked condition and its parameters (``%s`` placeholders)."""
    return to_sql(root, PgDialect(schema))
