"""The column-wise MVT encoder writes tiles that real decoders (mapbox-vector-tile, GDAL's MVT driver) read exactly
as they read mapbox-vector-tile's own encoding of the same features: ids, properties with their types, geometry
commands; and the tile renderer's point road places points exactly as the generic one does."""

from __future__ import annotations

import math
import struct
from pathlib import Path
from tempfile import TemporaryDirectory

import mapbox_vector_tile
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from mapbox_vector_tile.Mapbox import vector_tile_pb2

from tests.tiles.conftest import gdal_read
from tiles.grid import EXTENT, TileID, buffered_mercator, to_mercator, to_tile_coords, xy_to_lonlat
from tiles.mvt import encode, fit
from tiles.mvt_columns import Layer
from tiles.mvt_geometry import point_commands, shape_commands
from tiles.render import tile_commands
from tiles.wire import varint, varints, zigzag
from twin.catalogue import load_catalogue
from twin.model.rows import Rows
from twin.settings import DEFAULT_LAYERS_DIR
from twin.store.gpkg.blob import CODEC
from twin.store.gpkg.blob import encode as blobs_of

BUFFER = 64
MAPBOX_OPTIONS = {"extents": EXTENT, "quantize_bounds": None, "y_coord_down": True, "check_winding_order": False}
TILE = TileID(14, 13720, 6692)

text = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)  # no lone surrogates: not UTF-8
values = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1), st.floats(), text)
keys = st.sampled_from(["key", "status", "名称", "count", "x"])
edge = st.sampled_from([-BUFFER, 0, EXTENT, EXTENT + BUFFER])
coord = st.one_of(st.integers(-BUFFER, EXTENT + BUFFER), edge)
ids = st.one_of(st.none(), st.integers(0, 2**63 - 1))


def columns(props: list[dict[str, object]]) -> dict[str, np.ndarray]:
    """Property dicts as the encoder's columns (``None`` where a feature lacks a key)."""
    out = {}
    for name in dict.fromkeys(k for p in props for k in p):
        col = np.empty(len(props), dtype=object)
        col[:] = [p.get(name) for p in props]
        out[name] = col
    return out


def new_tile(layers: list[tuple[str, np.ndarray, list[dict], list[int | None]]]) -> bytes:
    return encode([Layer(name, shape_commands(np.array(geoms, dtype=object)),
                         np.array([-1 if i is None else i for i in fids], dtype=np.int64), columns(props))
                   for name, geoms, props, fids in layers])


def old_tile(layers: list[tuple[str, np.ndarray, list[dict], list[int | None]]]) -> bytes:
    """What the renderer sent before: mapbox-vector-tile's encoder, ``None`` properties left out."""
    payload = [{"name": name, "features": [
        {"geometry": g, "properties": {k: v for k, v in p.items() if v is not None}, "id": i}
        for g, p, i in zip(geoms, props, fids, strict=True) if g is not None]} for name, geoms, props, fids in layers]
    payload = [la for la in payload if la["features"]]
    return mapbox_vector_tile.encode(payload, default_options=MAPBOX_OPTIONS) if payload else b""


def decoded(data: bytes) -> dict[str, list[tuple]]:
    """Each layer's features as ``(id, geometry, properties)``, layers with no feature left out."""
    tile = mapbox_vector_tile.decode(data, default_options={"y_coord_down": True}) if data else {}
    return {name: [(f["id"], f["geometry"], f["properties"]) for f in layer["features"]]
            for name, layer in tile.items() if layer["features"]}


def exact(value: object) -> tuple:
    """A value with its type; floats by their bits (so -0.0 is not 0.0 and NaN equals NaN)."""
    return (float, struct.pack("<d", value)) if isinstance(value, float) else (type(value), value)


def by_value(value: object) -> object:
    """A value as ``==`` compares it, NaN equal to NaN (mapbox-vector-tile stores 1 and 1.0 as one value)."""
    return "NaN" if isinstance(value, float) and math.isnan(value) else value


def assert_same_features(new: bytes, old: bytes) -> None:
    a, b = decoded(new), decoded(old)
    assert list(a) == list(b)
    for name in a:
        assert [(i, g) for i, g, _ in a[name]] == [(i, g) for i, g, _ in b[name]]
        assert [{k: by_value(v) for k, v in p.items()} for _, _, p in a[name]] == \
               [{k: by_value(v) for k, v in p.items()} for _, _, p in b[name]]


point_features = st.lists(st.tuples(coord, coord, ids, st.dictionaries(keys, values, max_size=5)), max_size=40)


