"""Drawing one tile: raw components at and above a layer's ``min_zoom``, aggregate cells below it.

All layers of a tile are read in one snapshot, and the tile is tagged with the changeset each layer's
part reflects. A tile over the size limit is drawn again with fewer attributes, then as cells, so no
tile ever exceeds it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np
import shapely
from numpy.typing import NDArray

from tiles.aggregate import Aggregates, Plan, cell_counts, counts_at
from tiles.grid import (
    EXTENT,
    TileID,
    buffered_mercator,
    cell_size,
    lonlat_box,
    mercator_bounds,
    to_mercator,
    to_tile_coords,
    xy_to_mercator,
)
from tiles.mvt import encode, fit
from tiles.mvt_columns import Layer
from tiles.mvt_geometry import Commands, point_commands, shape_commands
from tiles.query import TileFilter
from tiles.scope import Box, Scope, meeting_both, scope_of
from tiles.scoped import scoped_cells
from tiles.shapes import cut, grouped, tolerance
from tiles.view import MASKED, View
from twin.catalogue import GeometryKind, LayerSpec
from twin.model.query import BBox, FeatureQuery
from twin.model.rows import Rows
from twin.query.masking import maskers
from twin.store import Snapshot, Store
from twin.store.base import CellRow

#: Drawing modes, from richest to leanest; the next is tried when a tile is over the size limit.
#: The most components an as-of tile reads of one layer (a tile's size limit then turns them into cells).
AS_OF_ROWS = 1_000_000
MODES = ("full", "lean", "cells")


@dataclass(frozen=True)
class Rendered:
    """A drawn tile: MVT bytes (``b''`` when empty) and the changeset each layer's part reflects."""

    data: bytes
    versions: dict[str, int]
    mode: str = "full"


