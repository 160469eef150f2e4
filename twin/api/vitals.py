"""The city's vital signs (城市体征) over HTTP: ``/indicators`` and ``/indicators/{indicatorId}``."""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from shapely.geometry import mapping

from twin.access import Principal
from twin.api import render
from twin.api.auth import Who
from twin.query.versions import as_of_stamp
from twin.vitals.service import Reading, VitalSigns
from twin.vitals.spec import BAND_TITLES, LEVEL_TITLES, Indicator

router = APIRouter(tags=["Vital signs"])


def vitals(request: Request) -> VitalSigns:
    return request.app.state.vitals  # type: ignore[no-any-return]


def _readable(who: Principal, ind: Indicator) -> Indicator:
    who.check_read(ind.layer.id)  # an indicator tells as much as its layer: only its readers see it (401 / 403)
    return ind


def _describe(request: Request, ind: Indicator, levels: tuple[str, ...]) -> dict[str, object]:
    s = ind.spec
    t = s.thresholds
    return {"id": s.id, "title": s.title_zh, "titleEn": s.title_en, "category": s.category,
            "description": s.description, "layer": s.layer, "filter": s.filter, "measure": s.measure.value,
            "field": s.field, "of": s.of, "unit": s.unit,
            "levels": [lv for lv in s.levels if lv in levels],
            "thresholds": {"attention": t.attention, "warning": t.warning, "higherIsWorse": t.higher_is_worse,
                           "colors": t.colors, "titles": BAND_TITLES},
            "links": [render.link(request.url_for("indicator", indicatorId=s.id), "self", "application/json")]}


@router.get("/indicators", summary="The city's indicators (城市体征) you may read, with their levels and thresholds")
def indicators(request: Request, who: Who) -> Response:
    vs = vitals(request)
    levels = vs.levels_for(who.area)
    who.check_read_any(sorted({i.layer.id for i in vs.indicators.values()}))
    out = [_describe(request, ind, levels) for ind in vs.indicators.values() if who.can_read(ind.layer.id)]
    state = vs.keeper.state()
    for item in out:
        item["changeset"] = state.get(str(item["id"]))
    return render.json_response({"indicators": out, "numberReturned": len(out),
                                 "levels": [{"id": lv, "title": LEVEL_TITLES[lv]} for lv in levels],
                                 "links": [render.link(request.url, "self", "application/json")]})


@router.get("/indicators/{indicatorId}", name="indicator",
            summary="An indicator's value in every area of a level within your area, now or as of a past instant")
def indicator(request: Request, who: Who, indicatorId: str,
              level: Annotated[str | None, Query(description="district (区), subdistrict (街道/镇) or committee "
                                                             "(居委); default: the coarsest you may read")] = None,
              parent: Annotated[str | None, Query(description="Only the areas inside this one (its key): a "
                                                              "drill-down")] = None,
              as_of: Annotated[str | None, Query(description="An instant (RFC 3339, or a date: its end): the "
                                                             "values as they were then")] = None,
              f: Annotated[Literal["json", "geojson"] | None, Query(
                  description="json (default) or geojson (each area with its outline, for a choropleth)")] = None,
              ) -> Response:
    vs = vitals(request)
    ind = _readable(who, vs.indicator(indicatorId))
    level = level or next(lv for lv in vs.levels_for(who.area) if lv in ind.spec.levels)
    moment = as_of_stamp(as_of) if as_of is not None else None
    changeset = None
    if moment is not None:
        with vs.store.read() as snap:
            changeset = snap.log_at(moment)
    reading = vs.read(ind, level, changeset, who.area, parent)
    body = _reading(request, reading, vs)
    if f == "geojson":
        outlines = vs.keeper.areas()
        features = [{"type": "Feature", "id": a["key"], "properties": a,
                     "geometry": mapping(outlines.simplified(str(a["key"])))}
                    for a in body.pop("areas")]  # type: ignore[attr-defined]
        body = {"type": "FeatureCollection", **body, "features": features}
    return render.stamped(render.json_response(body, media_type="application/geo+json" if f == "geojson"
                                               else "application/json"), moment)


def _reading(request: Request, reading: Reading, vs: VitalSigns) -> dict[str, object]:
    ind = reading.indicator
    finer = {"district": "subdistrict", "subdistrict": "committee"}.get(reading.level)
    down = finer if finer is not None and finer in ind.spec.levels else None
    # the links' fixed parts once: a level holds up to ~6,000 areas
    items = f"{request.url_for('items', collectionId=ind.layer.id)}?"
    where = f"&{urlencode({'filter': ind.spec.filter})}" if ind.spec.filter else ""
    base = f"{request.url_for('indicator', indicatorId=ind.id)}?{urlencode({'level': down})}&parent=" if down else ""
    behind, inside = "the components behind the number", f"the {LEVEL_TITLES[down]} inside" if down else ""
    areas: list[dict[str, object]] = []
    for a in reading.areas:
        item = a.as_dict()
        key = quote(a.key)
        links = [{"href": f"{items}area={key}{where}", "rel": "items", "type": "application/geo+json",
                  "title": behind}]
        if down:
            links.append({"href": base + key, "rel": "down", "type": "application/json", "title": inside})
        item["links"] = links
        areas.append(item)
    return {"indicator": ind.id, "title": ind.spec.title_zh, "titleEn": ind.spec.title_en, "unit": ind.spec.unit,
            "measure": ind.spec.measure.value, "level": reading.level, "levelTitle": LEVEL_TITLES[reading.level],
            "changeset": reading.changeset, "numberReturned": len(areas), "areas": areas,
            "links": [render.link(request.url, "self", "application/json")]}
