"""Low-zoom aggregates add up exactly to the store, and incremental upkeep equals a rebuild from scratch."""

from __future__ import annotations

from collections import Counter

import mapbox_vector_tile
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import hydrants
from tests.engines import drop, execute, new_target
from tests.tiles.conftest import BOX, compounds, decode, pipelines
from tiles import TileEngine, TileFilter, TileSettings, aggregate
from tiles.aggregate import Plan
from tiles.grid import mercator_bounds, tiles_in
from tiles.render import Renderer
from twin.catalogue import Catalogue
from twin.store import Store, open_store


def _totals(engine: TileEngine, layer: str, z: int) -> tuple[Counter, float]:
    """Counts (all and by status) and the measure summed over every tile of zoom ``z`` over the layer."""
    counts: Counter = Counter()
    measure = 0.0
    for tile in tiles_in(engine.store.extent(layer), z):
        for f in decode(engine.tile((layer,), tile).gz).get(layer, {}).get("features", []):
            p = f["properties"]
            counts.update({k: v for k, v in p.items() if k.startswith("count")})
            measure += p.get("length_m", 0.0) + p.get("area_m2", 0.0)
    return counts, measure


@pytest.mark.parametrize(("layer", "zooms"), [("hydrant", (0, 5, 9, 11, 13)), ("pipeline", (3, 8, 12)),
                                              ("residential_compound", (2, 10, 11))])
def test_counts_in_all_tiles_of_a_zoom_add_up_to_the_store(engine: TileEngine, city: Store, layer: str,
                                                           zooms: tuple[int, ...]) -> None:
    keys = city.features(layer).key.tolist()
    city.edit(keys[0], author="test", properties={"status": "retired"})
    city.delete(layer, keys[1:4], author="test")
    frame = city.features(layer)
    by_status = frame.status.value_counts().to_dict()
    geo = frame.to_crs(frame.estimate_utm_crs())
    expected_measure = {"pipeline": geo.length.sum(), "residential_compound": geo.area.sum()}.get(layer, 0.0)
    for z in zooms:
        counts, measure = _totals(engine, layer, z)
        assert counts["count"] == city.count(layer) == len(frame)
        assert {k.removeprefix("count_"): v for k, v in counts.items() if k != "count" and v} == by_status
        assert measure == pytest.approx(expected_measure, rel=0.01)


def test_line_and_polygon_cells_carry_generalised_shapes_within_their_cell(engine: TileEngine) -> None:
    tile = tiles_in((121.45, 31.25, 121.45, 31.25), 11)[0]
    data = decode(engine.tile(("pipeline", "residential_compound"), tile).gz)
    kinds = {layer: {f["geometry"]["type"] for f in data[layer]["features"]} for layer in data}
    assert kinds["pipeline"] & {"LineString", "MultiLineString"}
    assert kinds["pipeline"] <= {"LineString", "MultiLineString", "Point"}
    assert kinds["residential_compound"] & {"Polygon", "MultiPolygon"}
    assert kinds["residential_compound"] <= {"Polygon", "MultiPolygon", "Point"}
    for layer in data:
        for f in data[layer]["features"]:
            geom = shapely.geometry.shape(f["geometry"])
            assert shapely.box(-1, -1, 4097, 4097).contains(geom)


def test_point_cells_sit_at_the_mean_position_of_their_members(engine: TileEngine, city: Store) -> None:
    tile = tiles_in((121.45, 31.25, 121.45, 31.25), 12)[0]
    cells = decode(engine.tile(("hydrant",), tile).gz)["hydrant"]["features"]
    assert {c["geometry"]["type"] for c in cells} == {"Point"}
    left, bottom, right, top = mercator_bounds(tile)
    stored = city.features("hydrant").to_crs(3857)
    xy = np.column_stack([(stored.geometry.x - left) / (right - left) * 4096, (top - stored.geometry.y) / (top - bottom)
                          * 4096])
    singles = [c["geometry"]["coordinates"] for c in cells if c["properties"]["count"] == 1]
    assert singles
    for x, y in singles:
        assert np.hypot(xy[:, 0] - x, xy[:, 1] - y).min() <= 1.0


