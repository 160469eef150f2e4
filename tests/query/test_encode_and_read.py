"""Lean reads, counts, masking and encoders over a real store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pytest
import shapely

from tests.query.twin_fixture import COUNTS, build_twin
from twin.catalogue import Catalogue
from twin.query import encode
from twin.query.crs import resolve_crs
from twin.query.encode import decode_geometries
from twin.query.masking import mask_address, mask_id_number, mask_name, mask_phone
from twin.query.model import BBox, FeatureQuery
from twin.store.gpkg.blob import decode
from twin.store.gpkg.blob import encode as encode_blobs
from twin.store.gpkg.reads import Reader


@pytest.fixture(scope="module")
def reader(tmp_path_factory: pytest.TempPathFactory, catalogue: Catalogue) -> Reader:
    path: Path = tmp_path_factory.mktemp("read") / "twin.gpkg"
    build_twin(path, catalogue).close()
    out = Reader(path, catalogue)
    yield out
    out.close()


def test_count_is_exact_under_the_cap_and_estimated_above(reader: Reader) -> None:
    query = FeatureQuery("hydrant", bbox=BBox(121.40, 31.20, 121.45, 31.30))
    exact, is_exact = reader.count(query, COUNTS["hydrant"])
    assert is_exact and 60 < exact < 140
    guess, is_exact = reader.count(query, COUNTS["hydrant"], cap=10)
    assert not is_exact and guess == pytest.approx(exact, rel=0.35)
    assert reader.count(FeatureQuery("hydrant"), COUNTS["hydrant"]) == (COUNTS["hydrant"], True)


def test_geojson_chunks_join_into_one_valid_document(reader: Reader) -> None:
    rows = reader.select(FeatureQuery("street_light", limit=10000))
    feats = encode.features(encode.prepare(rows, resolve_crs(None)))
    body = b"".join(encode.geojson_chunks(feats, {"numberReturned": len(feats)}, batch=7))
    doc = orjson.loads(body)
    assert doc["type"] == "FeatureCollection" and len(doc["features"]) == COUNTS["street_light"]
    assert doc["features"][0]["geometry"]["type"] == "Point"
    empty = orjson.loads(b"".join(encode.geojson_chunks([], {"numberReturned": 0})))
    assert empty["features"] == []


def test_properties_are_masked_and_selectable(reader: Reader) -> None:
    spec = reader.catalogue["residential_compound"]
    rows = reader.by_key(spec, reader.select(FeatureQuery(spec.id, limit=1)).rows[0][1])
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
    assert shapely.equals_exact(decode_geometries(blobs), decode(blobs), 0).all()
    mixed = encode_blobs(np.array([shapely.Point(121, 31), shapely.box(121, 31, 122, 32)], dtype=object))
    assert [g.geom_type for g in decode_geometries(mixed)] == ["Point", "Polygon"]
    with_envelope = encode_blobs(np.array([shapely.MultiPoint([(121, 31)])], dtype=object))
    assert decode_geometries(with_envelope)[0].geom_type == "MultiPoint"
    assert len(decode_geometries([])) == 0