@settings(max_examples=200, deadline=None)
@given(point_features)
def test_point_layers_decode_like_mapbox_vector_tiles_encoding(features: list[tuple]) -> None:
    geoms = [shapely.Point(x, y) for x, y, _, _ in features]
    props = [p for *_, p in features]
    fids = [i for _, _, i, _ in features]
    new = new_tile([("t", geoms, props, fids)])
    assert_same_features(new, old_tile([("t", geoms, props, fids)]))
    # and every value comes back with exactly its type: a float is a double, an int an integer, True a bool
    for (_, _, got), p in zip(decoded(new).get("t", []), props, strict=True):
        assert {k: exact(v) for k, v in got.items()} == {k: exact(v) for k, v in p.items() if v is not None}


def shapes(draw: st.DrawFn) -> shapely.Geometry:
    pts = draw(st.lists(st.tuples(st.floats(-3000, 7000), st.floats(-3000, 7000)), min_size=3, max_size=10))
    kind = draw(st.sampled_from(["point", "multipoint", "line", "multiline", "polygon", "holed", "multipolygon"]))
    if kind == "point":
        return shapely.Point(pts[0])
    if kind == "multipoint":
        return shapely.MultiPoint(pts)
    if kind == "line":
        return shapely.LineString(pts)
    if kind == "multiline":
        return shapely.MultiLineString([pts[:2], pts[1:]])
    poly = shapely.make_valid(shapely.Polygon(pts))
    if kind == "holed":
        centre = shapely.Point(pts[0])
        return shapely.difference(shapely.buffer(centre, 900), shapely.buffer(centre, 300))
    if kind == "multipolygon":
        return shapely.union_all([poly, shapely.box(*pts[1], pts[1][0] + 50, pts[1][1] + 80)])
    return poly


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.composite(shapes)(), ids, st.dictionaries(keys, values, max_size=3)), max_size=12),
       st.integers(0, 256))
def test_fitted_lines_polygons_and_multipoints_decode_like_mapbox_vector_tiles_encoding(features: list[tuple],
                                                                                      buffer: int) -> None:
    fitted = fit(np.array([g for g, _, _ in features], dtype=object), buffer).tolist()
    layer = ("t", fitted, [p for *_, p in features], [i for _, i, _ in features])
    assert_same_features(new_tile([layer]), old_tile([layer]))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.composite(shapes)(), st.sampled_from(["int", "float", "str", "bool"]),
                          st.integers(-(2**40), 2**40)), min_size=1, max_size=10))
def test_gdal_reads_the_same_features_from_both_encodings(features: list[tuple]) -> None:
    fitted = fit(np.array([g for g, _, _ in features], dtype=object), BUFFER).tolist()
    cast = {"int": int, "float": lambda v: v / 7, "str": lambda v: f"道路{v}", "bool": lambda v: v % 2 == 0}
    props = [{"v_" + kind: cast[kind](v), "n": i} for i, (_, kind, v) in enumerate(features)]
    layer = ("t", fitted, props, list(range(len(fitted))))
    new, old = new_tile([layer]), old_tile([layer])
    if not decoded(old):
        assert new == b""
        return
    with TemporaryDirectory() as tmp:
        frames = [gdal_read(data, TILE.z, TILE.x, TILE.y, "t", Path(tmp) / name)
                  for name, data in (("new", new), ("old", old))]
    pd.testing.assert_frame_equal(pd.DataFrame(frames[0].drop(columns="geometry")),
                                  pd.DataFrame(frames[1].drop(columns="geometry")), check_dtype=False,
                                  check_like=True)  # fields in schema order, not first-seen order
    assert shapely.equals_exact(frames[0].geometry.to_numpy(), frames[1].geometry.to_numpy(), 0).all()


def test_combined_tiles_keep_the_layer_order_and_leave_empty_layers_out() -> None:
    point = [shapely.Point(5, 6)]
    layers = [("b", point, [{"k": 1}], [None]), ("empty", [None], [{"k": 2}], [3]), ("a", point, [{}], [7])]
    tile = decoded(new_tile(layers))
    assert list(tile) == ["b", "a"]
    assert tile["a"] == [(7, {"type": "Point", "coordinates": [5, 6]}, {})]
    assert new_tile([("empty", [None], [{"k": 1}], [None])]) == b""


def test_a_feature_that_draws_nothing_is_left_out_with_its_values() -> None:
    geoms = [shapely.LineString([(3, 3), (3, 3)]), shapely.GeometryCollection(), shapely.Point(1, 2)]
    props = [{"k": "gone"}, {"k": "also gone"}, {"k": "kept"}]
    tile = vector_tile_pb2.tile()
    tile.ParseFromString(new_tile([("t", geoms, props, [1, 2, 3])]))
    assert [f.id for f in tile.layers[0].features] == [3]
    assert [v.string_value for v in tile.layers[0].values] == ["kept"]