def _tables(target: str) -> tuple[dict, dict]:
    cells = {r[:5]: r[5:] for r in execute(target, "SELECT * FROM twin_tiles_cells")}
    shapes = {r[:4]: shapely.normalize(shapely.from_wkb(bytes(r[4]))) for r in execute(
        target, "SELECT * FROM twin_tiles_shapes")}
    return cells, shapes


edits = st.lists(st.tuples(st.sampled_from(["hydrant", "pipeline", "residential_compound"]),
                           st.sampled_from(["status", "move", "delete", "insert"]), st.integers(0, 10_000)),
                 min_size=1, max_size=6)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits)
def test_incremental_upkeep_equals_a_rebuild(tmp_path_factory: pytest.TempPathFactory, catalogue: Catalogue,
                                              script: list[tuple[str, str, int]]) -> None:
    target = new_target(tmp_path_factory.mktemp("agg"))
    store = open_store(target, catalogue)
    small = (121.44, 31.24, 121.47, 31.27)
    store.upsert("hydrant", hydrants(60, seed=1, box=small), author="t", source="t")
    store.upsert("pipeline", pipelines(30, seed=2, box=small), author="t", source="t")
    store.upsert("residential_compound", compounds(30, seed=3, box=small), author="t", source="t")
    engine = TileEngine(store, TileSettings(warm=False))
    try:
        for layer in ("hydrant", "pipeline", "residential_compound"):
            engine.refresh(layer)
        for layer, action, seed in script:
            _change(store, layer, action, seed)
        for layer in ("hydrant", "pipeline", "residential_compound"):
            engine.refresh(layer)
        incremental = _tables(target)
        execute(target, "DELETE FROM twin_tiles_state")
        for layer in ("hydrant", "pipeline", "residential_compound"):
            engine.aggregates.sync(layer)
        rebuilt = _tables(target)
    finally:
        engine.close()
        store.close()
        drop(target)
    assert incremental[0].keys() == rebuilt[0].keys()
    for key, (n, *sums) in rebuilt[0].items():
        assert incremental[0][key][0] == n and np.allclose(incremental[0][key][1:], sums, rtol=1e-9, atol=1e-6), key
    assert incremental[1].keys() == rebuilt[1].keys()
    for key, geom in rebuilt[1].items():
        assert shapely.equals_exact(incremental[1][key], geom, tolerance=1e-6), key


