"""The shared workloads: seeded request lists that every server answers for the same places and keys.

Seeds are drawn from the store itself (random existing components), so boxes are never empty and
keys always exist; each server then spells the same list in its own URLs (``urls.py``), and the
i-th request of one server asks for the same thing as the i-th request of another. That is what
lets the load generator compare feature counts request by request across systems.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

import morecantile
import numpy as np
import shapely
from numpy.typing import NDArray

from peers.urls import PeerUrls
from twin.catalogue import load_catalogue
from twin.geodesy import degree_box
from twin.settings import DEFAULT_LAYERS_DIR
from twin.store import open_store
from twin.store.gpkg.ddl import q

WEB_MERCATOR = morecantile.tms.get("WebMercatorQuad")


@dataclass(frozen=True)
class Seeds:
    """Random existing components of one layer: their keys and representative lon/lat points."""

    layer: str
    keys: list[str]
    points: NDArray[np.float64]  # (n, 2) lon, lat
    min_zoom: int


@dataclass(frozen=True)
class Workload:
    """One named workload for one server: request paths relative to ``base``."""

    name: str
    base: str
    paths: list[str]


def draw_seeds(store_path: Path, layer: str, n: int, seed: int = 0) -> Seeds:
    """``n`` random components of ``layer`` read through twin's store API (fids sampled uniformly)."""
    catalogue = load_catalogue(DEFAULT_LAYERS_DIR)
    conn = sqlite3.connect(f"{Path(store_path).resolve().as_uri()}?mode=ro", uri=True)
    try:
        top = conn.execute(f"SELECT max(fid) FROM {q(catalogue[layer].id)}").fetchone()[0]
    finally:
        conn.close()
    if not top:
        raise SystemExit(f"{store_path}: layer {layer} is empty")
    rng = np.random.default_rng(seed)
    store = open_store(store_path, catalogue, create=False)
    try:
        frame = store.features(layer, fids=sorted(set(rng.integers(1, top + 1, 2 * n).tolist())))
    finally:
        store.close()
    frame = frame.sample(n=min(n, len(frame)), random_state=seed)
    points = shapely.get_coordinates(shapely.point_on_surface(frame.geometry.to_numpy()))
    return Seeds(layer, frame["key"].tolist(), points, catalogue[layer].min_zoom)


def build(urls: PeerUrls, seeds: Seeds, *, box_m: float = 1000, filter_box_m: float = 3000, limit: int = 1000,
          where: tuple[str, str] = ("status", "faulty"), tile_zoom: int | None = None) -> list[Workload]:
    """The four workloads (``bbox``, ``by_id``, ``filter``, ``tile``) for one server; ``tile`` if it has tiles.

    ``filter`` is a ``filter_box_m`` box with ``where`` (property, value) as an equality filter.
    """
    layer, pts = seeds.layer, seeds.points
    boxes = [degree_box(x, y, box_m / 2) for x, y in pts]
    wide = [degree_box(x, y, filter_box_m / 2) for x, y in pts]
    z = seeds.min_zoom if tile_zoom is None else tile_zoom
    out = [
        Workload("bbox", urls.base, [urls.items(layer, b, limit) for b in boxes]),
        Workload("by_id", urls.base, [urls.item(layer, k) for k in seeds.keys]),
        Workload("filter", urls.base, [urls.filtered(layer, b, *where, limit) for b in wide]),
    ]
    tiles = [WEB_MERCATOR.tile(x, y, z) for x, y in pts]
    tile_paths = [urls.tile(layer, t.z, t.x, t.y) for t in tiles]
    if all(p is not None for p in tile_paths):
        out.append(Workload(f"tile z{z}", urls.base, [p for p in tile_paths if p is not None]))
    return out
