"""Edits of single components (OGC API - Features Part 4): create, replace, update, delete.

An :class:`Editor` turns a GeoJSON feature and a user into one changeset of the store, with the checks a city
needs before anything is written: the user's role writes the layer, the component and its new place lie in the
user's area, no field outside the catalogue is set, no personal field the user sees masked is set (a masked
value written back would destroy the real one), and, for a conditional write, the component is still at the
version the client read (checked inside the write transaction on both engines). The catalogue's validation
applies as on import. Each write is a changeset in the history, with the user as its author.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from twin.access import Principal
from twin.catalogue import LayerSpec
from twin.errors import (
    ComponentExistsError,
    FeatureNotFoundError,
    InvalidQueryError,
    MaskedFieldError,
    OutOfScopeError,
    PermissionDeniedError,
    SchemaViolationError,
)
from twin.store.base import Changeset, Store

#: Properties a client may set besides the layer's own fields.
SYSTEM_FIELDS = ("status", "updated_at")
_GEOMETRY_KINDS = {"point": ("Point",), "line": ("LineString", "MultiLineString"),
                   "polygon": ("Polygon", "MultiPolygon")}


@dataclass(frozen=True)
class Written:
    """A component after a write: its key, the changeset, and whether it was deleted."""

    key: str
    changeset: Changeset
    deleted: bool = False


def feature_parts(body: object) -> tuple[dict[str, object], BaseGeometry | None]:
    """The properties and geometry (lon/lat) of a GeoJSON Feature; a clear error for anything else."""
    if not isinstance(body, Mapping) or body.get("type") != "Feature":
        raise InvalidQueryError('the body must be one GeoJSON Feature ({"type": "Feature", "geometry": ..., '
                                '"properties": {...}})')
    props = body.get("properties") or {}
    if not isinstance(props, Mapping):
        raise InvalidQueryError("the feature's properties must be a JSON object")
    raw = body.get("geometry")
    if raw is None:
        return dict(props), None
    try:
        geom = shape(raw)
    except (AttributeError, KeyError, TypeError, ValueError, shapely.errors.GEOSException) as exc:
        raise InvalidQueryError(f"the feature's geometry is not valid GeoJSON: {str(exc)[:200]}") from None
    return dict(props), geom


class Editor:
    """Single-component writes on one store, on behalf of users."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.catalogue = store.catalogue

    def create(self, layer: str, body: object, who: Principal) -> Written:
        """A new component from a GeoJSON feature; its key is given by its location. A component already at
        that location is a :class:`ComponentExistsError` (nothing written): update it instead."""
        spec = self._writable(layer, who)
        props, geom = feature_parts(body)
        if geom is None:
            raise InvalidQueryError("a new component needs a geometry")
        self._check_values(spec, props, who)
        self._check_geometry(spec, geom, who)
        frame = gpd.GeoDataFrame([{f: props.get(f) for f in (*SYSTEM_FIELDS, *spec.field_names)}],
                                 geometry=[geom], crs="EPSG:4326")
        with self.store.writer(spec.id, author=str(who.name), source="api", kind="edit") as w:
            plan = w.add(frame)
            key = str(plan.frame["key"].iloc[0])
            if plan.action[0] != "insert":
                raise ComponentExistsError(key)
        return Written(key, w.changeset)

    def replace(self, layer: str, key: str, body: object, who: Principal, expect: int | None) -> Written:
        """Every property and the geometry as given (fields left out become empty; personal fields the user
        sees masked keep their stored values)."""
        spec = self._writable(layer, who)
        props, geom = feature_parts(body)
        if geom is None:
            raise InvalidQueryError("PUT replaces the whole component: give its geometry (or use PATCH)")
        self._check_values(spec, props, who)
        hidden = self._masked(spec, who)
        full = {f: props.get(f) for f in (*SYSTEM_FIELDS, *spec.field_names) if f not in hidden}
        return self._edit(spec, key, full, geom, who, expect)

    def update(self, layer: str, key: str, body: object, who: Principal, expect: int | None) -> Written:
        """The properties given (``null`` empties one) and, when given, the geometry; the rest kept."""
        spec = self._writable(layer, who)
        props, geom = feature_parts(body) if isinstance(body, Mapping) and "type" in body else (
            _patch_parts(body))
        self._check_values(spec, props, who)
        return self._edit(spec, key, props, geom, who, expect)

    def delete(self, layer: str, key: str, who: Principal, expect: int | None) -> Written:
        spec = self._writable(layer, who)
        self._check_existing(spec, key, who)
        changeset = self.store.delete(spec.id, [key], author=str(who.name), source="api", expect_version=expect)
        return Written(key, changeset, deleted=True)

    def _edit(self, spec: LayerSpec, key: str, props: dict[str, object], geom: BaseGeometry | None,
              who: Principal, expect: int | None) -> Written:
        self._check_existing(spec, key, who)
        if geom is not None:
            self._check_geometry(spec, geom, who)
        changeset = self.store.edit(key, author=str(who.name), properties=props, geometry=geom, source="api",
                                    expect_version=expect)
        return Written(key, changeset)

    def _writable(self, layer: str, who: Principal) -> LayerSpec:
        spec = self.catalogue[layer]
        who.check_edit(spec.id)
        return spec

    def _masked(self, spec: LayerSpec, who: Principal) -> set[str]:
        return set(spec.sensitive_fields) - set(who.unmasked(spec))

    def _check_values(self, spec: LayerSpec, props: Mapping[str, object], who: Principal) -> None:
        known = {*SYSTEM_FIELDS, *spec.field_names}
        unknown = [name for name in props if name not in known]
        if unknown:
            raise SchemaViolationError(spec.id, [(0, name, f"layer {spec.id!r} has no field {name!r}; its fields: "
                                                  f"{', '.join(sorted(known))}") for name in unknown[:5]])
        masked = sorted(self._masked(spec, who) & set(props))
        if masked:
            raise MaskedFieldError(f"role {who.role.name!r} sees {', '.join(masked)} masked and may not write it: "
                                   "a masked value written back would replace the real one")

    def _check_geometry(self, spec: LayerSpec, geom: BaseGeometry, who: Principal) -> None:
        kinds = _GEOMETRY_KINDS.get(spec.geometry.value, ())
        if geom.geom_type not in kinds:
            raise SchemaViolationError(spec.id, [(0, "geometry", f"a {geom.geom_type} cannot be a component of "
                                                  f"layer {spec.id!r} (it takes {' or '.join(kinds)})")])
        if who.area is not None and not bool(who.area.meets(np.array([geom], dtype=object))[0]):
            raise PermissionDeniedError(f"the new place lies outside your area {who.area.key} ({who.area.name})")

    def _check_existing(self, spec: LayerSpec, key: str, who: Principal) -> None:
        """The component exists in this layer and, for a user with an area, lies in it (else a 404)."""
        if self.store.layer_of(key) != spec.id:
            raise FeatureNotFoundError(key)
        if who.area is None:
            return
        with self.store.read() as snap:
            rows = snap.by_keys(spec.id, [key])
        if not rows.rows:
            raise FeatureNotFoundError(key)
        if not bool(who.area.meets(rows.geometries())[0]):
            raise OutOfScopeError(key)


def _patch_parts(body: object) -> tuple[dict[str, Any], BaseGeometry | None]:
    """A JSON merge patch of the properties alone (``{"status": "faulty"}``), as well as a partial Feature."""
    if not isinstance(body, Mapping):
        raise InvalidQueryError("the body must be a JSON object: a partial GeoJSON Feature or the properties to set")
    return dict(body), None
