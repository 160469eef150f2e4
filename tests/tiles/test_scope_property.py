"""Property: for random areas, roles, layer sets and tiles at every zoom, a scoped user's tile shows nothing outside
their area, counts nothing outside it, and never carries a personal value unmasked."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.tiles.conftest import BOX, area_keys, decode, seen_keys
from tiles import TileEngine, TileSettings
from tiles.grid import EXTENT, TileID, buffered_mercator, lonlat_box, mercator_bounds, tiles_in, to_mercator
from tiles.view import View
from twin.access import Area, Gate
from twin.errors import OutOfScopeError
from twin.store import Store

LAYERS = ("hydrant", "pipeline", "residential_compound", "committee")
#: Every personal value stored in the test city (compounds' managers and phones, committees' secretaries and phones).
PERSONAL = {"张三丰", "13812341234", "李四", "02112345678"}


@pytest.fixture(scope="module")
def areas_engine(areas_city: Store) -> Iterator[TileEngine]:
    eng = TileEngine(areas_city, TileSettings(warm=False))
    yield eng
    eng.close()


class Oracle:
    """What the store says a user scoped to an area sees, computed once per area and layer."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.frames = {layer: store.features(layer) for layer in LAYERS}
        self._seen: dict[tuple[str, str], set[str]] = {}

    def seen(self, layer: str, area: Area) -> set[str]:
        if (layer, area.key) not in self._seen:
            self._seen[(layer, area.key)] = seen_keys(self.store, layer, area)
        return self._seen[(layer, area.key)]

    def bounds_of_count(self, layer: str, area: Area, tile: TileID) -> tuple[int, int]:
        """Fewest and most components the tile's cells may count: the seen ones wholly inside the tile must be
        counted in it, and only seen ones meeting it may be."""
        frame = self.frames[layer]
        frame = frame[frame.key.isin(self.seen(layer, area))]
        box = lonlat_box(mercator_bounds(tile))
        shrunk = shapely.box(box[0] + 1e-7, box[1] + 1e-7, box[2] - 1e-7, box[3] - 1e-7)
        return int(frame.within(shrunk).sum()), int(frame.intersects(shapely.box(*box)).sum())


@pytest.fixture(scope="module")
def oracle(areas_city: Store) -> Oracle:
    return Oracle(areas_city)


@st.composite
def requests(draw: st.DrawFn, keys: list[str], gate: Gate, oracle: Oracle) -> tuple[View, tuple[str, ...], TileID]:
    """A scoped user, the layers they ask for and a tile: at one of the area's components, on the area's envelope
    or anywhere over the test city (perhaps outside the area)."""
    key = draw(st.sampled_from(keys), label="area")
    role = draw(st.sampled_from(["area_officer", "app"]), label="role")
    layers = tuple(draw(st.permutations(LAYERS), label="layers")[:draw(st.integers(1, 3))])
    who = gate.principal(f"{role}-{key}", role, key, via="token")
    z = draw(st.integers(0, 17) | st.integers(11, 16), label="zoom")
    where = draw(st.sampled_from(["component", "envelope", "anywhere"]), label="where")
    seen = sorted(oracle.seen(layers[0], who.area))
    if where == "component" and seen:
        point = oracle.frames[layers[0]].set_index("key").geometry[draw(st.sampled_from(seen))].representative_point()
        tile = tiles_in((point.x, point.y, point.x, point.y), z)[0]
    else:
        tile = draw(st.sampled_from(tiles_in(who.area.bounds if where == "envelope" else BOX, z)))
    return View.of(who, layers, gate.store.catalogue), layers, tile


def _merc_shape(geometry: dict, tile: TileID) -> shapely.Geometry:
    """A decoded tile geometry (tile units, y down) in Web Mercator metres."""
    left, bottom, right, top = mercator_bounds(tile)
    geom = shapely.geometry.shape(geometry)
    return shapely.transform(geom, lambda xy: np.column_stack([left + xy[:, 0] * (right - left) / EXTENT,
                                                               top - xy[:, 1] * (top - bottom) / EXTENT]))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_scoped_tiles_show_and_count_only_the_area_and_never_a_personal_value(
        areas_engine: TileEngine, areas_city: Store, areas_gate: Gate, oracle: Oracle,
        data: st.DataObject) -> None:
    view, layers, tile = data.draw(requests(area_keys(areas_city), areas_gate, oracle))
    area = view.area
    try:
        result = areas_engine.tile(layers, tile, view=view)
    except OutOfScopeError:
        event("outside the area: 404")
        assert not area.meets_box(lonlat_box(buffered_mercator(tile, areas_engine.settings.buffer)))
        return
    outline = to_mercator(np.array([area.geometry], dtype=object))[0]
    slack = 3 * (mercator_bounds(tile)[2] - mercator_bounds(tile)[0]) / EXTENT  # simplification and snapping
    for layer, content in decode(result.gz).items():
        props = [f["properties"] for f in content["features"]]
        assert not PERSONAL & {v for p in props for v in p.values()}
        event("raw features" if tile.z >= areas_city.catalogue[layer].min_zoom else "aggregate cells")
        if tile.z >= areas_city.catalogue[layer].min_zoom:
            assert {p["key"] for p in props} <= oracle.seen(layer, area)
            continue
        fewest, most = oracle.bounds_of_count(layer, area, tile)
        assert fewest <= sum(p["count"] for p in props) <= most
        for f in content["features"]:
            if f["geometry"]["type"] != "Point":  # a cell's generalised network or outline
                assert outline.buffer(slack).covers(_merc_shape(f["geometry"], tile))
