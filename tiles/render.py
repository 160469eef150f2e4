"""Drawing one tile: raw components at and above a layer's ``min_zoom``, aggregate cells below it.

All layers of a tile are read in one snapshot, and the tile is tagged with the changeset each layer's
part reflects. A tile over the size limit is drawn again with fewer attributes, then as cells, so no
tile ever exceeds it.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

import numpy as np
import shapely

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
from tiles.mvt import LayerFeatures, encode, fit
from tiles.query import TileFilter
from tiles.reader import TileReader, feature_columns, last_changeset
from tiles.scope import Box, Scope, meeting_both, scope_of
from tiles.scoped import scoped_cells
from tiles.shapes import cut, grouped, tolerance
from tiles.view import MASKED, View
from twin.catalogue import Catalogue, GeometryKind, LayerSpec
from twin.query.masking import maskers
from twin.store.gpkg_blob import decode

#: Drawing modes, from richest to leanest; the next is tried when a tile is over the size limit.
MODES = ("full", "lean", "cells")


@dataclass(frozen=True)
class Rendered:
    """A drawn tile: MVT bytes (``b''`` when empty) and the changeset each layer's part reflects."""

    data: bytes
    versions: dict[str, int]
    mode: str = "full"


class Renderer:
    """Draws tiles from the store file and its aggregate tables, for one :class:`~tiles.view.View` at a time."""

    def __init__(self, catalogue: Catalogue, reader: TileReader, aggregates: Aggregates, *, buffer: int = 64,
                 max_bytes: int = 500_000) -> None:
        self.catalogue, self.reader, self.aggregates = catalogue, reader, aggregates
        self.buffer, self.max_bytes = buffer, max_bytes

    def render(self, layers: tuple[str, ...], tile: TileID, flt: TileFilter, view: View = MASKED) -> Rendered:
        """The tile for ``layers`` as ``view`` sees it, drawn in the richest mode that fits the size limit."""
        scope = scope_of(view.area) if view.area is not None else None
        for mode in MODES:
            with self.reader.snapshot() as conn:
                parts, versions = [], {}
                for layer in layers:
                    part = _Part(self.catalogue[layer], tile, flt, view.fields(layer), scope)
                    features, versions[layer] = self._layer(conn, part, mode)
                    parts.append(features)
            data = encode(parts)
            if len(data) <= self.max_bytes:
                return Rendered(data, versions, mode)
        raise AssertionError(f"tile {tile} of {','.join(layers)} is over {self.max_bytes} bytes even as cells")

    def _layer(self, conn: sqlite3.Connection, part: _Part, mode: str) -> tuple[LayerFeatures, int]:
        spec, tile, scope = part.spec, part.tile, part.scope
        plan = self.aggregates.plan(spec.id)
        aggregated = plan is not None and tile.z < plan.min_zoom
        if not aggregated and mode != "cells":
            return self._raw(conn, part, lean=mode == "lean"), last_changeset(conn, spec.id)
        plan = plan or Plan(spec.id, "point", tile.z + 1, self.aggregates.depth)
        with_shapes = plan.has_shapes and mode != "cells"  # the leanest mode draws every cell as a point
        if part.flt.is_empty and aggregated:
            state = self.aggregates.state(conn, plan)
            # scoped cells mix stored counts with components read now: both must be of one changeset
            if state is not None and (scope is None or state == last_changeset(conn, spec.id)):
                if scope is None:
                    cells = self.aggregates.cells(conn, plan, tile)
                else:
                    cells = scoped_cells(conn, self.reader, self.aggregates, plan, tile, scope,
                                         spec.geometry is GeometryKind.point)
                shapes = self.aggregates.shapes(conn, plan, tile) if with_shapes else []
                if scope is not None:
                    shapes = scope.clip(shapes, tile.z + plan.depth, plan.kind == "line")
                return cell_features(spec, plan, tile, cells, shapes), state
        return self._cells_now(conn, part, plan, with_shapes), last_changeset(conn, spec.id)

    def _read(self, conn: sqlite3.Connection, part: _Part, box: Box) -> tuple[list[tuple], np.ndarray]:
        """Rows meeting the lon/lat ``box`` that pass the filter (see :func:`feature_columns`), with their
        lon/lat geometries; when scoped, only rows whose envelope meets the area's."""
        where, params = part.flt.sql(part.spec, part.unmasked)
        query = box if part.scope is None else meeting_both(box, part.scope.area.bounds)
        rows = self.reader.features(conn, part.spec, query, where, params)
        return rows, decode([r[-1] for r in rows]) if rows else np.empty(0, dtype=object)

    def _raw(self, conn: sqlite3.Connection, part: _Part, lean: bool) -> LayerFeatures:
        spec, scope = part.spec, part.scope
        box = lonlat_box(buffered_mercator(part.tile, self.buffer))
        rows, geoms = self._read(conn, part, box)
        out = LayerFeatures(spec.id)
        if not rows:
            return out
        drawn = tile_geometries(geoms, part.tile, self.buffer)
        if scope is not None and not scope.covers(box):  # inside the area, what meets the tile is seen
            drawn[~scope.sees(geoms)] = None
        keep = np.flatnonzero(~shapely.is_missing(drawn))
        names = feature_columns(spec)[1:-1]
        masks = maskers(spec, part.unmasked)
        if lean:
            names = names[:2]
        picks = [(i + 1, n, masks.get(n)) for i, n in enumerate(names) if not (n in masks and masks[n] is None)]
        props = [{n: (m(rows[k][i]) if m is not None else rows[k][i]) for i, n, m in picks} for k in keep.tolist()]
        out.extend(drawn[keep], props, [rows[k][0] for k in keep.tolist()])
        return out

    def _cells_now(self, conn: sqlite3.Connection, part: _Part, plan: Plan, with_shapes: bool) -> LayerFeatures:
        """Cells computed from the matching components (for filtered requests and oversized tiles)."""
        spec, tile, scope = part.spec, part.tile, part.scope
        rows, geoms = self._read(conn, part, lonlat_box(mercator_bounds(tile)))
        if not rows:
            return LayerFeatures(spec.id)
        level, side = tile.z + plan.depth, 1 << plan.depth
        merc = to_mercator(geoms)
        statuses = np.array([r[2] for r in rows], dtype=object)
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


