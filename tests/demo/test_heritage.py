"""Heritage: OSM tags turned into protection levels and batches; synthetic buildings marked as such."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shapely

from twin.demo import heritage
from twin.demo.city import City


@pytest.mark.parametrize(("tag", "operator", "level"), [
    ("4", "上海市优秀历史建筑", "excellent_historic"),
    ("2", "上海全国重点文物保护单位列表", "national"),
    ("2", "上海市优秀历史建筑;上海全国重点文物保护单位列表", "excellent_historic"),
    ("4", None, "municipal"),
    ("yes", None, "registered"),
    (None, None, None),
])
def test_protection_level_from_osm_tags(tag: str | None, operator: str | None, level: str | None) -> None:
    got = heritage.protection_level(pd.Series([tag], dtype=object), pd.Series([operator], dtype=object))
    assert got.tolist() == [level]


@pytest.mark.parametrize(("ref", "batch"), [("1989年8号", 1), ("4A011", 4), ("2C014", 2), ("A-Ⅲ-030", 3),
                                            ("A-III-02", 3), ("4-226", None), (None, None)])
def test_batch_of_the_excellent_historic_list(ref: str | None, batch: int | None) -> None:
    level = np.array(["excellent_historic"], dtype=object)
    assert heritage.protection_batch(pd.Series([ref], dtype=object), level) == [batch]
    assert heritage.protection_batch(pd.Series([ref], dtype=object), np.array(["national"], dtype=object)) == [None]


def test_real_heritage_keeps_every_osm_object() -> None:
    real = heritage.real_heritage()
    assert len(real) == 1408 and real["osm_id"].str.fullmatch(r"(node|way|relation)/\d+").all()
    assert set(real.geometry.geom_type) <= {"Point", "Polygon", "MultiPolygon"} and real.geometry.is_valid.all()
    bund = real[real["name"] == "上海浦东发展银行"].iloc[0]
    assert bund["protection_level"] == "excellent_historic" and bund["protection_batch"] == 1
    assert bund["address"] == "中山东一路10-12号"
    assert real["wikidata"].dropna().str.fullmatch(r"Q\d+").all()


def test_synthetic_heritage_is_marked_and_near_the_real(city: City) -> None:
    real = heritage.real_heritage()
    fake = heritage.synthetic_heritage(city, real, 120, 5)
    assert len(fake) == 120 and fake["name"].str.endswith("（模拟）").all() and fake["osm_id"].isna().all()
    xy_fake = city.frame.geoms_to_xy(fake.geometry.to_numpy())
    xy_real = city.frame.geoms_to_xy(real.geometry.to_numpy())
    _, dist = shapely.STRtree(xy_real).query_nearest(xy_fake, return_distance=True, all_matches=False)
    assert dist.max() < 500 and dist.min() >= 5  # near a real one, never on it
    assert not shapely.STRtree(xy_fake).query(xy_fake, predicate="overlaps").size
    assert fake.loc[fake["protection_level"] != "excellent_historic", "protection_batch"].isna().all()