def test_numpy_columns_encode_like_the_same_python_values() -> None:
    xy = np.array([[1, 2], [3, 4], [5, 6]])
    as_numpy = {"i": np.array([1, -2, 2**62]), "f": np.array([0.5, -0.0, np.inf]), "b": np.array([True, False, True])}
    as_python = {k: np.array(v.tolist(), dtype=object) for k, v in as_numpy.items()}
    fids = np.array([4, -1, 6])
    tiles = [decoded(encode([Layer("t", point_commands(xy[:, 0], xy[:, 1]), fids, c)])) for c in (as_numpy, as_python)]
    assert [[{k: exact(v) for k, v in p.items()} for *_, p in t["t"]] for t in tiles] == \
           [[{"i": exact(1), "f": exact(0.5), "b": exact(True)}, {"i": exact(-2), "f": exact(-0.0), "b": exact(False)},
             {"i": exact(2**62), "f": exact(math.inf), "b": exact(True)}]] * 2
    assert [i for i, *_ in tiles[0]["t"]] == [4, 0, 6]  # no id decodes as 0


def test_integers_up_to_the_unsigned_64_bit_limit_are_kept_and_larger_ones_refused() -> None:
    big = np.array([2**64 - 1, -(2**63)], dtype=object)
    tile = decoded(encode([Layer("t", point_commands(np.array([0, 1]), np.array([0, 1])), np.array([-1, -1]),
                                 {"v": big})]))
    assert [p["v"] for *_, p in tile["t"]] == [2**64 - 1, -(2**63)]
    with pytest.raises(ValueError, match="64-bit"):
        encode([Layer("t", point_commands(np.array([0]), np.array([0])), np.array([-1]),
                      {"v": np.array([2**64], dtype=object)})])


@settings(max_examples=300)
@given(st.lists(st.integers(0, 2**64 - 1), max_size=50), st.lists(st.integers(-(2**63), 2**63 - 1), max_size=50))
def test_varints_and_zigzag_follow_the_protobuf_encoding(unsigned: list[int], signed: list[int]) -> None:
    encoded = varints(np.array(unsigned, dtype=np.uint64))
    assert encoded.data.tobytes() == b"".join(varint(v) for v in unsigned)
    assert encoded.lengths.tolist() == [len(varint(v)) for v in unsigned]
    assert zigzag(np.array(signed, dtype=np.int64)).tolist() == [2 * v if v >= 0 else -2 * v - 1 for v in signed]


_SPEC = load_catalogue(DEFAULT_LAYERS_DIR)["hydrant"]


def lonlat_near(tile: TileID) -> st.SearchStrategy[tuple[float, float]]:
    """Lon/lat points around the tile grown by a buffer and a half, many of them near its buffered edges."""
    left, bottom, right, top = buffered_mercator(tile, BUFFER)
    pad = (right - left) / 20
    x = st.one_of(st.floats(left - pad, right + pad), st.sampled_from([left, right]).map(lambda v: v + 1e-3))
    y = st.one_of(st.floats(bottom - pad, top + pad), st.sampled_from([bottom, top]).map(lambda v: v - 1e-3))
    return st.tuples(x, y).map(lambda p: tuple(float(v[0]) for v in xy_to_lonlat(np.array([p[0]]), np.array([p[1]]))))


@settings(max_examples=150, deadline=None)
@given(st.lists(lonlat_near(TILE), min_size=1, max_size=60), st.booleans())
def test_points_read_from_the_blobs_are_kept_and_placed_as_fit_places_them(points: list[tuple[float, float]],
                                                                          envelope: bool) -> None:
    geoms = shapely.points(np.array(points))
    blobs = blobs_of(geoms)
    if envelope:  # as other GeoPackage writers may store points: with an envelope, so read through WKB
        blobs = [b[:3] + bytes([b[3] | 2]) + b[4:8] + struct.pack("<4d", *np.repeat(p, 2)) + b[8:]
                 for b, p in zip(blobs, points, strict=True)]
    rows = Rows(_SPEC, ("geom",), [(b,) for b in blobs], codec=CODEC)
    assert (rows.point_xy() is None) == envelope  # the fast road for plain points, WKB for the others
    keep, commands = tile_commands(rows, TILE, BUFFER)
    fitted = fit(to_tile_coords(to_mercator(geoms), TILE), BUFFER)
    expected = np.flatnonzero(~shapely.is_missing(fitted))
    assert keep.tolist() == expected.tolist()
    reference = shape_commands(fitted[expected])
    assert commands.types.tolist() == reference.types.tolist()
    assert commands.ints.data.tolist() == reference.ints.data.tolist()