class Renderer:
    """Draws tiles from the store file and its aggregate tables, for one :class:`~tiles.view.View` at a time."""

    def __init__(self, store: Store, aggregates: Aggregates, *, buffer: int = 64, max_bytes: int = 500_000,
                 budget_s: float = 5.0) -> None:
        self.store, self.catalogue, self.aggregates = store, store.catalogue, aggregates
        self.budget_s = budget_s
        self.buffer, self.max_bytes = buffer, max_bytes

    def render(self, layers: tuple[str, ...], tile: TileID, flt: TileFilter, view: View = MASKED) -> Rendered:
        """The tile for ``layers`` as ``view`` sees it, drawn in the richest mode that fits the size limit."""
        scope = scope_of(view.area) if view.area is not None else None
        for mode in MODES:
            with self.store.turn(), self.store.read(self.budget_s) as snap:
                parts, versions = [], {}
                for layer in layers:
                    part = _Part(self.catalogue[layer], tile, flt, view.fields(layer), scope)
                    features, versions[layer] = self._layer(snap, part, mode)
                    parts.append(features)
                data = encode(parts)
            if len(data) <= self.max_bytes:
                return Rendered(data, versions, mode)
        raise AssertionError(f"tile {tile} of {','.join(layers)} is over {self.max_bytes} bytes even as cells")

    def _layer(self, snap: Snapshot, part: _Part, mode: str) -> tuple[Layer, int]:
        spec, tile, scope = part.spec, part.tile, part.scope
        plan = self.aggregates.plan(spec.id)
        aggregated = plan is not None and tile.z < plan.min_zoom
        if not aggregated and mode != "cells":
            return self._raw(snap, part, lean=mode == "lean"), snap.last_changeset(spec.id)
        plan = plan or Plan(spec.id, "point", tile.z + 1, self.aggregates.depth)
        with_shapes = plan.has_shapes and mode != "cells"  # the leanest mode draws every cell as a point
        if part.flt.is_empty and aggregated:
            state = self.aggregates.state(snap, plan)
            # stored cells serve only when of the layer's latest changeset (scoped cells also mix them with
            # components read now); until then, as when the store keeps none, cells are counted now
            if state is not None and state == snap.last_changeset(spec.id):
                if scope is None:
                    cells = self.aggregates.cells(snap, plan, tile)
                else:
                    cells = scoped_cells(snap, plan, tile, scope, spec.geometry is GeometryKind.point)
                shapes = self.aggregates.shapes(snap, plan, tile) if with_shapes else []
                if scope is not None:
                    shapes = scope.clip(shapes, tile.z + plan.depth, plan.kind == "line")
                return cell_features(spec, plan, tile, cells, shapes), state
        return self._cells_now(snap, part, plan, with_shapes), snap.last_changeset(spec.id)

    def _rows(self, snap: Snapshot, part: _Part, box: Box) -> Rows:
        """``fid, key, status, <fields>, geom`` of the rows meeting the lon/lat ``box`` that pass the filter; when
        scoped, only rows whose envelope meets the area's."""
        query = box if part.scope is None else meeting_both(box, part.scope.area.bounds)
        flt, when = part.flt.checked(part.spec, part.unmasked)
        if part.flt.as_of is not None:  # the past: each component's version current then, without updated_at
            clamped = BBox(max(query[0], -180.0), max(query[1], -90.0), min(query[2], 180.0), min(query[3], 90.0))
            past = snap.select(FeatureQuery(part.spec.id, bbox=clamped, datetime=when, filter=flt,
                                            limit=AS_OF_ROWS, as_of=part.flt.as_of))
            keep = [i for i, c in enumerate(past.columns) if c != "updated_at"]
            return Rows(part.spec, tuple(past.columns[i] for i in keep),
                        [tuple(r[i] for i in keep) for r in past.rows], past.unmasked, past.codec)
        return snap.tile_rows(part.spec.id, query, flt, when)

    def _raw(self, snap: Snapshot, part: _Part, lean: bool) -> Layer:
        """The components meeting the buffered tile as columns: ids, then the attributes the view may see (masked
        where it must), only ``key`` and ``status`` when ``lean``."""
        spec, scope = part.spec, part.scope
        # a hair wider than the buffered tile, so that every engine's index, rounding its boxes its own way, returns
        # every component meeting it; what is drawn is decided on the exact coordinates
        box = _widened(lonlat_box(buffered_mercator(part.tile, self.buffer)))
        rows = self._rows(snap, part, box)
        if not rows.rows:
            return Layer.empty(spec.id)
        columns = list(zip(*rows.rows, strict=True))
        # inside the area, what meets the tile is seen
        keep, geometry = tile_commands(rows, part.tile, self.buffer,
                                       None if scope is None or scope.covers(box) else scope)
        names = list(rows.columns[1:-1])
        masks = maskers(spec, part.unmasked)
        properties = {}
        for i, name in enumerate(names[:2] if lean else names, start=1):
            mask = masks.get(name)
            if name in masks and mask is None:
                continue
            values = objects(columns[i])[keep]
            properties[name] = values if mask is None else objects([mask(v) for v in values])
        return Layer(spec.id, geometry, np.array(columns[0], dtype=np.int64)[keep], properties)

    def _cells_now(self, snap: Snapshot, part: _Part, plan: Plan, with_shapes: bool) -> Layer:
        """Cells computed from the matching components (for filtered requests and oversized tiles)."""
        spec, tile, scope = part.spec, part.tile, part.scope
        rows = self._rows(snap, part, lonlat_box(mercator_bounds(tile)))
        if not rows.rows:
            return Layer.empty(spec.id)
        geoms = rows.geometries()
        level, side = tile.z + plan.depth, 1 << plan.depth
        merc = to_mercator(geoms)
        statuses = np.array(rows.column("status"), dtype=object)
        if scope is None:
            counts = cell_counts(merc, statuses.tolist(), plan.kind, level)
        else:
            placed = scope.place(geoms, plan.kind, plan.fine, merc)
            seen = placed.seen
            counts = counts_at(placed.x[seen], placed.y[seen], placed.measure[seen], statuses[seen], level)
            merc = merc[seen]
        inside = counts.cx.between(tile.x * side, tile.x * side + side - 1) & counts.cy.between(
            tile.y * side, tile.y * side + side - 1)
        cells = list(counts[inside].itertuples(index=False, name=None))
        shapes = []
        if with_shapes:
            cx, cy, pieces = cut(merc, level, plan.kind == "line")
            built = grouped(cx, cy, pieces, tolerance(level, plan.depth), plan.kind == "line")
            shapes = [(a, b, shapely.to_wkb(g)) for (a, b), g in built.items()
                      if g is not None and a >> plan.depth == tile.x and b >> plan.depth == tile.y]
            if scope is not None:
                shapes = scope.clip(shapes, level, plan.kind == "line")
        return cell_features(spec, plan, tile, cells, shapes)


@dataclass(frozen=True)
class _Part:
    """One layer of a tile to draw: its spec, the tile, the filter, the fields seen unmasked and the scope."""

    spec: LayerSpec
    tile: TileID
    flt: TileFilter
    unmasked: frozenset[str]
    scope: Scope | None


