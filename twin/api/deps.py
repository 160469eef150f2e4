"""Typed query-parameter dependencies: HTTP strings in, validated query value objects out.

Every parameter arrives as text and is checked here or in :mod:`twin.query`; anything wrong is an
:class:`~twin.errors.InvalidQueryError`, which the error table turns into a 400 naming the parameter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Annotated, Literal, cast

import shapely
from fastapi import Path, Query, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from twin.access import Principal
from twin.api.auth import Who
from twin.catalogue import LayerSpec
from twin.crs import TwinCRS
from twin.errors import InvalidQueryError, MaskedFieldError
from twin.model.area import Area
from twin.model.query import DEFAULT_LIMIT, MAX_LIMIT, FeatureQuery, Near, SortKey
from twin.query.cql import parse_filter
from twin.query.crs import SUPPORTED_CRS, resolve_crs, to_lonlat_point
from twin.query.encode import check_properties, property_names
from twin.query.filters import GEOMETRY, check_filter, combine, property_filter, queryables
from twin.query.masking import maskers
from twin.query.model import clamp_limit, parse_bbox, parse_interval
from twin.query.search import MAX_RADIUS, QueryService

_CRS_LIST = ", ".join(SUPPORTED_CRS)

LayerPath = Annotated[str, Path(alias="collectionId", description="Collection (layer) id, such as `hydrant`.")]
FormatParam = Annotated[str | None, Query(description="Output format; overrides the Accept header.")]
CrsParam = Annotated[str | None, Query(description=f"CRS of the response geometries (Part 2). One of: {_CRS_LIST}. "
                                       "`urn:twin:crs:gcj02` and `urn:twin:crs:bd09` are twin extensions.")]
PointCrsParam = Annotated[str | None, Query(alias="point-crs", description="CRS of `near`/`point` (twin extension; "
                                            "default CRS84, lon,lat). Accepts the same CRSs as `crs`.")]


def service(request: Request) -> QueryService:
    return cast(QueryService, request.app.state.service)


def layer_spec(request: Request, layer: str) -> LayerSpec:
    return service(request).catalogue[layer]


def readable_spec(request: Request, layer: str, who: Principal) -> LayerSpec:
    """The layer's spec, once ``who`` is known to be allowed to read it (401/403 otherwise)."""
    spec = layer_spec(request, layer)
    who.check_read(spec.id)
    return spec


def parse_point(text: str, crs: TwinCRS, name: str) -> tuple[float, float]:
    """``x,y`` in ``crs``'s axis order, as lon/lat."""
    parts = str(text).split(",")
    try:
        x, y = (float(p) for p in parts)
    except ValueError:
        raise InvalidQueryError(f"{name} must be two numbers x,y (lon,lat in CRS84), got {text[:60]!r}") from None
    if not (math.isfinite(x) and math.isfinite(y)):
        raise InvalidQueryError(f"{name} must be finite numbers, got {text[:60]!r}")
    return to_lonlat_point(x, y, crs, name)


def parse_sortby(text: str, spec: LayerSpec, unmasked: frozenset[str] = frozenset()) -> tuple[SortKey, ...]:
    cols = queryables(spec, unmasked)
    keys = []
    for term in (t.strip() for t in text.split(",")):
        if not term:
            continue
        ascending = not term.startswith("-")
        name = term.lstrip("+-").strip()
        if name in spec.sensitive_fields and name not in cols:
            raise MaskedFieldError(f"cannot sort {spec.id} by {name!r}: it is personal data (脱敏) that your role "
                                   "sees masked")
        if name not in cols or name == GEOMETRY:
            sortable = ", ".join(c for c in cols if c != GEOMETRY)
            raise InvalidQueryError(f"cannot sort {spec.id} by {name[:60]!r}; sortable: {sortable}")
        keys.append(SortKey(name, ascending))
    return tuple(keys)


def parse_properties(text: str, spec: LayerSpec, unmasked: frozenset[str] = frozenset()) -> tuple[str, ...]:
    dropped = [k for k, v in maskers(spec, unmasked).items() if v is None]
    names = [n.strip() for n in text.split(",") if n.strip()]
    return check_properties(names, property_names(spec.field_names, dropped), spec.id)


