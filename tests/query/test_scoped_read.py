"""A scoped page and its count share one pass over the area's candidates (GeoPackage engine: the pass is the
R-tree read of the candidates, memoised in the snapshot)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
import shapely

from tests.engines import geopackage_only
from tests.query.area_fixture import access_catalogue, build_area_twin
from twin.access import AreaResolver
from twin.model.query import FeatureQuery
from twin.query.search import QueryService
from twin.store.gpkg.reads import GpkgSnapshot

_CANDIDATES = "SELECT id, minx, maxx, miny, maxy FROM"


@geopackage_only
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
        passes = []
        real = GpkgSnapshot.execute

        def execute(snap: GpkgSnapshot, sql: str, params: Sequence[object], what: str = "the query") -> list[tuple]:
            if sql.startswith(_CANDIDATES):
                passes.append(what)
            return real(snap, sql, params, what)

        monkeypatch.setattr(GpkgSnapshot, "execute", execute)
        page = service.page(FeatureQuery(layer="street_light", scope=area, limit=2))
        assert len(page.rows.rows) == 2 and page.matched == max(inside) > 2 and page.exact
        assert passes == ["applying the area"]
        service.page(FeatureQuery(layer="street_light", scope=area, limit=2))
        assert len(passes) == 2  # nothing is kept between answers: the next one may follow a write
    finally:
        store.close()
