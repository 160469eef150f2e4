"""Geometries into tile coordinates (clipped, simplified at the tile's resolution, on the integer grid,
wound as the MVT 2.1 spec says) and layers into Mapbox Vector Tile bytes (:mod:`tiles.mvt_columns`).

Geometry work is vectorised with shapely; the encoder gets integer, valid, correctly wound geometries
in y-down tile space.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import shapely
from numpy.typing import NDArray

from tiles.grid import EXTENT
from tiles.mvt_columns import Layer, encode_tile

POINT, LINE, POLYGON = 0, 1, 2


def dimension(geoms: NDArray[np.object_]) -> NDArray[np.int64]:
    """0 for points, 1 for lines, 2 for polygons (per geometry)."""
    return shapely.get_dimensions(geoms).astype(np.int64)


def fit(geoms: NDArray[np.object_], buffer: int, simplify: bool = True) -> NDArray[np.object_]:
    """Tile-coordinate geometries clipped to the buffered tile, simplified and snapped to whole units.

    Returns an array of the same length; geometries that fall outside or collapse become ``None``.
    """
    geoms = np.asarray(geoms, dtype=object)
    out = np.full(len(geoms), None, dtype=object)
    if not len(geoms):
        return out
    with np.errstate(divide="ignore", invalid="ignore"):  # GEOS warns on degenerate parts, which are dropped
        return _fit(geoms, out, buffer, simplify)


def _fit(geoms: NDArray[np.object_], out: NDArray[np.object_], buffer: int, simplify: bool) -> NDArray[np.object_]:
    lo, hi = -buffer, EXTENT + buffer
    dims = dimension(geoms)
    pts = dims == POINT
    if pts.any():
        out[pts] = _points(geoms[pts], lo, hi)
    lines = dims == LINE
    if lines.any():
        clipped = shapely.clip_by_rect(geoms[lines], lo, lo, hi, hi)
        out[lines] = _snap(shapely.simplify(clipped, 1.0, preserve_topology=False) if simplify else clipped)
    polys = dims == POLYGON
    if polys.any():
        clipped = _clip(geoms[polys], shapely.box(lo, lo, hi, hi))
        snapped = _snap(shapely.simplify(clipped, 1.0, preserve_topology=True) if simplify else clipped)
        keep = ~shapely.is_missing(snapped)
        snapped[keep] = shapely.orient_polygons(snapped[keep].astype(object), exterior_cw=False)
        out[polys] = snapped
    return out


def _clip(polygons: NDArray[np.object_], box: shapely.Geometry) -> NDArray[np.object_]:
    """The polygons cut to the box. GEOS's floating overlay can fail on near-degenerate input (coordinates that
    are all but zero, say): such a polygon is cut with snap-rounding to the tile grid instead, which cannot fail,
    and costs more only for it."""
    try:
        return shapely.intersection(polygons, box)
    except shapely.errors.GEOSException:
        out = np.empty(len(polygons), dtype=object)
        for i, polygon in enumerate(polygons):
            try:
                out[i] = shapely.intersection(polygon, box)
            except shapely.errors.GEOSException:
                out[i] = shapely.intersection(polygon, box, grid_size=1.0)
        return out


def _points(geoms: NDArray[np.object_], lo: float, hi: float) -> NDArray[np.object_]:
    inside = shapely.intersects(geoms, shapely.box(lo, lo, hi, hi))  # as they lie, not as snapped
    snapped = shapely.set_precision(geoms, 1.0)
    multi = inside & (shapely.get_num_geometries(snapped) > 1)
    if multi.any():
        snapped[multi] = shapely.intersection(snapped[multi], shapely.box(lo, lo, hi, hi))
    snapped[~inside] = None
    return snapped


def _snap(geoms: NDArray[np.object_]) -> NDArray[np.object_]:
    """Onto the integer grid (valid output; what collapses below one unit is dropped)."""
    snapped = shapely.set_precision(geoms, 1.0)
    # a polygon clipped along the edge can leave stray lines or points in a collection: keep the main kind
    mixed = (shapely.get_type_id(snapped) == 7) & ~shapely.is_empty(snapped)
    if mixed.any():
        snapped[mixed] = [_main_kind(g) for g in snapped[mixed]]
    snapped[shapely.is_empty(snapped) | shapely.is_missing(snapped)] = None
    return snapped


def _main_kind(geom: shapely.Geometry) -> shapely.Geometry:
    parts = shapely.get_parts(geom)
    top = shapely.get_dimensions(parts).max()
    return shapely.union_all(parts[shapely.get_dimensions(parts) == top])


def encode(layers: Sequence[Layer]) -> bytes:
    """MVT bytes of the layers with something to draw, in order (``b''`` when none has)."""
    return encode_tile(layers, EXTENT)