@dataclass(frozen=True)
class ItemsRequest:
    """A validated items request: the query, the output CRS and the raw format parameter."""

    query: FeatureQuery
    crs: TwinCRS
    f: str | None


def items_request(
    request: Request,
    who: Who,
    layer: LayerPath,
    bbox: Annotated[str | None, Query(description="minx,miny,maxx,maxy (4 numbers, or 6 with heights) in "
                                      "`bbox-crs` axis order; envelope-exact. minx > maxx crosses the antimeridian.")
                    ] = None,
    bbox_crs: Annotated[str | None, Query(alias="bbox-crs", description="CRS of `bbox` (default CRS84).")] = None,
    datetime: Annotated[str | None, Query(description="Instant or interval (`start/end`, `..` open) on "
                                          "`updated_at`, RFC 3339.")] = None,
    limit: Annotated[int, Query(ge=1, description=f"Page size, 1 to {MAX_LIMIT}; larger values are clamped to "
                                f"{MAX_LIMIT}.", json_schema_extra={"maximum": MAX_LIMIT})] = DEFAULT_LIMIT,
    offset: Annotated[int, Query(ge=0, le=2**62, description="Features to skip (next/prev links set it).")] = 0,
    filter: Annotated[str | None, Query(description="CQL2 filter (Part 3). Twin adds S_DWITHIN(geometry, <geom>, "
                                        "<metres>).")] = None,
    filter_lang: Annotated[Literal["cql2-text", "cql2-json"] | None, Query(
        alias="filter-lang", description="Language of `filter`: cql2-text (default) or cql2-json.")] = None,
    filter_crs: Annotated[str | None, Query(alias="filter-crs", description="CRS of geometries in `filter`.")] = None,
    properties: Annotated[str | None, Query(description="Comma-separated properties to return.")] = None,
    sortby: Annotated[str | None, Query(description="Comma-separated fields, `-` for descending: `-updated_at,id`."
                                        )] = None,
    near: Annotated[str | None, Query(description="Twin extension: lon,lat of a radius search (needs `radius`); "
                                      "adds `distance_m` and sorts nearest first.")] = None,
    radius: Annotated[float | None, Query(description="Twin extension: radius of `near` in metres (max 50000).")
                      ] = None,
    point_crs: PointCrsParam = None,
    area: Annotated[str | None, Query(description="Twin extension: only components meeting this 区, 街道/镇 or 居委 "
                                      "(its location key), within your own area: what an indicator counts there.")
                    ] = None,
    crs: CrsParam = None,
    f: FormatParam = None,
) -> ItemsRequest:
    """Every parameter of ``/collections/{collectionId}/items``, validated, and bounded by what ``who`` may see."""
    spec = readable_spec(request, layer, who)
    unmasked = who.unmasked(spec)
    box = parse_bbox(bbox, resolve_crs(bbox_crs, name="bbox-crs")) if bbox is not None else None
    if bbox is None and bbox_crs is not None:
        resolve_crs(bbox_crs, name="bbox-crs")
    query = FeatureQuery(
        layer=spec.id, bbox=box, datetime=parse_interval(datetime) if datetime is not None else None,
        near=radius_search(near, radius, point_crs), limit=clamp_limit(limit), offset=offset,
        sortby=parse_sortby(sortby, spec, unmasked) if sortby else (),
        properties=parse_properties(properties, spec, unmasked) if properties is not None else None,
        scope=scoped(request, who.area, area), unmasked=unmasked,
    )
    parts = []
    if filter is not None:
        parts.append(check_filter(parse_filter(filter, filter_lang), spec,
                                  resolve_crs(filter_crs, name="filter-crs"), unmasked))
    masked = [k for k in request.query_params if k in spec.sensitive_fields and k not in unmasked]
    if masked:
        raise MaskedFieldError(f"cannot filter {spec.id} on {masked[0]!r}: it is personal data (脱敏) that your "
                               "role sees masked")
    pairs = [(k, v) for k, v in request.query_params.multi_items() if k in property_params(spec, unmasked)]
    if pairs:
        parts.append(property_filter(spec, pairs, unmasked))
    if parts:
        query = replace(query, filter=combine(*parts))
    return ItemsRequest(query, resolve_crs(crs), f)


