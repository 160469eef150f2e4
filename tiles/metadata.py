"""Documents describing the tiles: TileJSON 3.0.0 and the OGC API - Tiles tile matrix set and tileset documents.

Pure functions of the catalogue, the caller's view, the extents and the base URL the client used; the HTTP
layer only serialises them.
"""

from __future__ import annotations

from typing import Any

from tiles.aggregate import Aggregates
from tiles.grid import MAX_ZOOM, TMS, TMS_ID
from tiles.view import MASKED, View
from twin.catalogue import FieldType, GeometryKind, LayerSpec

MVT_MEDIA_TYPE = "application/vnd.mapbox-vector-tile"
#: Highest zoom advertised to map clients; they over-zoom beyond it (tiles exist up to the matrix set's last).
ADVERTISED_MAX_ZOOM = 18
MERCATOR_CRS = "http://www.opengis.net/def/crs/EPSG/0/3857"
REL_TILING_SCHEME = "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme"
_TILEJSON_TYPES = {"integer": "Number", "number": "Number", "boolean": "Boolean"}
_JSON_TYPES = {FieldType.integer: "integer", FieldType.float: "number", FieldType.boolean: "boolean"}
_DIMENSION = {GeometryKind.point: 0, GeometryKind.line: 1, GeometryKind.polygon: 2}
Box = tuple[float, float, float, float]


def tile_fields(spec: LayerSpec, aggregates: Aggregates,
                unmasked: frozenset[str] = frozenset()) -> dict[str, tuple[str, str]]:
    """Properties a layer's tiles carry for a caller seeing ``unmasked`` as stored: name -> (JSON type,
    description). Personal fields masked by dropping them are left out for everyone else."""
    masks = {name for name, rule in spec.sensitive_fields.items() if rule.value == "drop" and name not in unmasked}
    out = {"key": ("string", "位置编码 location key"), "status": ("string", "状态 status")}
    for f in spec.fields:
        if f.name not in masks:
            out[f.name] = (_JSON_TYPES.get(f.type, "string"), f.title_zh or f.description or f.name)
    plan = aggregates.plan(spec.id)
    if plan is not None:
        out["count"] = ("integer", f"aggregate cells below zoom {plan.min_zoom}: components in the cell")
        for status in spec.statuses:
            out[f"count_{status}"] = ("integer", f"aggregate cells: components with status {status}")
        if plan.kind == "line":
            out["length_m"] = ("number", "aggregate cells: total length of the cell's components, metres")
        if plan.kind == "polygon":
            out["area_m2"] = ("number", "aggregate cells: total area of the cell's components, m²")
    return out


def tilejson(name: str, specs: list[LayerSpec], aggregates: Aggregates, tiles_url: str, bounds: Box,
             view: View = MASKED) -> dict[str, Any]:
    """A TileJSON 3.0.0 document for a tile set of ``specs`` served at ``tiles_url`` ({z}/{x}/{y} template),
    listing the fields ``view`` sees."""
    layers = []
    for spec in specs:
        fields = {k: _TILEJSON_TYPES.get(t, "String")
                  for k, (t, _) in tile_fields(spec, aggregates, view.fields(spec.id)).items()}
        layers.append({"id": spec.id, "description": f"{spec.title_zh} {spec.title_en}", "minzoom": 0,
                       "maxzoom": ADVERTISED_MAX_ZOOM, "fields": fields})
    centre = ((bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2)
    return {
        "tilejson": "3.0.0", "name": name, "version": "1.0.0", "scheme": "xyz", "tiles": [tiles_url],
        "minzoom": 0, "maxzoom": ADVERTISED_MAX_ZOOM, "bounds": list(bounds), "center": [*centre, 10],
        "description": "twin vector tiles: components at and above each layer's min zoom, aggregate cells "
                       "(count, count_<status>, length_m / area_m2) below it",
        "attribution": "twin 上海城市数字孪生", "vector_layers": layers,
    }


def tile_matrix_sets(base: str) -> dict[str, Any]:
    return {"tileMatrixSets": [{"id": TMS_ID, "title": TMS.title or "Google Maps Compatible for the World",
                                "uri": str(TMS.uri), "links": [
                                    {"rel": "self", "type": "application/json",
                                     "href": f"{base}/tileMatrixSets/{TMS_ID}"}]}],
            "links": [{"rel": "self", "type": "application/json", "href": f"{base}/tileMatrixSets"}]}


def tile_matrix_set() -> dict[str, Any]:
    """The WebMercatorQuad definition (OGC Two Dimensional Tile Matrix Set 2.0), from morecantile."""
    return TMS.model_dump(mode="json", by_alias=True, exclude_none=True)


def _tile_links(base: str, layer: str) -> list[dict[str, Any]]:
    here = f"{base}/collections/{layer}/tiles/{TMS_ID}"
    return [
        {"rel": "self", "type": "application/json", "href": here},
        {"rel": REL_TILING_SCHEME, "type": "application/json", "href": f"{base}/tileMatrixSets/{TMS_ID}"},
        {"rel": "item", "type": MVT_MEDIA_TYPE, "templated": True, "href": here + "/{tileMatrix}/{tileRow}/{tileCol}"},
        {"rel": "describedby", "type": "application/json", "title": "TileJSON", "href": here + "/tilejson.json"},
    ]


def tilesets(base: str, spec: LayerSpec) -> dict[str, Any]:
    """``/collections/{layer}/tiles``: the layer's one vector tileset."""
    links = _tile_links(base, spec.id)
    return {
        "links": [{"rel": "self", "type": "application/json", "href": f"{base}/collections/{spec.id}/tiles"}],
        "tilesets": [{"title": f"{spec.title_zh} {spec.title_en}", "dataType": "vector", "crs": MERCATOR_CRS,
                      "tileMatrixSetURI": str(TMS.uri), "links": [links[0], links[1], links[2]]}],
    }


def tileset(base: str, spec: LayerSpec, aggregates: Aggregates, bounds: Box, view: View = MASKED) -> dict[str, Any]:
    """``/collections/{layer}/tiles/WebMercatorQuad``: the tileset's metadata (OGC API - Tiles, tileset) as
    ``view`` sees it."""
    props = {k: {"type": t, "description": d}
             for k, (t, d) in tile_fields(spec, aggregates, view.fields(spec.id)).items()}
    layer: dict[str, Any] = {"id": spec.id, "title": f"{spec.title_zh} {spec.title_en}", "dataType": "vector",
             "minTileMatrix": "0", "maxTileMatrix": str(MAX_ZOOM),
             "propertiesSchema": {"type": "object", "properties": props}}
    if spec.geometry in _DIMENSION:
        layer["geometryDimension"] = _DIMENSION[spec.geometry]
    return {
        "title": f"{spec.title_zh} {spec.title_en}", "dataType": "vector", "crs": MERCATOR_CRS,
        "tileMatrixSetURI": str(TMS.uri), "layers": [layer],
        "boundingBox": {"lowerLeft": [bounds[0], bounds[1]], "upperRight": [bounds[2], bounds[3]],
                        "crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84"},
        "centerPoint": {"coordinates": [(bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2],
                        "tileMatrix": "12", "crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84"},
        "links": _tile_links(base, spec.id),
    }
