"""Rows to GeoJSON features, CSV and GeoDataFrames, fast: geometries are decoded in bulk, points are
written from their coordinates, others through shapely's GeoJSON writer embedded as raw JSON.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from operator import itemgetter

import geopandas as gpd
import numpy as np
import orjson
import shapely
from numpy.typing import NDArray

from twin.crs import TwinCRS
from twin.errors import InvalidQueryError
from twin.model.rows import Rows
from twin.query.crs import geoms_from_lonlat, is_default
from twin.query.masking import maskers

_SYSTEM_PROPERTIES = ("status", "updated_at")


def property_names(fields: Sequence[str], dropped: Sequence[str]) -> list[str]:
    """The properties a feature shows: status, updated_at and the layer's fields less the dropped ones."""
    return [*_SYSTEM_PROPERTIES, *(f for f in fields if f not in dropped)]


def check_properties(names: Sequence[str], available: Sequence[str], layer: str) -> tuple[str, ...]:
    """``properties=`` validated against a layer's properties."""
    unknown = [n for n in names if n not in available]
    if unknown:
        raise InvalidQueryError(f"unknown propert{'y' if len(unknown) == 1 else 'ies'} "
                                f"{', '.join(repr(u[:60]) for u in unknown[:5])} in properties; {layer} has: "
                                f"{', '.join(available)}")
    return tuple(dict.fromkeys(names))


@dataclass
class Encoded:
    """Features ready to write: ids, masked properties and geometries in the output CRS."""

    ids: list[str]
    properties: list[dict[str, object]]
    geoms: NDArray[np.object_]
    kind: str  # the layer's geometry kind


def _properties(rows: Rows, chosen: list[str], extra: Sequence[dict[str, object]] | None) -> list[dict[str, object]]:
    """One dict per row, built in C (``dict(zip(...))``); masks touch only the masked fields."""
    index = {c: i for i, c in enumerate(rows.columns)}
    masks = maskers(rows.spec, rows.unmasked)
    idx = [index[name] for name in chosen]
    getter = itemgetter(*idx) if len(idx) > 1 else (lambda r: (r[idx[0]],)) if idx else (lambda r: ())
    props = [dict(zip(chosen, getter(r), strict=True)) for r in rows.rows]
    active = [(name, fn) for name, fn in masks.items() if fn is not None and name in chosen]
    for p in props:
        for name, fn in active:
            p[name] = fn(p[name])
    if "distance_m" in index:
        d = index["distance_m"]
        for p, r in zip(props, rows.rows, strict=True):
            p["distance_m"] = round(r[d], 3)
    if extra is not None:
        for p, e in zip(props, extra, strict=True):
            p.update(e)
    return props


def prepare(rows: Rows, crs: TwinCRS, properties: Sequence[str] | None = None, *, axis_order: bool = True,
            extra: Sequence[dict[str, object]] | None = None) -> Encoded:
    """Decode and mask rows; ``axis_order`` writes coordinates in the CRS's own order (JSON, HTML)."""
    spec = rows.spec
    dropped = [k for k, v in maskers(spec, rows.unmasked).items() if v is None]
    chosen = property_names(spec.field_names, dropped) if properties is None else list(properties)
    props = _properties(rows, chosen, extra)
    geoms = rows.geometries()
    if not is_default(crs) and len(geoms):
        geoms = geoms_from_lonlat(geoms, crs, axis_order=axis_order)
    return Encoded([r[1] for r in rows.rows], props, geoms, spec.geometry.value)


def _geometry_json(geoms: NDArray[np.object_]) -> list[object]:
    if len(geoms) == 0:
        return []
    types = shapely.get_type_id(geoms)
    if (types == 0).all():
        coords = shapely.get_coordinates(geoms).tolist()
        return [{"type": "Point", "coordinates": c} for c in coords]
    return [orjson.Fragment(s) for s in shapely.to_geojson(geoms)]


def features(enc: Encoded, layer: str | None = None) -> list[dict[str, object]]:
    """GeoJSON Feature objects (geometry as pre-encoded JSON where that is faster)."""
    if layer is not None:
        for props in enc.properties:
            props["layer"] = layer
    return [{"type": "Feature", "id": key, "geometry": g, "properties": props}
            for key, props, g in zip(enc.ids, enc.properties, _geometry_json(enc.geoms), strict=True)]


def geojson_chunks(feats: list[dict[str, object]], tail: dict[str, object], batch: int = 500) -> Iterator[bytes]:
    """A FeatureCollection as byte chunks: features first, then ``tail`` (counts, links)."""
    yield b'{"type":"FeatureCollection","features":['
    for start in range(0, len(feats), batch):
        body = orjson.dumps(feats[start:start + batch])[1:-1]
        yield (b"," if start else b"") + body
    yield b"]," + orjson.dumps(tail)[1:]


def csv_bytes(*parts: Encoded, layers: Sequence[str] | None = None) -> bytes:
    """CSV: the id first, the properties (the union, for several layers), the geometry as WKT last.

    With ``layers`` (one per part) a ``layer`` column comes first. UTF-8 with a BOM, for Excel.
    """
    names = list(dict.fromkeys(n for enc in parts for p in enc.properties[:1] for n in p))
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow([*(["layer"] if layers else []), "id", *names, "wkt"])
    for i, enc in enumerate(parts):
        lead = [layers[i]] if layers else []
        wkt: Sequence[str] | NDArray[np.str_] = (shapely.to_wkt(enc.geoms, rounding_precision=-1)
                                                 if len(enc.geoms) else [])
        for key, props, w in zip(enc.ids, enc.properties, wkt, strict=True):
            writer.writerow([*lead, key, *("" if props.get(n) is None else props.get(n) for n in names), w])
    return buf.getvalue().encode("utf-8-sig")


def geodataframe(enc: Encoded, crs: TwinCRS) -> gpd.GeoDataFrame:
    """A GeoDataFrame for file downloads (x/y order; no CRS recorded for the GCJ-02/BD-09 offsets)."""
    frame = gpd.GeoDataFrame({"id": enc.ids}, geometry=gpd.GeoSeries(enc.geoms), crs=crs.proj if crs.offset is
                             None else None)
    names = list(enc.properties[0]) if enc.properties else []
    for n in names:
        frame[n] = [p.get(n) for p in enc.properties]  # type: ignore[assignment]  # pandas-stubs: no list[object]
    return frame
