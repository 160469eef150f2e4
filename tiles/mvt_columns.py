"""Mapbox Vector Tile layers encoded column by column (MVT 2.1, https://github.com/mapbox/vector-tile-spec).

A layer comes as columns: the geometry commands of its features (:mod:`tiles.mvt_geometry`), their ids and one
array of values per property. Its protobuf is written with numpy (:mod:`tiles.wire`), each field for all
features at once, instead of feature by feature in Python as mapbox-vector-tile does; the tile decodes to the
same features, ids, properties and geometries as that encoder's.

Properties follow that encoder's rules too: ``None`` means absent, values other than ``str``, ``bool``, ``int``
and ``float`` (and their numpy kinds) are left out, and each distinct value is stored once in the layer's value
table. A value's type is kept exactly: ``1``, ``1.0`` and ``True`` are three values (string, ``uint`` for
non-negative and ``sint`` for negative integers, ``double``, ``bool``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from tiles.mvt_geometry import NONE, Commands
from tiles.wire import (
    FIXED64,
    LENGTH_DELIMITED,
    VARINT,
    Ragged,
    delimited,
    delimited_bytes,
    runs,
    tag,
    uvarint,
    varint,
    varint_field,
    varints,
    write,
)

VERSION = 2
# field numbers: Tile.layers; Layer.name, features, keys, values, extent, version; Feature.id, tags, type,
# geometry; Value.string_value, double_value, uint_value, sint_value, bool_value
_TILE_LAYER = 3
_NAME, _FEATURE, _KEY, _VALUE, _EXTENT, _VERSION = 1, 2, 3, 4, 5, 15
_ID, _TAGS, _TYPE, _GEOMETRY = 1, 2, 3, 4
_STRING, _DOUBLE, _UINT, _SINT, _BOOL = 1, 3, 5, 6, 7
_KINDS = ("string", "int", "double", "bool")
_INFERRED = {"string": "string", "integer": "int", "floating": "double", "boolean": "bool"}


@dataclass(frozen=True)
class Layer:
    """One layer's features as columns: geometry commands, ids (negative: none) and property values (``None``:
    absent), all in feature order."""

    name: str
    geometry: Commands
    ids: NDArray[np.int64]
    properties: Mapping[str, NDArray[Any]]

    @classmethod
    def empty(cls, name: str) -> Layer:
        nothing = np.empty(0, dtype=np.int64)
        no_ints = Ragged(np.empty(0, dtype=np.uint64), nothing)
        return cls(name, Commands(np.empty(0, dtype=np.uint8), no_ints), nothing, {})


def encode_tile(layers: Sequence[Layer], extent: int) -> bytes:
    """A tile of the layers that have something to draw, in the order given (``b''`` when none has)."""
    return b"".join(delimited_bytes(_TILE_LAYER, data) for data in (encode_layer(la, extent) for la in layers) if data)


def encode_layer(layer: Layer, extent: int) -> bytes:
    """One ``Layer`` message; ``b''`` when none of its features has a geometry to draw."""
    drawn = np.flatnonzero(layer.geometry.types != NONE)
    if not len(drawn):
        return b""
    geometry = layer.geometry.take(drawn)
    names, tag_ints, values = _tags([(name, col[drawn]) for name, col in layer.properties.items()], len(drawn))
    ids = layer.ids[drawn]
    tags = varints(tag_ints.T[tag_ints.T >= 0]).group((tag_ints >= 0).sum(axis=0))
    commands = varints(geometry.ints.data).group(geometry.ints.lengths)
    feature = [*varint_field(_ID, np.maximum(ids, 0), ids >= 0),
               *delimited(_TAGS, [runs(tags)], tags.lengths > 0),
               *varint_field(_TYPE, geometry.types, np.ones(len(drawn), dtype=bool)),
               *delimited(_GEOMETRY, [runs(commands)])]
    keys = b"".join(delimited_bytes(_KEY, n.encode()) for n in names)
    tail = varint(_EXTENT << 3 | VARINT) + varint(extent) + varint(_VERSION << 3 | VARINT) + varint(VERSION)
    body = write(delimited(_FEATURE, feature)).data
    # numpy declares ndarray a Buffer (__buffer__) only for Python >= 3.12
    return b"".join([delimited_bytes(_NAME, layer.name.encode()), body, keys, values, tail])  # type: ignore[list-item]


def _tags(columns: list[tuple[str, NDArray[np.object_]]], n: int) -> tuple[list[str], NDArray[np.int64], bytes]:
    """For ``n`` features' property columns: the keys used, the tag integers (rows: key index, value index,
    per key; -1: absent) and the value table (``Layer.values`` fields)."""
    found: dict[str, list[tuple[int, NDArray[np.int64], NDArray[np.object_]]]] = {k: [] for k in _KINDS}
    for j, (_, col) in enumerate(columns):
        for kind, rows, vals in _by_kind(col):
            found[kind].append((j, rows, vals))
    codes = np.full((len(columns), n), -1, dtype=np.int64)
    distinct, base = {}, 0
    for kind in _KINDS:
        if found[kind]:
            local, distinct[kind] = _factorize(kind, np.concatenate([v for _, _, v in found[kind]]))
            at = 0
            for j, rows, vals in found[kind]:
                codes[j, rows] = base + local[at:at + len(vals)]
                at += len(vals)
            base += len(distinct[kind])
    present = codes >= 0
    # the most used values first: their indices, repeated in every feature's tags, take one byte
    order = np.argsort(-np.bincount(codes[present], minlength=base), kind="stable")
    rank = np.empty(base, dtype=np.int64)
    rank[order] = np.arange(base)
    codes[present] = rank[codes[present]]
    used = np.flatnonzero(present.any(axis=1))
    tags = np.empty((2 * len(used), n), dtype=np.int64)
    tags[0::2], tags[1::2] = np.where(present[used], np.arange(len(used))[:, None], -1), codes[used]
    return [columns[j][0] for j in used], tags, _value_table(distinct, order)


def _by_kind(col: NDArray[np.object_]) -> list[tuple[str, NDArray[np.int64], NDArray[np.object_]]]:
    """The rows holding values of each kind, and those values; ``None`` and values of other types are left out."""
    kind = _INFERRED.get(pd.api.types.infer_dtype(col, skipna=False))
    if kind is not None:  # one kind, no None
        return [(kind, np.arange(len(col)), col)]
    present = np.flatnonzero(col != None)  # noqa: E711 (elementwise)
    vals = col[present]
    kind = _INFERRED.get(pd.api.types.infer_dtype(vals, skipna=False))
    if kind is not None:
        return [(kind, present, vals)]
    kinds = np.array([_kind_of(v) for v in vals], dtype=object)
    return [(k, present[kinds == k], vals[kinds == k]) for k in _KINDS if (kinds == k).any()]


def _kind_of(value: object) -> str | None:
    if isinstance(value, bool | np.bool_):
        return "bool"
    if isinstance(value, int | np.integer):
        return "int"
    if isinstance(value, float | np.floating):
        return "double"
    return "string" if isinstance(value, str) else None


def _factorize(kind: str, vals: NDArray[np.object_]) -> tuple[NDArray[np.int64], NDArray[Any]]:
    """Codes and distinct values, in order of first appearance; doubles are told apart by their bits (so
    ``-0.0`` is not ``0.0`` and a NaN is kept)."""
    if kind == "double":
        codes, uniques = pd.factorize(vals.astype(np.float64).view(np.int64))
        return codes, uniques.view(np.float64)
    if kind == "bool":
        return pd.factorize(vals.astype(bool))
    return pd.factorize(vals)


def _value_table(distinct: dict[str, NDArray[Any]], order: NDArray[np.int64]) -> bytes:
    """``Layer.values`` fields of the distinct values of each kind, numbered one after another in ``_KINDS``
    order, written in ``order``."""
    sizes = [len(distinct.get(k, ())) for k in _KINDS]
    kind = np.repeat(np.arange(len(_KINDS)), sizes)[order]
    is_string, is_int, is_double, is_bool = (kind == i for i in range(len(_KINDS)))
    first = dict(zip(_KINDS, np.cumsum(sizes) - sizes, strict=True))
    ordered = {k: v[order[kind == _KINDS.index(k)] - first[k]] for k, v in distinct.items()}
    encoded = list(map(str.encode, ordered.get("string", ())))
    text = np.zeros(len(order), dtype=np.int64)
    text[is_string] = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
    doubles = np.asarray(ordered.get("double", ()), dtype="<f8").view(np.uint8)
    number = np.zeros(len(order), dtype=np.uint64)
    negative = np.zeros(len(order), dtype=bool)
    if "int" in ordered:
        number[is_int], negative[is_int] = _int_values(ordered["int"])
    number[is_bool] = np.asarray(ordered.get("bool", ()), dtype=np.uint64)
    value = [tag(_STRING, LENGTH_DELIMITED, is_string), uvarint(text, is_string),
             runs(Ragged(np.frombuffer(b"".join(encoded), dtype=np.uint8), text)),
             tag(_DOUBLE, FIXED64, is_double), runs(Ragged(doubles, np.where(is_double, 8, 0))),
             tag(_SINT, VARINT, negative), tag(_UINT, VARINT, is_int & ~negative), tag(_BOOL, VARINT, is_bool),
             uvarint(number, is_int | is_bool)]
    return write(delimited(_VALUE, value)).data.tobytes()


def _int_values(ints: NDArray[np.object_]) -> tuple[NDArray[np.uint64], NDArray[np.bool_]]:
    """Integers as ``uint_value`` (non-negative) or zigzagged ``sint_value`` (negative), and which are negative."""
    values = [int(v) for v in ints]
    try:
        unsigned = np.array([-2 * v - 1 if v < 0 else v for v in values], dtype=np.uint64)
    except OverflowError:
        raise ValueError("an integer property is outside the 64-bit range of MVT values") from None
    return unsigned, np.array([v < 0 for v in values], dtype=bool)