def tile_geometries(geoms: np.ndarray, tile: TileID, buffer: int) -> np.ndarray:
    """Lon/lat geometries fitted to the tile (see :func:`tiles.mvt.fit`); plain points take a faster road."""
    if not (shapely.get_type_id(geoms) == 0).all() or shapely.is_empty(geoms).any():
        return fit(to_tile_coords(to_mercator(geoms), tile), buffer)
    lonlat = shapely.get_coordinates(geoms)
    x, y = xy_to_mercator(lonlat[:, 0], lonlat[:, 1])
    left, bottom, right, top = mercator_bounds(tile)
    tx = np.round((x - left) * (EXTENT / (right - left)))
    ty = np.round((top - y) * (EXTENT / (top - bottom)))
    inside = (tx >= -buffer) & (tx <= EXTENT + buffer) & (ty >= -buffer) & (ty <= EXTENT + buffer)
    out = np.full(len(geoms), None, dtype=object)
    out[inside] = shapely.points(tx[inside], ty[inside])
    return out


def cell_features(spec: LayerSpec, plan: Plan, tile: TileID, cells: list[tuple], shapes: list[tuple]) -> LayerFeatures:
    """Aggregate features: one per cell, with ``count``, ``count_<status>`` and ``length_m`` or ``area_m2``.

    Point layers draw each cell as a point at the mean position of its members (ready for circles sized
    by ``count`` or a heatmap weighted by it); line and polygon layers draw the cell's generalised shape,
    or that point when the shape collapsed at this zoom, so no count is lost.
    """
    side = 1 << plan.depth
    unit = EXTENT / side
    metres = cell_size(tile.z + plan.depth)
    measure = {"line": "length_m", "polygon": "area_m2"}.get(plan.kind)
    blank = {"count": 0, **{f"count_{st}": 0 for st in spec.statuses}, **({measure: 0.0} if measure else {})}
    props: dict[tuple[int, int], dict[str, object]] = {}
    sums: dict[tuple[int, int], list[float]] = {}
    for cx, cy, status, n, m, sx, sy in cells:
        key = (int(cx), int(cy))
        p = props.setdefault(key, dict(blank))
        acc = sums.setdefault(key, [0.0, 0.0, 0.0])
        p["count"] = int(p["count"]) + int(n)  # type: ignore[call-overload]
        p[f"count_{status}"] = int(n)
        acc[0], acc[1], acc[2] = acc[0] + m, acc[1] + sx, acc[2] + sy
    geoms: dict[tuple[int, int], shapely.Geometry] = {}
    if shapes:
        merc = shapely.from_wkb([s[2] for s in shapes])
        drawn = fit(to_tile_coords(merc, tile), 0, simplify=False)
        geoms = {(int(s[0]), int(s[1])): g for s, g in zip(shapes, drawn.tolist(), strict=True) if g is not None}
    out = LayerFeatures(spec.id)
    for key in sorted(set(props) | set(geoms)):
        p = props.get(key, dict(blank))
        m, sx, sy = sums.get(key, (0.0, 0.0, 0.0))
        if measure:
            p[measure] = round(m, 1)
        if key in geoms:
            geom = geoms[key]
        else:
            n = max(int(p["count"]), 1)  # type: ignore[call-overload]
            i, j = key[0] - tile.x * side, key[1] - tile.y * side
            geom = shapely.Point(round((i + sx / n / metres) * unit), round((j + 1 - sy / n / metres) * unit))
        out.add(geom, p)
    return out