def tile_commands(rows: Rows, tile: TileID, buffer: int, scope: Scope | None = None) -> tuple[np.ndarray, Commands]:
    """Which rows' geometries are drawn in the tile, those that :func:`tiles.mvt.fit` keeps and, given a ``scope``,
    that its user sees; and their geometry commands. Plain points, read straight from the bytes, take a faster
    road."""
    lonlat, geoms = rows.point_xy(), None
    if lonlat is None:
        geoms = rows.geometries()
        if not (shapely.get_type_id(geoms) == 0).all() or shapely.is_empty(geoms).any():
            drawn = fit(to_tile_coords(to_mercator(geoms), tile), buffer)
            keep = np.flatnonzero(~shapely.is_missing(drawn) & _seen(scope, geoms))
            return keep, shape_commands(drawn[keep])
        lonlat = shapely.get_coordinates(geoms)
    x, y = xy_to_mercator(lonlat[:, 0], lonlat[:, 1])
    left, bottom, right, top = mercator_bounds(tile)
    fx, fy = (x - left) * (EXTENT / (right - left)), (top - y) * (EXTENT / (top - bottom))
    # inside the buffered tile as they lie, not as rounded: a point a hair outside, which one engine's index
    # returns and another's does not, is drawn by neither
    inside = (fx >= -buffer) & (fx <= EXTENT + buffer) & (fy >= -buffer) & (fy <= EXTENT + buffer)
    tx, ty = np.rint(fx).astype(np.int64), np.rint(fy).astype(np.int64)
    keep = np.flatnonzero(inside & _seen(scope, geoms, lonlat))
    return keep, point_commands(tx[keep], ty[keep])


def _widened(box: Box) -> Box:
    """``box`` grown by 1e-7 degrees (about a centimetre) on every side."""
    return box[0] - 1e-7, box[1] - 1e-7, box[2] + 1e-7, box[3] + 1e-7


def _seen(scope: Scope | None, geoms: NDArray[np.object_] | None,
          lonlat: NDArray[np.float64] | None = None) -> NDArray[np.bool_] | bool:
    """Which geometries (lon/lat, or points at ``lonlat``) the scope's user sees; all without a scope."""
    if scope is None:
        return True
    if geoms is None:
        assert lonlat is not None
        geoms = cast(NDArray[np.object_], shapely.points(lonlat))
    return scope.sees(geoms)


def objects(values: Sequence[object]) -> np.ndarray:
    """A sequence as a one-dimensional object array (whatever its items are)."""
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def cell_features(spec: LayerSpec, plan: Plan, tile: TileID, cells: list[CellRow],
                  shapes: list[tuple[int, int, bytes]]) -> Layer:
    """Aggregate features: one per cell, with ``count``, ``count_<status>`` and ``length_m`` or ``area_m2``.

    Point layers draw each cell as a point at the mean position of its members (ready for circles sized
    by ``count`` or a heatmap weighted by it); line and polygon layers draw the cell's generalised shape,
    or that point when the shape collapsed at this zoom, so no count is lost. ``cells`` are rows of
    ``(cx, cy, status, n, measure, sx, sy)``, ``shapes`` of ``(cx, cy, wkb)``, both at level ``z + depth``.
    """
    side = 1 << plan.depth
    cx, cy, status, n, m, sx, sy = (list(c) for c in zip(*cells, strict=True)) if cells else ([],) * 7
    drawn: dict[int, shapely.Geometry] = {}
    if shapes:
        fitted = fit(to_tile_coords(shapely.from_wkb([s[2] for s in shapes]), tile), 0, simplify=False)
        drawn = {int(s[0]) << 32 | int(s[1]): g for s, g in zip(shapes, fitted.tolist(), strict=True) if g is not None}
    at_cell = np.array(cx, dtype=np.int64) << 32 | np.array(cy, dtype=np.int64)
    keys, where = np.unique(np.concatenate([at_cell, np.fromiter(drawn, dtype=np.int64, count=len(drawn))]),
                            return_inverse=True)
    where = where[:len(cells)]
    n_cells = np.array(n, dtype=np.int64)
    count = np.bincount(where, weights=n_cells, minlength=len(keys)).astype(np.int64)
    properties: dict[str, np.ndarray] = {"count": count}
    status_of = np.array(status, dtype=object)
    for st in dict.fromkeys([*spec.statuses, *status]):  # a status outside the catalogue's only where it occurs
        column = np.zeros(len(keys), dtype=np.int64) if st in spec.statuses else np.full(len(keys), None)
        here = status_of == st
        column[where[here]] = n_cells[here]
        properties[f"count_{st}"] = column
    sums = [np.bincount(where, weights=np.array(v, dtype=np.float64), minlength=len(keys)) for v in (m, sx, sy)]
    measure = {"line": "length_m", "polygon": "area_m2"}.get(plan.kind)
    if measure:
        properties[measure] = np.array([round(v, 1) for v in sums[0].tolist()])
    metres, unit = cell_size(tile.z + plan.depth), EXTENT / side
    per = np.maximum(count, 1)
    x = np.rint(((keys >> 32) - tile.x * side + sums[1] / per / metres) * unit)
    y = np.rint(((keys & 0xFFFFFFFF) - tile.y * side + 1 - sums[2] / per / metres) * unit)
    geoms = cast(NDArray[np.object_], shapely.points(x, y))
    shaped = np.isin(keys, np.fromiter(drawn, dtype=np.int64, count=len(drawn)))
    geoms[shaped] = [drawn[k] for k in keys[shaped].tolist()]
    return Layer(spec.id, shape_commands(geoms), np.full(len(keys), -1, dtype=np.int64), properties)
