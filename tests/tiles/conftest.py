"""Real stores of points, lines and polygons, a tile engine over them, and tile decoders (mapbox-vector-tile, GDAL)."""

from __future__ import annotations

import gzip
from pathlib import Path

import geopandas as gpd
import mapbox_vector_tile
import numpy as np
import pyogrio
import pytest
import shapely

from tests.conftest import hydrants
from tiles import TileEngine, TileSettings
from twin.catalogue import Catalogue
from twin.store import GeoPackageStore, open_store

BOX = (121.40, 31.20, 121.50, 31.30)


def pipelines(n: int, seed: int = 0, box: tuple[float, float, float, float] = BOX) -> gpd.GeoDataFrame:
    """``n`` random pipelines of 2 to 5 vertices, each within about 1 km, inside ``box``."""
    rng = np.random.default_rng(seed)
    lines = []
    for _ in range(n):
        k = int(rng.integers(2, 6))
        x0, y0 = box[0] + rng.random() * (box[2] - box[0]), box[1] + rng.random() * (box[3] - box[1])
        xs = np.clip(x0 + np.cumsum(rng.normal(0, 0.002, k)), box[0], box[2])
        ys = np.clip(y0 + np.cumsum(rng.normal(0, 0.002, k)), box[1], box[3])
        lines.append(shapely.linestrings(np.column_stack([xs, ys])))
    return gpd.GeoDataFrame({"kind": rng.choice(["water_supply", "gas", "power"], n).tolist(),
                             "diameter": rng.choice([100, 300, 600], n).tolist()},
                            geometry=lines, crs="EPSG:4326")


def compounds(n: int, seed: int = 0, box: tuple[float, float, float, float] = BOX) -> gpd.GeoDataFrame:
    """``n`` random, non-degenerate quadrilateral compounds (about 100 to 300 m) with masked contacts."""
    rng = np.random.default_rng(seed)
    x = box[0] + rng.random(n) * (box[2] - box[0] - 0.004)
    y = box[1] + rng.random(n) * (box[3] - box[1] - 0.004)
    w, h = 0.001 + rng.random(n) * 0.002, 0.001 + rng.random(n) * 0.002
    polys = shapely.polygons(np.stack([np.column_stack([x, y]), np.column_stack([x + w, y]),
                                       np.column_stack([x + w * 1.1, y + h]), np.column_stack([x, y + h * 0.9]),
                                       np.column_stack([x, y])], axis=1))
    return gpd.GeoDataFrame({"name": [f"测试小区{i}" for i in range(n)],
                             "households": rng.integers(50, 900, n).tolist(), "property_manager": ["张三丰"] * n,
                             "contact_phone": ["13812341234"] * n},
                            geometry=polys, crs="EPSG:4326")


@pytest.fixture
def city(tmp_path: Path, catalogue: Catalogue) -> GeoPackageStore:
    """A store with 400 hydrants, 120 pipelines and 150 compounds in one 10 km box."""
    st = open_store(tmp_path / "city.gpkg", catalogue)
    st.upsert("hydrant", hydrants(400, seed=1, box=BOX), author="test", source="test")
    st.upsert("pipeline", pipelines(120, seed=2), author="test", source="test")
    st.upsert("residential_compound", compounds(150, seed=3), author="test", source="test")
    yield st
    st.close()


@pytest.fixture
def engine(city: GeoPackageStore, tmp_path: Path) -> TileEngine:
    eng = TileEngine(city, TileSettings(cache_dir=tmp_path / "cache", warm=False))
    yield eng
    eng.close()


def decode(gz: bytes) -> dict:
    """A gzip MVT tile decoded by mapbox-vector-tile (y down, as in the tile)."""
    return mapbox_vector_tile.decode(gzip.decompress(gz), default_options={"y_coord_down": True}) if gz else {}


def gdal_read(raw: bytes, z: int, x: int, y: int, layer: str, folder: Path) -> gpd.GeoDataFrame:
    """A tile read by GDAL's MVT driver from ``folder/z/x/y.pbf`` (EPSG:3857; CLIP=NO keeps the buffer)."""
    path = folder / str(z) / str(x) / f"{y}.pbf"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(raw)
    return pyogrio.read_dataframe(path, layer=layer, CLIP="NO")

