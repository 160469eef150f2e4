"""A coarse raster over the city in the local metric frame, and the numpy filters the density model needs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from numpy.typing import NDArray


@dataclass(frozen=True)
class Grid:
    """``ny`` x ``nx`` square cells of ``cell`` metres; row 0 is the southern edge at ``y0``."""

    x0: float
    y0: float
    cell: float
    nx: int
    ny: int

    @classmethod
    def covering(cls, bounds: tuple[float, float, float, float], cell: float) -> Grid:
        minx, miny, maxx, maxy = bounds
        x0, y0 = np.floor(minx / cell) * cell, np.floor(miny / cell) * cell
        return cls(float(x0), float(y0), cell, int(np.ceil((maxx - x0) / cell)), int(np.ceil((maxy - y0) / cell)))

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        return self.x0, self.y0, self.x0 + self.nx * self.cell, self.y0 + self.ny * self.cell

    def index(self, x: NDArray[np.float64], y: NDArray[np.float64]) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
        """Row and column of each point, clipped to the grid."""
        col = np.clip(((np.asarray(x) - self.x0) // self.cell).astype(np.intp), 0, self.nx - 1)
        row = np.clip(((np.asarray(y) - self.y0) // self.cell).astype(np.intp), 0, self.ny - 1)
        return row, col

    def centres(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        xs = self.x0 + (np.arange(self.nx) + 0.5) * self.cell
        ys = self.y0 + (np.arange(self.ny) + 0.5) * self.cell
        return np.meshgrid(xs, ys)

    def histogram(self, x: NDArray[np.float64], y: NDArray[np.float64], weights: NDArray[np.float64] | None = None
                  ) -> NDArray[np.float64]:
        row, col = self.index(x, y)
        out = np.zeros((self.ny, self.nx))
        np.add.at(out, (row, col), 1.0 if weights is None else weights)
        return out

    def mask_polygons(self, mask: NDArray[np.bool_], bounds: tuple[float, float, float, float]
                      ) -> shapely.Geometry:
        """The cells of ``mask`` inside ``bounds`` as one (multi)polygon, merged row by row."""
        r0, c0 = self.index(np.array([bounds[0]]), np.array([bounds[1]]))
        r1, c1 = self.index(np.array([bounds[2]]), np.array([bounds[3]]))
        sub = mask[r0[0]:r1[0] + 1, c0[0]:c1[0] + 1]
        boxes = []
        for i, row in enumerate(sub):
            edges = np.flatnonzero(np.diff(np.concatenate([[0], row.astype(np.int8), [0]])))
            y = self.y0 + (r0[0] + i) * self.cell
            for a, b in zip(edges[::2], edges[1::2], strict=True):
                x = self.x0 + (c0[0] + a) * self.cell
                boxes.append(shapely.box(x, y, x + (b - a) * self.cell, y + self.cell))
        return shapely.union_all(np.array(boxes, dtype=object)) if boxes else shapely.Polygon()


def box_blur(values: NDArray[np.float64], radius: int, passes: int = 3) -> NDArray[np.float64]:
    """Approximate a Gaussian blur by repeated box filters (cumulative sums), along both axes."""
    out = values.astype(np.float64)
    for _ in range(passes):
        for axis in (0, 1):
            pad = [(0, 0), (0, 0)]
            pad[axis] = (radius + 1, radius)
            c = np.cumsum(np.pad(out, pad), axis=axis)
            hi = np.take(c, np.arange(2 * radius + 1, c.shape[axis]), axis=axis)
            lo = np.take(c, np.arange(0, c.shape[axis] - 2 * radius - 1), axis=axis)
            out = (hi - lo) / (2 * radius + 1)
    return out


def dilate(mask: NDArray[np.bool_], radius: int) -> NDArray[np.bool_]:
    """Cells within ``radius`` cells (Chebyshev distance) of a true cell."""
    return box_blur(mask.astype(np.float64), radius, passes=1) > 1e-9
