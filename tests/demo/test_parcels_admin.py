"""Compounds and sites between the streets; sub-districts and committees partitioning their parents."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import given
from hypothesis import strategies as st

from tests.demo.personal import FICTITIOUS_LANDLINE, FICTITIOUS_MOBILE, SYNTHETIC_PERSON
from twin.demo import admin, parcels
from twin.demo.city import City
from twin.demo.networks import Network
from twin.demo.tiles import city_tiles


@pytest.fixture(scope="module")
def placed(network: Network, city: City) -> tuple[pd.DataFrame, pd.DataFrame]:
    tiles = [t for t in city_tiles(city) if t.cell in ("wtw3s", "wtw0y", "wtw6h")]
    found = {parcels.COMPOUND: [], parcels.SITE: []}
    for tile in tiles:
        got = parcels.tile_parcels(network, tile, {parcels.COMPOUND: 40, parcels.SITE: 15})
        found[parcels.COMPOUND].append(parcels.compounds(network, tile, *got[parcels.COMPOUND]))
        found[parcels.SITE].append(parcels.sites(network, tile, *got[parcels.SITE]))
    return pd.concat(found[parcels.COMPOUND], ignore_index=True), pd.concat(found[parcels.SITE], ignore_index=True)


def test_parcels_are_valid_separate_and_clear_of_roads(placed: tuple, city: City) -> None:
    compounds, sites = placed
    assert len(compounds) > 100 and len(sites) > 30
    geoms = np.concatenate([compounds.geometry.to_numpy(), sites.geometry.to_numpy()])
    assert shapely.is_valid(geoms).all() and (shapely.get_type_id(geoms) == 3).all()
    xy = city.frame.geoms_to_xy(geoms)
    a, b = shapely.STRtree(xy).query(xy, predicate="intersects")
    overlap = shapely.area(shapely.intersection(xy[a[a < b]], xy[b[a < b]]))
    assert overlap.size == 0 or overlap.max() < 1.0  # m²: touching at most
    assert shapely.STRtree(city.road_xy).query(xy, predicate="dwithin", distance=8.0).size == 0
    area = shapely.area(xy)
    assert 2_000 < np.median(area) < 100_000  # m²: a few hectares


def test_compound_and_site_attributes_are_plausible(placed: tuple) -> None:
    compounds, sites = placed
    assert compounds["name"].str.contains("花园|新村|苑|小区|公寓|家园|名邸|坊|湾|里").all()
    assert compounds["address"].str.fullmatch(r"\w+区\w+?(路|街|支路|弄)\d+弄").all()
    assert compounds["households"].between(20, 20_000).all() and compounds["built_year"].between(1920, 2024).all()
    assert compounds["property_manager"].str.fullmatch(SYNTHETIC_PERSON.pattern).all()
    assert compounds["contact_phone"].str.fullmatch(FICTITIOUS_MOBILE.pattern).all()
    assert sites["permit_no"].str.fullmatch(r"31\d{4}20\d{6}\d{4}").all()
    assert (sites["end_date"] > sites["start_date"]).all()
    today = "2025-06-30"
    assert (sites.loc[sites["status"] == "planned", "start_date"] > today).all()
    assert (sites.loc[sites["status"] == "completed", "end_date"] < today).all()
    assert sites["site_manager"].str.fullmatch(SYNTHETIC_PERSON.pattern).all()


@given(total=st.integers(0, 5000), weights=st.lists(st.floats(0.001, 100), min_size=1, max_size=30),
       minimum=st.integers(0, 5))
def test_allocate_splits_exactly_with_the_minimum(total: int, weights: list[float], minimum: int) -> None:
    got = admin.allocate(total, np.array(weights), minimum)
    assert (got >= minimum).all()
    assert got.sum() == max(total, minimum * len(weights))


def test_subdistricts_and_committees_tile_their_parents(city: City) -> None:
    sub, sub_xy = admin.subdistricts(city, 215, 3)
    assert len(sub) == 215 and sub["name"].is_unique and sub["name"].str.fullmatch(r"\w+(街道|镇)").all()
    per = sub.groupby("parent").size()
    assert per.min() >= 3 and per["黄浦区"] / city.district_xy[0].area > per["崇明区"] / city.district_xy[15].area
    for i, name in enumerate(city.districts["name"]):
        parts = sub_xy[(sub["parent"] == name).to_numpy()]
        assert np.isclose(shapely.area(parts).sum(), city.district_xy[i].area, rtol=1e-6)
        assert np.isclose(shapely.union_all(parts).area, city.district_xy[i].area, rtol=1e-6)  # no overlaps
    com = admin.committees(city, sub.iloc[:10], sub_xy[:10], 300, 3)
    assert com.groupby("parent").size().min() >= 3 and len(com) <= 300
    assert com.groupby("parent")["name"].apply(lambda s: s.is_unique).all()
    assert com["name"].str.fullmatch(r"\w+(居委会|村委会)").all()
    assert com["secretary"].str.fullmatch(SYNTHETIC_PERSON.pattern).all()
    assert com["office_phone"].str.fullmatch(FICTITIOUS_LANDLINE.pattern).all()
