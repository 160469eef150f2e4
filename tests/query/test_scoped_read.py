"""A scoped page and its count share one pass over the area's candidates."""

from __future__ import annotations

from pathlib import Path

import pytest
import shapely

from tests.query.area_fixture import access_catalogue, build_area_twin
from twin.access import AreaResolver
from twin.query.model import FeatureQuery
from twin.query.search import QueryService


def test_a_full_scoped_page_and_its_count_work_out_the_area_once(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    store = build_area_twin(tmp_path / "twin.gpkg", access_catalogue(tmp_path / "layers"))
    service = QueryService(store)
    try:
        committees = store.features("committee")
        lights = store.features("street_light")
        inside = [int(shapely.intersects(g, lights.geometry.to_numpy()).sum()) for g in committees.geometry]
        key = committees["key"].iloc[max(range(len(inside)), key=inside.__getitem__)]
        area = AreaResolver(store, ("committee",)).get(key)
        calls = []
        real = service.reader._scope_members
        monkeypatch.setattr(service.reader, "_scope_members", lambda *a: calls.append(1) or real(*a))
        page = service.page(FeatureQuery(layer="street_light", scope=area, limit=2))
        assert len(page.rows.rows) == 2 and page.matched == max(inside) > 2 and page.exact
        assert len(calls) == 1
        service.page(FeatureQuery(layer="street_light", scope=area, limit=2))
        assert len(calls) == 2  # nothing is kept between answers: the next one may follow a write
    finally:
        service.close()
        store.close()
