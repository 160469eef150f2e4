"""MVT geometry commands (MVT 2.1, section 4.3) for many tile-coordinate geometries at once.

A feature's geometry is a run of unsigned integers: a command (``MoveTo`` 1, ``LineTo`` 2, ``ClosePath`` 7, with
its repeat count in the upper bits) followed by zigzagged coordinate deltas from the previous point of the same
feature. The rules are those of mapbox-vector-tile's encoder, so both write the same geometries: coordinates are
rounded half to even, a line or ring skips points repeating the one before, a part left with fewer than two
points is dropped (a polygon with its exterior, holes and all), a ring's closing point is implied, and the points
of a MultiPoint are all kept. Geometries come as y-down tile coordinates, already clipped and wound.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import shapely
from numpy.typing import NDArray

from tiles.wire import Ragged, zigzag

MOVE_TO, LINE_TO, CLOSE_PATH = 1, 2, 7
NONE, POINT, LINESTRING, POLYGON = 0, 1, 2, 3
_POINTS, _LINES, _POLYGONS = (0, 4), (1, 2, 5), (3, 6)  # shapely type ids of each MVT geometry type


def command(op: int, count: int | NDArray[np.int64]) -> int | NDArray[np.int64]:
    """A command integer: the command in the low three bits, how many times it repeats above them."""
    return op | (count << 3)


class Commands(NamedTuple):
    """The MVT geometry type (``NONE``: nothing to draw) and the command integers of each feature."""

    types: NDArray[np.uint8]
    ints: Ragged[np.uint64]

    def take(self, index: NDArray[np.int64]) -> Commands:
        return Commands(self.types[index], self.ints.take(index))


def point_commands(x: NDArray[np.int64], y: NDArray[np.int64]) -> Commands:
    """One point per feature, at whole tile units ``x``, ``y``."""
    n = len(x)
    ints = np.column_stack([np.full(n, command(MOVE_TO, 1), dtype=np.uint64), zigzag(x), zigzag(y)])
    return Commands(np.full(n, POINT, dtype=np.uint8), Ragged.fixed(ints.ravel(), 3))


def shape_commands(geoms: NDArray[np.object_]) -> Commands:
    """Commands of shapely geometries of any kind; ``None``, empty geometries and collections draw nothing."""
    geoms = np.asarray(geoms, dtype=object)
    kind = shapely.get_type_id(geoms)
    kind[shapely.is_empty(geoms)] = -1
    types = np.full(len(geoms), NONE, dtype=np.uint8)
    found, runs = [], []
    for mvt_type, ids, encode in ((POINT, _POINTS, _multipoints), (LINESTRING, _LINES, _lines),
                                  (POLYGON, _POLYGONS, _polygons)):
        index = np.flatnonzero(np.isin(kind, ids))
        if len(index):
            ints = encode(geoms[index])
            types[index] = np.where(ints.lengths > 0, mvt_type, NONE)
            found.append(index)
            runs.append(ints)
    lengths = np.zeros(len(geoms), dtype=np.int64)
    if not found:
        return Commands(types, Ragged(np.empty(0, dtype=np.uint64), lengths))
    index = np.concatenate(found)
    order = np.argsort(index)
    ints = Ragged(np.concatenate([r.data for r in runs]), np.concatenate([r.lengths for r in runs])).take(order)
    lengths[index[order]] = ints.lengths  # back in feature order; features of no kind draw nothing
    return Commands(types, Ragged(ints.data, lengths))


def _grid(geoms: NDArray[np.object_]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Coordinates rounded to whole units (half to even, as Python's ``round``) and the count per geometry."""
    xy = np.rint(shapely.get_coordinates(geoms)).astype(np.int64)
    return xy, shapely.get_num_coordinates(geoms).astype(np.int64)


def _deltas(xy: NDArray[np.int64], owner: NDArray[np.int64]) -> NDArray[np.int64]:
    """Each point minus the one before it of the same feature (``owner``), the first from the origin."""
    d = xy.copy()
    if len(xy) > 1:
        same = owner[1:] == owner[:-1]
        d[1:][same] -= xy[:-1][same]
    return d


