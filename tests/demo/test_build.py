"""The tiny demo twin, built once through ``twin demo``: contents, parents by key, determinism, re-runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import shapely

from tests.demo.conftest import SEED, build_tiny
from tests.demo.personal import assert_personal_data_is_fictitious
from tests.engines import is_pg, snapshot
from twin.catalogue import Catalogue
from twin.demo import SCALES, build_demo
from twin.demo.build import open_for_demo, provenance
from twin.errors import StoreError
from twin.store import Store, open_store

SYNTHETIC_POINT_LAYERS = ("hydrant", "street_light")


def test_every_layer_is_filled(tiny: Store) -> None:
    counts = {layer: tiny.count(layer) for layer in tiny.catalogue}
    assert counts["district"] == 16 and counts["subdistrict"] == 215 and counts["heritage_building"] == 1408
    assert counts["street_light"] > 3000 and counts["hydrant"] > 300 and counts["pipeline"] > 50
    assert min(counts.values()) > 0, counts
    assert sum(counts.values()) < 20_000


def test_districts_went_through_the_gcj02_import(tiny: Store) -> None:
    d = tiny.features("district")
    assert set(d["code"]) >= {"310101", "310115", "310151"} and d["name_en"].notna().all()
    square = d[d.contains(shapely.Point(121.4737, 31.2304))]
    assert square["name"].tolist() == ["黄浦区"]
    cs = [c for c in tiny.changesets(layer="district") if c.author == "twin demo"]
    assert cs[0].source_crs == "GCJ-02" and cs[0].source == "district.fgb"


def test_children_name_their_parents_by_location_key(tiny: Store) -> None:
    districts = tiny.features("district").set_index("key")
    subs = tiny.features("subdistrict")
    assert subs["district"].isin(districts.index).all()
    committees = tiny.features("committee")
    parents = subs.set_index("key").loc[committees["subdistrict"]]
    assert len(parents) == len(committees)
    inside = shapely.within(shapely.point_on_surface(committees.geometry.to_numpy()),
                            shapely.buffer(parents.geometry.to_numpy(), 1e-6))
    assert inside.all()


def test_components_lie_in_the_focus_window_and_have_statuses(tiny: Store) -> None:
    lights = tiny.features("street_light")
    lon, lat = shapely.get_x(lights.geometry.to_numpy()), shapely.get_y(lights.geometry.to_numpy())
    assert np.hypot((lon - 121.4737) * 95_000, (lat - 31.2304) * 111_000).max() < SCALES["tiny"].focus_km * 1050
    assert set(lights["status"]) >= {"in_service", "faulty"}


def test_changesets_record_the_demo_and_what_is_synthetic(tiny: Store) -> None:
    assert provenance(tiny) == f"twin demo scale=tiny seed={SEED}"
    notes = {cs.layer: cs.note for cs in tiny.changesets(limit=100)}
    assert "synthetic" in notes["street_light"] and "OpenStreetMap" in notes["heritage_building"]


def _snapshot(target: str, catalogue: Catalogue) -> dict[str, tuple[list, np.ndarray]]:
    st = open_store(target, catalogue, create=False)
    try:
        out = {}
        for layer in ("committee", "hydrant", "residential_compound", "pipeline"):
            f = st.features(layer)
            out[layer] = (f["key"].tolist(), shapely.get_coordinates(f.geometry.to_numpy()))
        return out
    finally:
        st.close()


def test_same_seed_same_twin_and_reruns_are_idempotent(tmp_path: Path, target: str, tiny_target: str,
                                                       catalogue: Catalogue) -> None:
    again = target
    build_tiny(again, tmp_path)
    first, second = _snapshot(tiny_target, catalogue), _snapshot(again, catalogue)
    for layer in first:
        assert first[layer][0] == second[layer][0], layer
        np.testing.assert_array_equal(first[layer][1], second[layer][1])
    st = open_store(again, catalogue, create=False)
    before = st.changesets(limit=1)[0].id
    st.close()
    output = build_tiny(again, tmp_path)  # the same command on the same store: a no-op re-import
    st = open_store(again, catalogue, create=False)
    try:
        rerun = [cs for cs in st.changesets(limit=100) if cs.id > before]
        assert len(rerun) >= 9 and all(cs.inserted == cs.updated == 0 and cs.unchanged > 0 for cs in rerun)
        assert st.count("hydrant") == len(first["hydrant"][0])
    finally:
        st.close()
    assert "~0" in output


def test_another_seed_is_refused_and_force_starts_afresh(own_tiny: str, catalogue: Catalogue) -> None:
    before = snapshot(own_tiny)
    file = None if is_pg(own_tiny) else Path(own_tiny).read_bytes()
    with pytest.raises(StoreError, match=r"scale=tiny seed=7; pass --force"):
        open_for_demo(own_tiny, catalogue, SCALES["tiny"], SEED + 1, force=False)
    assert snapshot(own_tiny) == before
    if file is not None:  # not a byte of the file changed either
        assert Path(own_tiny).read_bytes() == file
    st = open_for_demo(own_tiny, catalogue, SCALES["tiny"], SEED + 1, force=True)
    try:
        assert st.changesets(limit=1) == [] and st.count("hydrant") == 0
    finally:
        st.close()


def test_a_store_with_other_data_is_refused(target: str, catalogue: Catalogue, tiny: Store) -> None:
    st = open_store(target, catalogue)
    st.upsert("district", tiny.features("district").iloc[:1][["name", "geometry"]], author="me", source="x")
    st.close()
    with pytest.raises(StoreError, match="data not built by twin demo"):
        open_for_demo(target, catalogue, SCALES["tiny"], SEED, force=False)


@pytest.mark.slow
def test_small_scale_is_about_100k_components_and_a_window_on_the_city(tmp_path: Path, target: str, tiny: Store,
                                                                        catalogue: Catalogue) -> None:
    build_demo(target, catalogue, SCALES["small"], SEED, workdir=tmp_path / "files", progress=lambda _: None)
    small = open_store(target, catalogue, create=False)
    try:
        total = sum(small.count(layer) for layer in catalogue)
        assert 85_000 < total < 120_000
        big = {layer: set(shapely.to_wkb(small.features(layer).geometry.to_numpy()).tolist())
               for layer in SYNTHETIC_POINT_LAYERS}
        for layer in SYNTHETIC_POINT_LAYERS:  # the tiny twin is a window on the small one
            assert set(shapely.to_wkb(tiny.features(layer).geometry.to_numpy()).tolist()) <= big[layer]
        assert_personal_data_is_fictitious(small)
    finally:
        small.close()
