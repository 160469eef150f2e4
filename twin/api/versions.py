"""A component's past over HTTP: ``/collections/{layer}/items/{key}/versions``, and ``as_of`` on an item."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from twin.access import Principal
from twin.api import render
from twin.api.auth import Who
from twin.api.deps import LayerPath, readable_spec, service
from twin.api.negotiation import MEDIA_TYPES
from twin.catalogue import LayerSpec
from twin.crs import TwinCRS
from twin.errors import FeatureNotFoundError
from twin.model.query import MAX_LIMIT
from twin.query import encode
from twin.query.crs import CRS84
from twin.query.model import clamp_limit, parse_interval
from twin.query.versions import History, as_of_stamp

router = APIRouter(tags=["History"])
AsOf = Annotated[str | None, Query(description="An instant (RFC 3339, or a date: its end): the feature as it was "
                                               "then, from its history")]


def history(request: Request) -> History:
    return request.app.state.history  # type: ignore[no-any-return]


def _checked(request: Request, who: Principal, layer: str, key: str) -> LayerSpec:
    spec = readable_spec(request, layer, who)
    if service(request).store.layer_of(key) != spec.id:
        raise FeatureNotFoundError(key)
    return spec


@router.get("/collections/{collectionId}/items/{key}/versions",
            summary="Every version of a feature: who wrote it, when it was current, what it changed")
def versions(request: Request, who: Who, layer: LayerPath, key: str) -> Response:
    spec = _checked(request, who, layer, key)
    found = history(request).versions(spec.id, key, who)
    features = encode.features(encode.prepare(found.rows, CRS84))
    out = [{"version": m.version, "changeset": m.changeset, "author": m.author, "validFrom": m.valid_from,
            "validTo": m.valid_to, "ended": m.ended, "changed": changed, "feature": f}
           for m, changed, f in zip(found.meta, found.changed(), features, strict=True)]
    item = request.url_for("item", collectionId=spec.id, key=key)
    return render.json_response({"key": key, "layer": spec.id, "versions": out,
                                 "links": [render.link(request.url, "self", "application/json"),
                                           render.link(item, "item", MEDIA_TYPES["geojson"], "as it is now")]})


@router.get("/collections/{collectionId}/items/{key}/reports",
            summary="A component's status reports: when each was observed, when twin recorded it, what it said")
def reports(request: Request, who: Who, layer: LayerPath, key: str,
            datetime: Annotated[str | None, Query(description="Only reports observed in this instant or interval "
                                                            "(RFC 3339; `start/end`, `..` for an open end)")] = None,
            limit: Annotated[int, Query(ge=1, description=f"Most reports, newest observation first (clamped to "
                                                          f"{MAX_LIMIT})", json_schema_extra={"maximum": MAX_LIMIT})
                             ] = 100) -> Response:
    spec = _checked(request, who, layer, key)
    when = None if datetime is None else parse_interval(datetime)
    found = history(request).reports(spec.id, key, who, when, clamp_limit(limit))
    out = [{"observedAt": r.observed_at, "recordedAt": r.recorded_at, "status": r.status, "values": r.values,
            "source": r.source, "author": r.author, "changeset": r.changeset, "applied": r.applied} for r in found]
    item = request.url_for("item", collectionId=spec.id, key=key)
    return render.json_response({"key": key, "layer": spec.id, "numberReturned": len(out), "reports": out,
                                 "links": [render.link(request.url, "self", "application/json"),
                                           render.link(item, "item", MEDIA_TYPES["geojson"], "as it is now")]})


def item_as_of(request: Request, who: Principal, spec: LayerSpec, key: str, as_of: str, crs: TwinCRS) -> Response:
    """The item as it was at ``as_of``: the version then current, with when it was (a 404 if it did not exist)."""
    moment = as_of_stamp(as_of)
    found = history(request).at(spec.id, key, who, moment)
    meta = found.meta[0]
    feature = encode.features(encode.prepare(found.rows, crs))[0]
    feature.update({"version": meta.version, "validFrom": meta.valid_from, "validTo": meta.valid_to,
                    "links": [render.link(request.url, "self", MEDIA_TYPES["geojson"]),
                              render.link(request.url_for("versions", collectionId=spec.id, key=key), "version-history",
                                          "application/json", "every version")]})
    return render.json_response(feature, media_type=MEDIA_TYPES["geojson"],
                                headers={**render.crs_headers(crs), "Twin-As-Of": moment})
