"""Lean reads, counts, masking and encoders over a real store."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import orjson
import pytest
import shapely

from tests.query.twin_fixture import COUNTS
from twin.catalogue import Catalogue
from twin.model.query import BBox, FeatureQuery
from twin.query import encode
from twin.query.crs import resolve_crs
from twin.query.masking import mask_address, mask_id_number, mask_name, mask_phone
from twin.store import Snapshot, open_store
from twin.store.gpkg.blob import CODEC, decode
from twin.store.gpkg.blob import encode as encode_blobs


@pytest.fixture(scope="module")
def snap(twin_target: str, catalogue: Catalogue) -> Iterator[Snapshot]:
    """One snapshot of a small real twin, shared by the tests that only read it."""
    store = open_store(twin_target, catalogue, create=False)
    with store.read() as view:
        yield view
    store.close()


def test_count_is_exact_under_the_cap_and_estimated_above(snap: Snapshot) -> None:
    query = FeatureQuery("hydrant", bbox=BBox(121.40, 31.20, 121.45, 31.30))
    exact, is_exact = snap.count(query)
    assert is_exact and 60 < exact < 140
    guess, is_exact = snap.count(query, cap=10)
    assert not is_exact and guess == pytest.approx(exact, rel=0.35)
    assert snap.count(FeatureQuery("hydrant")) == (COUNTS["hydrant"], True)


def test_geojson_chunks_join_into_one_valid_document(snap: Snapshot) -> None:
    rows = snap.select(FeatureQuery("street_light", limit=10000))
    feats = encode.features(encode.prepare(rows, resolve_crs(None)))
    body = b"".join(encode.geojson_chunks(feats, {"numberReturned": len(feats)}, batch=7))
    doc = orjson.loads(body)
    assert doc["type"] == "FeatureCollection" and len(doc["features"]) == COUNTS["street_light"]
    assert doc["features"][0]["geometry"]["type"] == "Point"
    empty = orjson.loads(b"".join(encode.geojson_chunks([], {"numberReturned": 0})))
    assert empty["features"] == []


def test_properties_are_masked_and_selectable(snap: Snapshot) -> None:
    key = snap.select(FeatureQuery("residential_compound", limit=1)).rows[0][1]
    rows = snap.by_keys("residential_compound", [key])
    assert rows.column("key") == [key]
    enc = encode.prepare(rows, resolve_crs(None), ("name", "contact_phone"))
    assert list(enc.properties[0]) == ["name", "contact_phone"]
    assert enc.properties[0]["contact_phone"].startswith("138****")


def test_mask_rules() -> None:
    assert mask_name("张三丰") == "张**"
    assert mask_phone("13812341234") == "138****1234"
    assert mask_phone("12345") == "***45"
    assert mask_id_number("310101199001011234") == "3" + "*" * 16 + "4"
    assert mask_address("黄浦区南京东路100号3号楼501室") == "黄浦区南京东路100号"


def test_point_fast_path_matches_the_general_decoder() -> None:
    pts = shapely.points([121.1, 121.2, 121.3], [31.1, 31.2, 31.3])
    blobs = encode_blobs(pts)
    assert shapely.equals_exact(CODEC.geometries(blobs), decode(blobs), 0).all()
    assert CODEC.points(blobs).tolist() == [[121.1, 31.1], [121.2, 31.2], [121.3, 31.3]]
    mixed = encode_blobs(np.array([shapely.Point(121, 31), shapely.box(121, 31, 122, 32)], dtype=object))
    assert [g.geom_type for g in CODEC.geometries(mixed)] == ["Point", "Polygon"] and CODEC.points(mixed) is None
    with_envelope = encode_blobs(np.array([shapely.MultiPoint([(121, 31)])], dtype=object))
    assert CODEC.geometries(with_envelope)[0].geom_type == "MultiPoint" and CODEC.points(with_envelope) is None
    assert len(CODEC.geometries([])) == 0
