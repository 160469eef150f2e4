"""Indicators equal a direct computation over the store, property-tested on the run's engine: after any sequence of
adds, edits, moves and deletes of hydrants and gas pipelines, every indicator's sums in every area of every level,
as of any moment between the steps, equal what the components as they stood then give, counted afresh."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pyproj
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import hydrants, moment
from tests.vitals.cities import build_areas, write_indicators
from twin.catalogue import Catalogue
from twin.store import Store
from twin.vitals.service import VitalSigns
from twin.vitals.spec import LEVELS, load_indicators

ROADS = ("旧路", "新路", "测试路1号")
GEOD = pyproj.Geod(ellps="WGS84")

ops = st.lists(st.one_of(
    st.tuples(st.just("add"), st.integers(1, 8), st.integers(0, 10_000)),
    st.tuples(st.just("road"), st.integers(0, 10_000), st.sampled_from(ROADS)),
    st.tuples(st.just("move"), st.integers(0, 10_000), st.floats(-0.06, 0.06)),
    st.tuples(st.just("delete"), st.integers(0, 10_000), st.just(0)),
    st.tuples(st.just("pipe"), st.integers(0, 10_000), st.sampled_from(("gas", "water_supply"))),
    st.tuples(st.just("repipe"), st.integers(0, 10_000), st.sampled_from(("gas", "drainage"))),
), min_size=2, max_size=8)


def _pipe(seed: int, kind: str) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(seed)
    xs = 121.39 + rng.random(3) * 0.12
    ys = 31.19 + rng.random(3) * 0.12
    return gpd.GeoDataFrame({"kind": [kind]}, geometry=[shapely.LineString(np.column_stack([xs, ys]))],
                            crs="EPSG:4326")


def _step(store: Store, op: str, n: int, arg: object) -> None:
    keys = sorted(store.features("hydrant").key)
    pipes = sorted(store.features("pipeline").key)
    if op == "add":
        frame = hydrants(n, seed=int(arg), box=(121.38, 31.18, 121.52, 31.32))  # type: ignore[call-overload]
        frame["road"] = [ROADS[i % 3] for i in range(n)]
        store.upsert("hydrant", frame, author="t", source="t")
    elif op == "pipe":
        store.upsert("pipeline", _pipe(n, str(arg)), author="t", source="t")
    elif op == "repipe" and pipes:
        store.edit(pipes[n % len(pipes)], author="t", properties={"kind": arg})
    elif keys and op == "road":
        store.edit(keys[n % len(keys)], author="t", properties={"road": arg})
    elif keys and op == "move":
        g = store.get(keys[n % len(keys)]).geometry.iloc[0]
        store.edit(keys[n % len(keys)], author="t", geometry=shapely.Point(g.x + float(arg), g.y))  # type: ignore
    elif keys and op == "delete":
        store.delete("hydrant", [keys[n % len(keys)]], author="t")


def _expected(areas: dict[str, gpd.GeoDataFrame], level: str, hyd: gpd.GeoDataFrame, pipes: gpd.GeoDataFrame
              ) -> dict[str, dict[str, tuple[float, float, float]]]:
    """Each indicator's (count, sum, whole) per area of ``level``, counted from the components afresh."""
    com = areas["committee"].sort_values("key")
    sub_of = dict(zip(com.key, com.subdistrict, strict=True))
    dist_of = dict(zip(areas["subdistrict"].key, areas["subdistrict"].district, strict=True))

    def up(committee: str) -> str:
        return {"committee": committee, "subdistrict": sub_of[committee],
                "district": dist_of[sub_of[committee]]}[level]

    out: dict[str, dict[str, list[float]]] = {}

    def add(ind: str, area: str, n: float, v: float, d: float) -> None:
        acc = out.setdefault(ind, {}).setdefault(area, [0.0, 0.0, 0.0])
        acc[0] += n
        acc[1] += v
        acc[2] += d

    for road, diameter, geom in zip(hyd.road, hyd.outlet_diameter, hyd.geometry, strict=True):
        home = next((k for k, g in zip(com.key, com.geometry, strict=True) if g.intersects(geom)), None)
        if home is None:
            continue
        area = up(home)
        add("old_road", area, float(road == "旧路"), 0, 0)
        whole = road != "新路"
        add("big_outlets", area, float(whole and diameter >= 100), 0, float(whole))
        add("mean_outlet", area, 1.0, float(diameter), 0)
        add("hydrant_density", area, 1.0, 0, 0)
    for kind, geom in zip(pipes.kind, pipes.geometry, strict=True):
        for key, g in zip(com.key, com.geometry, strict=True):
            piece = g.intersection(geom)
            if kind == "gas" and not piece.is_empty:
                add("gas_km", up(key), 0.0, GEOD.geometry_length(piece), 0)
        home = next((k for k, g in zip(com.key, com.geometry, strict=True)
                     if g.intersects(shapely.point_on_surface(geom))), None)
        if home is not None:
            add("gas_km", up(home), float(kind == "gas"), 0, 0)
    return {i: {a: (s[0], s[1], s[2]) for a, s in by.items()} for i, by in out.items()}


@pytest.fixture(scope="module")
def indicator_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_indicators(tmp_path_factory.mktemp("indicators"))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=ops, pick=st.integers(0, 100), level=st.sampled_from(LEVELS))
def test_kept_sums_equal_a_fresh_count_as_of_any_moment(fresh_store, catalogue: Catalogue, indicator_dir: Path,
                                                         steps, pick, level) -> None:
    indicators = load_indicators(indicator_dir, catalogue)
    for store in fresh_store():
        build_areas(store)
        areas = {lv: store.features(lv) for lv in LEVELS}
        _step(store, "add", 30, pick)
        for seed in range(3):
            _step(store, "pipe", seed + pick, ("gas", "water_supply")[seed % 2])
        vitals = VitalSigns(store, indicators, store.access(), follow=False)
        vitals.sync()  # kept from here: later steps are added to what is kept
        stood = [(moment(), store.features("hydrant"), store.features("pipeline"))]
        for op, n, arg in steps:
            _step(store, op, n, arg)
            if n % 2:
                vitals.sync()  # kept after some steps, not others: the sums must not care
            stood.append((moment(), store.features("hydrant"), store.features("pipeline")))
        vitals.sync()
        then, hyd, pipes = stood[pick % len(stood)]
        with store.read() as snap:
            changeset = snap.log_at(then)
        want = _expected(areas, level, hyd, pipes)
        for ind in indicators.values():
            if level not in ind.spec.levels:
                continue
            got = {a.key: (a.n, a.v, a.d) for a in vitals.read(ind, level, changeset).areas}
            assert set(got) == set(areas[level].key)
            for key, sums in got.items():
                expected = want.get(ind.id, {}).get(key, (0.0, 0.0, 0.0))
                assert sums[0] == pytest.approx(expected[0], abs=1e-9), (ind.id, key)
                assert sums[1] == pytest.approx(expected[1], rel=5e-3, abs=1e-6), (ind.id, key)
                assert sums[2] == pytest.approx(expected[2], abs=1e-9), (ind.id, key)
        vitals.close()