def _multipoints(geoms: NDArray[np.object_]) -> Ragged[np.uint64]:
    xy, counts = _grid(geoms)
    owner = np.repeat(np.arange(len(geoms)), counts)
    d = zigzag(_deltas(xy, owner).ravel()).reshape(-1, 2)
    lengths = np.where(counts > 0, 1 + 2 * counts, 0)
    out = np.empty(int(lengths.sum()), dtype=np.uint64)
    starts = np.cumsum(lengths) - lengths
    out[starts[counts > 0]] = command(MOVE_TO, counts[counts > 0])
    rank = np.arange(len(xy)) - np.repeat(np.cumsum(counts) - counts, counts)
    at = starts[owner] + 1 + 2 * rank
    out[at], out[at + 1] = d[:, 0], d[:, 1]
    return Ragged(out, lengths)


def _lines(geoms: NDArray[np.object_]) -> Ragged[np.uint64]:
    parts, owner = shapely.get_parts(geoms, return_index=True)
    xy, counts = _unrepeated(*_grid(parts))
    return _arcs(xy, counts, owner, counts >= 2, len(geoms), closed=False)


def _polygons(geoms: NDArray[np.object_]) -> Ragged[np.uint64]:
    polys, owner = shapely.get_parts(geoms, return_index=True)
    rings, poly = shapely.get_rings(polys, return_index=True)
    xy, counts = _grid(rings)
    last = np.cumsum(counts) - 1
    keep = np.ones(len(xy), dtype=bool)
    keep[last[counts > 0]] = False  # the closing point repeats the first: MVT implies it
    xy, counts = _unrepeated(xy[keep], np.maximum(counts - 1, 0))
    exterior = np.r_[True, poly[1:] != poly[:-1]] if len(poly) else np.zeros(0, dtype=bool)
    drawn = np.zeros(len(polys), dtype=bool)
    drawn[poly[exterior]] = counts[exterior] >= 2  # a polygon whose exterior collapses is dropped whole
    return _arcs(xy, counts, owner[poly], (counts >= 2) & drawn[poly], len(geoms), closed=True)


def _unrepeated(xy: NDArray[np.int64], counts: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Points of each part without those equal to the point before them in the part, and the new counts."""
    part = np.repeat(np.arange(len(counts)), counts)
    keep = np.ones(len(xy), dtype=bool)
    if len(xy) > 1:
        keep[1:] = (part[1:] != part[:-1]) | (xy[1:] != xy[:-1]).any(axis=1)
    return xy[keep], np.bincount(part[keep], minlength=len(counts)).astype(np.int64)


def _arcs(xy: NDArray[np.int64], counts: NDArray[np.int64], owner: NDArray[np.int64], drawn: NDArray[np.bool_],
          features: int, closed: bool) -> Ragged[np.uint64]:
    """``MoveTo`` the first point of each drawn part, ``LineTo`` the rest (then ``ClosePath`` for rings), the
    cursor carried from part to part of a feature (``owner``); one run per feature."""
    points = np.repeat(drawn, counts)
    xy, counts, owner = xy[points], counts[drawn], owner[drawn]
    d = zigzag(_deltas(xy, np.repeat(owner, counts)).ravel()).reshape(-1, 2)
    lengths = 2 * counts + 2 + closed
    out = np.empty(int(lengths.sum()), dtype=np.uint64)
    starts = np.cumsum(lengths) - lengths
    out[starts] = command(MOVE_TO, 1)
    out[starts + 3] = command(LINE_TO, counts - 1)
    if closed:
        out[starts + lengths - 1] = command(CLOSE_PATH, 1)
    rank = np.arange(len(xy)) - np.repeat(np.cumsum(counts) - counts, counts)
    at = np.repeat(starts, counts) + 1 + 2 * rank + (rank > 0)
    out[at], out[at + 1] = d[:, 0], d[:, 1]
    per_feature = np.bincount(owner, weights=lengths, minlength=features).astype(np.int64)
    return Ragged(out, per_feature)