#: Query parameters of the items operation; a queryable property of the same name cannot be a filter parameter.
ITEMS_PARAMETERS = frozenset({"bbox", "bbox-crs", "datetime", "limit", "offset", "filter", "filter-lang", "filter-crs",
                              "properties", "sortby", "near", "radius", "point-crs", "area", "crs", "f"})


def scoped(request: Request, own: Area | None, key: str | None) -> Area | None:
    """The area a read is bounded by: the reader's own, narrowed to the area ``key`` names when given (never
    wider: what lies outside the reader's area stays outside)."""
    if key is None:
        return own
    asked: Area = request.app.state.gate.areas.get(key)
    if own is None or own.key == asked.key:
        return asked
    return Area(f"{own.key}&{asked.key}", asked.layer, asked.name,
                shapely.intersection(own.geometry, asked.geometry))


def property_params(spec: LayerSpec, unmasked: frozenset[str] = frozenset()) -> list[str]:
    """Queryables that may also be given as ``?name=value`` equality filters."""
    return [n for n in queryables(spec, unmasked) if n != GEOMETRY and n not in ITEMS_PARAMETERS]


def known_parameters(request: Request) -> None:
    """Refuse a query parameter that the operation does not declare, or one given more than once, and any
    parameter holding a NUL character (400).

    OGC API - Features Part 1 (7.14, *query-param-unknown*): an unknown parameter is an error, so a typo such
    as ``?bbx=`` is not silently a query of everything. The items operation also takes the layer's properties
    (``?status=faulty``). Pages hidden from the API definition (the map, sign-in) are left alone.
    """
    for name, value in [*request.query_params.multi_items(), *request.path_params.items()]:
        if "\x00" in name or "\x00" in str(value):  # no text in twin holds one (PostgreSQL refuses it)
            raise InvalidQueryError(f"parameter {name.replace(chr(0), '?')[:60]!r} holds a NUL character (%00)")
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or not route.include_in_schema:
        return
    declared, takes_properties = _declared(route)
    seen: dict[str, int] = {}
    for name, _ in request.query_params.multi_items():
        seen[name] = seen.get(name, 0) + 1
    properties: list[str] = []
    if takes_properties and any(name not in declared for name in seen):
        catalogue, layer = service(request).catalogue, request.path_params.get("collectionId")
        if layer in set(catalogue):  # an unknown layer is the operation's 404
            spec = catalogue[layer]
            properties = property_params(spec, frozenset(spec.sensitive_fields))
    for name, count in seen.items():
        if name not in declared and name not in properties:
            also = f"; or a property of the layer: {', '.join(properties)}" if properties else ""
            raise InvalidQueryError(f"unknown query parameter {name[:60]!r} for {route.path}; the parameters are: "
                                    f"{', '.join(sorted(declared)) or 'none'}{also}")
        if count > 1:
            raise InvalidQueryError(f"query parameter {name[:60]!r} is given {count} times; give it once")


def _declared(route: APIRoute) -> tuple[frozenset[str], bool]:
    """The query parameters ``route`` declares, and whether it takes property parameters (it uses
    :func:`items_request`)."""
    names: set[str] = set()
    calls: set[object] = set()
    stack = [route.dependant]
    while stack:
        dependant: Dependant = stack.pop()
        calls.add(dependant.call)
        names.update(p.alias for p in dependant.query_params)
        stack += dependant.dependencies
    return frozenset(names), items_request in calls


def radius_search(near: str | None, radius: float | None, point_crs: str | None) -> Near | None:
    if near is None and radius is None:
        return None
    if near is None or radius is None:
        raise InvalidQueryError("a radius search needs both near=lon,lat and radius=<metres>")
    if not (math.isfinite(radius) and 0 < radius <= MAX_RADIUS):
        raise InvalidQueryError(f"radius must be more than 0 and at most {MAX_RADIUS:g} metres, not {radius}")
    lon, lat = parse_point(near, resolve_crs(point_crs, name="point-crs"), "near")
    return Near(lon, lat, float(radius))