def _change(store: Store, layer: str, action: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    keys = store.features(layer).key.tolist()
    if not keys and action != "insert":
        return
    key = keys[int(rng.integers(len(keys)))] if keys else ""
    if action == "status":
        store.edit(key, author="t", properties={"status": "retired"})
    elif action == "delete":
        store.delete(layer, [key], author="t")
    elif action == "move":
        geom = store.get(key).geometry.iloc[0]
        store.edit(key, author="t", geometry=shapely.affinity.translate(geom, 0.003, -0.002))
    else:
        make = {"hydrant": hydrants, "pipeline": pipelines, "residential_compound": compounds}[layer]
        store.upsert(layer, make(3, seed=seed, box=BOX), author="t", source="t")


def test_an_oversized_aggregate_tile_falls_back_to_points_and_keeps_its_counts(engine: TileEngine) -> None:
    tile = tiles_in((121.45, 31.25, 121.45, 31.25), 11)[0]
    layers = ("pipeline", "residential_compound")
    engine.refresh("pipeline"), engine.refresh("residential_compound")
    full = engine.renderer.render(layers, tile, TileFilter())
    tight = Renderer(engine.store, engine.aggregates, max_bytes=len(full.data) - 1)
    small = tight.render(layers, tile, TileFilter())
    assert small.mode == "cells" and len(small.data) < len(full.data)

    def summary(data: bytes) -> dict[str, int]:
        decoded = mapbox_vector_tile.decode(data)
        return {layer: sum(f["properties"]["count"] for f in decoded[layer]["features"]) for layer in layers}

    assert summary(small.data) == summary(full.data)
    assert {f["geometry"]["type"] for layer in layers
            for f in mapbox_vector_tile.decode(small.data)[layer]["features"]} == {"Point"}


def test_two_servers_starting_on_a_store_without_aggregates_build_them_once(
        city: Store, catalogue: Catalogue, tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    import tiles.aggregate as aggregate

    builds: Counter = Counter()
    read = aggregate._Delta.read

    def counted(self: aggregate._Delta, since: int, rebuild: bool):
        if rebuild:
            builds[self.plan.layer] += 1
            time.sleep(0.3)  # long enough for the other server to reach the same layer meanwhile
        return read(self, since, rebuild)

    monkeypatch.setattr(aggregate._Delta, "read", counted)
    other = open_store(city.location, catalogue, create=False)  # a second server (or worker) on the same store
    first = TileEngine(city, TileSettings(cache_dir=None, warm=True))
    second = TileEngine(other, TileSettings(cache_dir=None, warm=True))
    try:
        assert first._warming is not None and second._warming is not None
        first._warming.join(120)
        second._warming.join(120)
        planned = [layer for layer in catalogue if first.aggregates.plan(layer) is not None]
        assert builds == Counter(dict.fromkeys(planned, 1))  # every layer built, each by one of the two
        tile = tiles_in((121.45, 31.25, 121.45, 31.25), 9)[0]
        layers = ("hydrant", "pipeline", "residential_compound")
        assert decode(first.tile(layers, tile).gz) == decode(second.tile(layers, tile).gz)  # both read what was built
        assert sum(builds.values()) == len(planned)
    finally:
        first.close()
        second.close()
        other.close()


def test_a_status_change_recounts_cells_but_redraws_no_shape(engine: TileEngine, city: Store,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import tiles.aggregate as aggregate

    engine.refresh("pipeline")
    redrawn: list[set] = []
    pieces_in = aggregate._Delta._pieces_in
    monkeypatch.setattr(aggregate._Delta, "_pieces_in", lambda self, cells: redrawn.append(set(cells))
                        or pieces_in(self, cells))
    keys = city.features("pipeline").key.tolist()
    city.edit(keys[0], author="test", properties={"status": "faulty"})
    engine.refresh("pipeline")
    assert redrawn == [set()]  # the geometry is as it was: no cell's network is rebuilt
    counts, _ = _totals(engine, "pipeline", 8)
    assert counts["count_faulty"] == (city.features("pipeline").status == "faulty").sum() >= 1
    geometry = city.get(keys[1]).geometry.iloc[0]
    city.edit(keys[1], author="test", geometry=shapely.affinity.translate(geometry, 0.001, 0.0))
    engine.refresh("pipeline")
    assert len(redrawn) == 2 and redrawn[1]  # a moved pipe redraws the cells it left and entered


class _Cells:
    """An AggregateWriter that only records the cells it is given, by level."""

    def __init__(self) -> None:
        self.levels: dict[int, list[tuple]] = {}

    def add_cells(self, level: int, rows: list[tuple]) -> None:
        self.levels[level] = sorted((a, b, s, n, round(m, 6), round(x, 3), round(y, 3)) for a, b, s, n, m, x, y in rows)


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.tuples(st.integers(0, 300), st.integers(0, 300), st.sampled_from(["a", "b"]),
                              st.integers(-3, 3), st.floats(-5, 5), st.floats(-1e4, 1e4), st.floats(-1e4, 1e4)),
                     min_size=1, max_size=40))
def test_few_counts_sum_to_what_the_grouped_sum_gives(rows: list[tuple]) -> None:
    plan = Plan("hydrant", "point", 6, 3)  # cells of levels 8 down to 3
    delta = pd.DataFrame(rows, columns=["cx", "cy", "status", "n", "measure", "sx", "sy"])
    few, grouped = _Cells(), _Cells()
    aggregate._apply_few_counts(few, plan, delta)
    before, aggregate.SMALL_DELTA = aggregate.SMALL_DELTA, -1
    try:
        aggregate._apply_counts(grouped, plan, delta)
    finally:
        aggregate.SMALL_DELTA = before
    assert few.levels == grouped.levels
