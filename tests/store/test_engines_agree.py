"""The two engines give the same answers: the same twin written into a GeoPackage and into PostGIS, and queried
alike with random boxes, filters, areas, radius and nearest-k searches and tiles.

Writes are compared on two stores built independently by the same calls (same keys, fids, versions, values and
geometries: only the times differ). Reads are compared on a GeoPackage twin and its copy in PostGIS
(``twin store copy``), so that every value, times included, must come back identical.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import mapbox_vector_tile
import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.engines import ENGINE, drop, new_target
from tests.query.area_fixture import BOX, access_catalogue, build_area_twin
from tiles import TileEngine, TileSettings
from tiles.grid import TMS, TileID
from tiles.view import MASKED
from twin.model.query import BBox, FeatureQuery, Near, SortKey
from twin.model.rows import Rows
from twin.query.cql import parse_filter
from twin.query.crs import CRS84
from twin.query.filters import check_filter
from twin.store import Store, open_store
from twin.store.copy import copy_store

pytestmark = pytest.mark.skipif(ENGINE != "postgis", reason="compares GeoPackage with PostGIS: runs in the PostGIS run")
LAYERS = ("hydrant", "street_light", "pipeline", "residential_compound", "construction_site", "heritage_building")
EXAMPLES = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def layers(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return access_catalogue(tmp_path_factory.mktemp("layers"))


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory, layers: Path) -> Iterator[tuple[Store, Store]]:
    """The area twin in a GeoPackage, and its copy in PostGIS."""
    folder = tmp_path_factory.mktemp("agree")
    gpkg = build_area_twin(folder / "twin.gpkg", layers)
    target = new_target(folder, "copy")
    pg = open_store(target, gpkg.catalogue)
    assert all(c.same for c in copy_store(gpkg, pg))
    yield gpkg, pg
    gpkg.close()
    pg.close()
    drop(target)


def _values(rows: Rows) -> list[tuple]:
    """Rows with their geometry as normalised WKB (each engine's bytes are its own)."""
    geoms = shapely.to_wkb(rows.geometries(), byte_order=1, flavor="iso")
    g = rows.columns.index("geom")
    return [(*r[:g], *r[g + 1:], w) for r, w in zip(rows.rows, geoms, strict=True)]


def test_the_same_writes_give_the_same_store(tmp_path: Path, layers: Path) -> None:
    gpkg = build_area_twin(tmp_path / "a.gpkg", layers)
    target = new_target(tmp_path, "b")
    try:
        pg = build_area_twin(target, layers)  # type: ignore[arg-type]
        for layer in gpkg.catalogue:
            a, b = gpkg.features(layer), pg.features(layer)
            skip = ["updated_at", "valid_from"]
            assert a.drop(columns=skip).equals(b.drop(columns=skip)), layer
            for name in ("changesets",):
                assert [(c.id, c.layer, c.inserted) for c in gpkg.changesets(limit=100)] == \
                    [(c.id, c.layer, c.inserted) for c in pg.changesets(limit=100)], name
        pg.close()
    finally:
        gpkg.close()
        drop(target)


boxes = st.tuples(st.floats(BOX[0] - 0.02, BOX[2]), st.floats(BOX[1] - 0.02, BOX[3]),
                  st.floats(0.0001, 0.06), st.floats(0.0001, 0.06)).map(
    lambda t: (t[0], t[1], min(t[0] + t[2], 180.0), min(t[1] + t[3], 90.0)))
points = st.tuples(st.floats(BOX[0], BOX[2]), st.floats(BOX[1], BOX[3]))
TERMS = [
    "outlet_diameter >= 100", "kind = 'underground'", "status IN ('faulty', 'under_repair')",
    "pressure BETWEEN 0.1 AND 0.4", "pressure IS NOT NULL", "road LIKE '南京%'", "NOT (status = 'retired')",
    "pressure * 10 > 3", "outlet_diameter / 0 IS NULL", "outlet_diameter / 7 > 10", "CASEI(kind) = 'underground'",
    "S_DWITHIN(geometry, POINT(121.45 31.25), 800)", "S_INTERSECTS(geometry, BBOX(121.43, 31.22, 121.47, 31.26))",
    "S_WITHIN(geometry, POLYGON((121.42 31.21, 121.48 31.21, 121.48 31.27, 121.42 31.27, 121.42 31.21)))",
    "S_DISJOINT(geometry, POINT(121.45 31.25))", "updated_at > TIMESTAMP('2020-01-01T00:00:00Z')",
]
terms = st.sampled_from(TERMS)
filters = st.lists(terms, min_size=1, max_size=3).flatmap(
    lambda parts: st.sampled_from([" AND ", " OR "]).map(lambda op: op.join(f"({p})" for p in parts)))


def _both(pair: tuple[Store, Store], query: FeatureQuery) -> tuple[tuple, tuple]:
    out = []
    for store in pair:
        with store.read() as snap:
            out.append((_values(snap.select(query)), snap.count(query)))
    return out[0], out[1]


@pytest.mark.parametrize("text", TERMS)
def test_each_filter_term_selects_alike_over_the_whole_twin(pair: tuple[Store, Store], text: str) -> None:
    spec = pair[0].catalogue["hydrant"]
    query = FeatureQuery("hydrant", filter=check_filter(parse_filter(text, None), spec, CRS84), limit=10_000)
    a, b = _both(pair, query)
    assert a == b and a[1][0] > 0


@EXAMPLES
@given(boxes, filters, st.integers(1, 300), st.integers(0, 50))
def test_boxes_and_filters_page_and_count_alike(pair: tuple[Store, Store], box: tuple, text: str, limit: int,
                                                offset: int) -> None:
    spec = pair[0].catalogue["hydrant"]
    query = FeatureQuery("hydrant", bbox=BBox(*box), filter=check_filter(parse_filter(text, None), spec, CRS84),
                         limit=limit, offset=offset, sortby=(SortKey("outlet_diameter", False),))
    a, b = _both(pair, query)
    assert a == b


@EXAMPLES
@given(st.sampled_from(LAYERS), st.integers(0, 10_000), boxes | st.none())
def test_area_scoped_reads_agree(pair: tuple[Store, Store], layer: str, pick: int, box: tuple | None) -> None:
    from twin.access.areas import AreaResolver

    keys = pair[0].features("committee")["key"].tolist() + pair[0].features("subdistrict")["key"].tolist()
    key = keys[pick % len(keys)]
    areas = [AreaResolver(s, ("district", "subdistrict", "committee")).get(key) for s in pair]
    answers = []
    for store, area in zip(pair, areas, strict=True):
        with store.read() as snap:
            q = FeatureQuery(layer, bbox=BBox(*box) if box else None, scope=area, limit=500)
            answers.append((_values(snap.select(q)), snap.count(q)))
    assert answers[0] == answers[1]


@EXAMPLES
@given(st.sampled_from(LAYERS), points, st.integers(1, 40), st.floats(1, 3000))
def test_nearest_and_radius_agree(pair: tuple[Store, Store], layer: str, point: tuple, k: int, metres: float) -> None:
    hits, radius = [], []
    for store in pair:
        with store.read() as snap:
            h = snap.nearest(layer, point[0], point[1], k)
            hits.append((h.fids.tolist(), np.round(h.distances, 6).tolist()))
            q = FeatureQuery(layer, near=Near(point[0], point[1], metres), limit=1000)
            rows = snap.select(q)
            radius.append([(r[1], round(r[-1], 6)) for r in rows.rows])
    assert hits[0] == hits[1]
    assert radius[0] == radius[1]


def _decoded(data: bytes) -> dict[str, list]:
    layers = mapbox_vector_tile.decode(data) if data else {}
    return {name: sorted((repr(sorted(f["properties"].items())), repr(f["geometry"])) for f in layer["features"])
            for name, layer in layers.items()}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(9, 16), points, st.sampled_from([("hydrant",), ("pipeline", "street_light"),
                                                    ("residential_compound", "heritage_building")]))
def test_tiles_agree(pair: tuple[Store, Store], z: int, point: tuple, layers: tuple[str, ...]) -> None:
    t = TMS.tile(point[0], point[1], z)
    drawn = []
    for store in pair:
        engine = TileEngine(store, TileSettings(cache_dir=None, pyramid=None, warm=False))
        try:
            data, _ = engine.draw(layers, TileID(t.z, t.x, t.y), view=MASKED)
        finally:
            engine.close()
        drawn.append(_decoded(data))
    assert drawn[0] == drawn[1]
