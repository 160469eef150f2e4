"""Generating the point layers in a second process while the first one writes them into the store.

At full scale, importing 15 million points is most of a build and runs on one core; generating the
next tiles on the other core takes their time off the critical path. The worker builds its own copy of
the street network from the same scale and seed, so the frames it returns are exactly those the build
would make itself, and only the frames cross between the processes.

The worker is forked (not spawned, which would re-run an unguarded calling script) as soon as the feed
is created, before the build opens any store transaction; it never touches the store.
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from types import TracebackType

import geopandas as gpd

from twin.demo.city import City, load_city
from twin.demo.networks import POINT_LAYERS, Network, street_length_for, tile_lines
from twin.demo.scale import Scale
from twin.demo.streets import calibrate, make_blocks
from twin.demo.tiles import Tile

AHEAD = 3  # tiles generated ahead of the writer: bounds the memory held in finished frames

_worker_network: Network | None = None


def network_for(city: City, scale: Scale, seed: int) -> Network:
    """The real roads and the synthetic street grid, calibrated on the whole city's targets."""
    length = street_length_for(city, scale.points)
    return Network(city, make_blocks(city, calibrate(city, length), seed), seed, scale.focus)


def _start(scale: Scale, seed: int) -> None:
    global _worker_network
    _worker_network = network_for(load_city(), scale, seed)


def _ready() -> bool:
    return _worker_network is not None


def _tile(layer: str, tile: Tile) -> gpd.GeoDataFrame:
    assert _worker_network is not None, "the worker was not started"
    make, _ = POINT_LAYERS[layer]
    return make(_worker_network, tile, tile_lines(_worker_network, tile))


class PointFeed:
    """A worker process that generates point tiles ahead of the writer; use as a context manager."""

    def __init__(self, scale: Scale, seed: int) -> None:
        self.pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork"), initializer=_start,
                                        initargs=(scale, seed))
        self.pool.submit(_ready)  # fork now, while no store transaction is open

    def frames(self, layer: str, tiles: list[Tile]) -> Iterator[gpd.GeoDataFrame]:
        """The layer's frames, tile by tile in order, each generated while the previous ones are written."""
        todo = iter(tiles)
        pending: deque[Future[gpd.GeoDataFrame]] = deque()
        for tile in todo:
            pending.append(self.pool.submit(_tile, layer, tile))
            if len(pending) >= AHEAD:
                break
        while pending:
            frame = pending.popleft().result()
            following = next(todo, None)
            if following is not None:
                pending.append(self.pool.submit(_tile, layer, following))
            yield frame

    def __enter__(self) -> PointFeed:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
