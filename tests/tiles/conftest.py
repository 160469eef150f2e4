"""Real stores of points, lines, polygons and administrative areas, a tile engine over them, the tile routes behind
the access gate, and tile decoders (mapbox-vector-tile, GDAL)."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import mapbox_vector_tile
import numpy as np
import pyogrio
import pytest
import shapely
from fastapi import Depends, FastAPI

from tests.conftest import hydrants
from tests.engines import fresh
from tiles import TileEngine, TileSettings
from twin.access import Area, Gate
from twin.api import auth, errors
from twin.api.tiles import tiles_router
from twin.catalogue import Catalogue
from twin.settings import TwinSettings
from twin.store import Store, open_store

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


def admin_areas(store: Store, committees: int = 24, subdistricts: int = 4, seed: int = 5,
                box: tuple[float, float, float, float] = BOX) -> None:
    """Add committee areas (Voronoi cells of random seeds, cut to ``box``) and sub-districts (unions of
    neighbouring committees, so not convex) to ``store``."""
    rng = np.random.default_rng(seed)
    seeds = shapely.points(box[0] + rng.random(committees) * (box[2] - box[0]),
                           box[1] + rng.random(committees) * (box[3] - box[1]))
    cells = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(seeds), extend_to=shapely.box(*box)))
    cells = shapely.intersection(cells, shapely.box(*box))
    centres = shapely.points(box[0] + rng.random(subdistricts) * (box[2] - box[0]),
                             box[1] + rng.random(subdistricts) * (box[3] - box[1]))
    group = np.array([int(np.argmin(shapely.distance(shapely.centroid(c), centres))) for c in cells])
    used = sorted(set(group.tolist()))
    subs = gpd.GeoDataFrame({"name": [f"测试街道{g}" for g in used], "district": ["DI-test"] * len(used)},
                            geometry=[shapely.union_all(cells[group == g]) for g in used], crs="EPSG:4326")
    store.upsert("subdistrict", subs, author="test", source="test")
    sub_keys = dict(zip(used, store.features("subdistrict").sort_values("name").key, strict=True))
    store.upsert("committee", gpd.GeoDataFrame({
        "name": [f"测试居委{i}" for i in range(len(cells))], "subdistrict": [sub_keys[g] for g in group],
        "secretary": ["李四"] * len(cells), "office_phone": ["02112345678"] * len(cells)},
        geometry=cells, crs="EPSG:4326"), author="test", source="test")


def fill(store: Store) -> None:
    """400 hydrants, 120 pipelines and 150 compounds in one 10 km box."""
    store.upsert("hydrant", hydrants(400, seed=1, box=BOX), author="test", source="test")
    store.upsert("pipeline", pipelines(120, seed=2), author="test", source="test")
    store.upsert("residential_compound", compounds(150, seed=3), author="test", source="test")


@pytest.fixture
def city(target: str, catalogue: Catalogue) -> Iterator[Store]:
    """A store with 400 hydrants, 120 pipelines and 150 compounds in one 10 km box."""
    st = open_store(target, catalogue)
    fill(st)
    yield st
    st.close()


@pytest.fixture(scope="session")
def areas_city(tmp_path_factory: pytest.TempPathFactory, catalogue: Catalogue) -> Iterator[Store]:
    """``city``'s components plus 24 committees and their sub-districts over the same box; shared, so read-only."""
    with fresh(tmp_path_factory.mktemp("areas"), "areas") as target:
        st = open_store(target, catalogue)
        fill(st)
        admin_areas(st)
        yield st
        st.close()


@pytest.fixture(scope="session")
def areas_gate(areas_city: Store) -> Gate:
    g = Gate(areas_city)
    yield g
    g.close()


def area_keys(store: Store) -> list[str]:
    """Keys of every committee and sub-district of ``store``."""
    return sorted([*store.features("committee").key, *store.features("subdistrict").key])


def seen_keys(store: Store, layer: str, area: Area) -> set[str]:
    """Keys of the components of ``layer`` that intersect ``area`` (what a user scoped to it sees)."""
    frame = store.features(layer, bbox=area.bounds)
    return set(frame.key[frame.intersects(area.geometry)])


@pytest.fixture
def engine(city: Store, tmp_path: Path) -> TileEngine:
    eng = TileEngine(city, TileSettings(cache_dir=tmp_path / "cache", warm=False))
    yield eng
    eng.close()


@pytest.fixture
def gate(city: Store) -> Gate:
    """The access gate of ``city`` (users, policy, audit), on the access database beside the store."""
    g = Gate(city)
    yield g
    g.close()


def tile_app(engine: TileEngine, gate: Gate) -> FastAPI:
    """A FastAPI app as ``create_app`` wires it for tiles: authentication by ``gate``, twin's error handlers
    (which audit refusals) and the tile routes over ``engine``."""
    app = FastAPI(dependencies=[Depends(auth.authenticate)])
    app.state.gate = gate
    errors.install(app)
    app.include_router(tiles_router(engine, TwinSettings().city_bbox))
    return app


def decode(gz: bytes) -> dict:
    """A gzip MVT tile decoded by mapbox-vector-tile (y down, as in the tile)."""
    return mapbox_vector_tile.decode(gzip.decompress(gz), default_options={"y_coord_down": True}) if gz else {}


def gdal_read(raw: bytes, z: int, x: int, y: int, layer: str, folder: Path) -> gpd.GeoDataFrame:
    """A tile read by GDAL's MVT driver from ``folder/z/x/y.pbf`` (EPSG:3857; CLIP=NO keeps the buffer)."""
    path = folder / str(z) / str(x) / f"{y}.pbf"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(raw)
    return pyogrio.read_dataframe(path, layer=layer, CLIP="NO")

