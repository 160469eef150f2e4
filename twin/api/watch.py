"""Risk rules, alerts and work orders over HTTP: ``/rules``, ``/alerts``, ``/work-orders``.

Everything is bounded by the reader's area: an alert or an order is seen (and acted on) only by users whose area is
its committee, sub-district or district, or who have no area; anything else answers as if it did not exist. Every
act (acknowledging or closing an alert, opening or moving an order), done or refused, is audited.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from twin.access import Principal
from twin.api import render
from twin.api.auth import Who
from twin.api.errors import status_of
from twin.errors import AuthenticationError, InvalidQueryError, NotFoundError, TwinError
from twin.query.versions import as_of_stamp
from twin.rules import events
from twin.rules.orders import ACTIONS, STEP_TITLES, Resources, WorkOrders
from twin.rules.watch import Watch
from twin.vitals.spec import LEVELS

router = APIRouter(tags=["Alerts and work orders"])
RecordId = Annotated[int, Path(ge=1, le=2**62, description="The record's number")]
AsOf = Annotated[str | None, Query(description="An instant (RFC 3339, or a date: its end): as they were then")]


def _watch(request: Request) -> Watch:
    return request.app.state.watch  # type: ignore[no-any-return]


def _orders(request: Request) -> WorkOrders:
    return request.app.state.orders  # type: ignore[no-any-return]


def _named(request: Request, record: dict[str, object]) -> dict[str, object]:
    """An alert or an order with the names of its committee, sub-district and district (as the areas are now)."""
    info = _watch(request).vitals.keeper.areas().info
    for level in ("committee", "subdistrict", "district"):
        found = info.get(str(record.get(level)))
        record[f"{level}Name"] = found.name if found else None
    return record


def _signed_in(who: Principal) -> None:
    if who.anonymous:
        raise AuthenticationError("alerts and work orders need a token")


def _audit(request: Request, who: Principal, action: str, outcome: str, status: int, detail: str) -> None:
    request.app.state.gate.audit.record(action, outcome, user=who.name, role=who.role.name, status=status,
                                        method=request.method, path=str(request.url.path)[:500], detail=detail[:2000])


def _audited(request: Request, who: Principal, action: str, detail: str,
             fn: Callable[[], dict[str, object]]) -> dict[str, object]:
    """``fn()``, audited as done or refused (with why); nothing is changed when it is refused."""
    try:
        done = fn()
    except TwinError as exc:
        _audit(request, who, action, "rejected", status_of(exc)[0], f"{detail}: {exc}")
        raise
    _audit(request, who, action, "ok", 200, detail)
    return done


@router.get("/rules", summary="The risk rules: what raises an alert, how severe, with the text an officer sees")
def rules(request: Request, who: Who) -> Response:
    _signed_in(who)
    out = [{"id": r.id, "title": r.spec.title_zh, "titleEn": r.spec.title_en, "kind": r.spec.kind,
            "severity": r.spec.severity, "message": r.spec.message,
            **({"subject": r.spec.subject.model_dump(), "object": r.spec.object.model_dump(),
                "withinM": r.spec.within_m} if r.spec.kind == "proximity" and r.spec.subject and r.spec.object
               else {"indicator": r.spec.indicator, "level": r.spec.level, "above": r.spec.above,
                     "below": r.spec.below})}
           for r in _watch(request).rules.values()]
    return render.json_response({"rules": out, "numberReturned": len(out)})


def _visible(who: Principal, alert: dict[str, object]) -> bool:
    return who.area is None or who.area.key in (alert["committee"], alert["subdistrict"], alert["district"])


@router.get("/alerts", summary="Alerts in your area, newest first, each with the pair, the distance and the geometry "
                               "that explain it")
def alerts(request: Request, who: Who,
           status: Annotated[str | None, Query(description="Comma-separated: open, acknowledged, closed "
                                                           "(default: open,acknowledged)")] = None,
           rule: Annotated[str | None, Query(description="Only this rule's")] = None,
           f: Annotated[Literal["json", "geojson"] | None, Query(description="json (default) or geojson")] = None,
           as_of: AsOf = None, limit: Annotated[int, Query(ge=1, le=10_000)] = 1000) -> Response:
    _signed_in(who)
    wanted = tuple(s.strip() for s in (status or "open,acknowledged").split(",") if s.strip())
    unknown = set(wanted) - {"open", "acknowledged", "closed"}
    if unknown:
        raise InvalidQueryError(f"unknown alert status {sorted(unknown)[0]!r}; statuses are open, acknowledged, closed")
    moment = as_of_stamp(as_of) if as_of is not None else None
    found = [_named(request, a) for a in _watch(request).alerts(
        rule=rule, status=wanted, area=who.area.key if who.area else None, limit=limit, as_of=moment)]
    if f == "geojson":
        features = [{"type": "Feature", "id": a["id"], "geometry": a["geometry"],
                     "properties": {k: v for k, v in a.items() if k != "geometry"}} for a in found]
        body = {"type": "FeatureCollection", "numberReturned": len(found), "features": features}
        return render.stamped(render.json_response(body, media_type="application/geo+json"), moment)
    return render.stamped(render.json_response({"alerts": found, "numberReturned": len(found)}), moment)


def _events(request: Request, who: Principal, kind: str, after: int, limit: int) -> Response:
    _signed_in(who)
    found, last = events.since(_watch(request).db, kind, after, who.area, limit)
    following = render.link(f"{request.url.path}?after={last}", "next", "application/json")
    return render.json_response({"events": found, "numberReturned": len(found), "next": last, "links": [following]})


EventsAfter = Annotated[int, Query(ge=0, le=2**62, description="The last event already read (0: from the first)")]
EventsLimit = Annotated[int, Query(ge=1, le=10_000)]


@router.get("/alerts/events", summary="Alerts opened, acknowledged and closed in your area, in order, after an event")
def alert_events(request: Request, who: Who, after: EventsAfter = 0, limit: EventsLimit = 1000) -> Response:
    return _events(request, who, "alert", after, limit)


@router.get("/work-orders/events", summary="Work orders' steps in your area's chain, in order, after an event")
def order_events(request: Request, who: Who, after: EventsAfter = 0, limit: EventsLimit = 1000) -> Response:
    return _events(request, who, "work_order", after, limit)


@router.get("/alerts/{alertId}", summary="One alert")
def alert(request: Request, who: Who, alertId: RecordId) -> Response:
    _signed_in(who)
    found = _watch(request).alerts(alert_id=alertId)
    if not found or not _visible(who, found[0]):
        raise NotFoundError(f"no alert {alertId} in your area")
    return render.json_response(_named(request, found[0]))


@router.post("/alerts/{alertId}/{action}", summary="Acknowledge or close an alert")
def act_on_alert(request: Request, who: Who, alertId: RecordId, action: Literal["acknowledge", "close"]) -> Response:
    _signed_in(who)
    watch = _watch(request)

    def act() -> dict[str, object]:
        found = watch.alerts(alert_id=alertId)
        if not found or not _visible(who, found[0]):
            raise NotFoundError(f"no alert {alertId} in your area")
        return _named(request, watch.act(alertId, action, str(who.name)))

    return render.json_response(_audited(request, who, "alert", f"{action} alert {alertId}", act))


#: Text an officer types: no NUL character (no text in twin holds one; PostgreSQL refuses it).
_TEXT = r"^[^\x00]*$"  # Rust regex (pydantic-core): $ is the end of the text


class OrderRequest(BaseModel):
    """A work order to open: from an alert (its place and text), or at a place with a title."""

    alert: int | None = Field(None, ge=1, le=2**62, description="The alert the order handles (its place and text "
                                                                 "are used)")
    lon: float | None = Field(None, ge=-180, le=180)
    lat: float | None = Field(None, ge=-90, le=90)
    title: str | None = Field(None, max_length=500, pattern=_TEXT)
    note: str = Field("", max_length=2000, pattern=_TEXT)
    resources: str = Field("hydrant", max_length=100, description="The layer whose nearest in-service components "
                                                                  "are attached")
    k: int = Field(5, ge=0, le=50)


@router.post("/work-orders", status_code=201, summary="Open a work order (派单): the responsible 居委 is found by "
                                                      "location, the nearest resources attached")
def open_order(request: Request, who: Who, body: Annotated[OrderRequest, Body()]) -> Response:
    _signed_in(who)
    watch, orders = _watch(request), _orders(request)

    def open_() -> dict[str, object]:
        lon, lat, title = body.lon, body.lat, body.title
        if body.alert is not None:
            found = watch.alerts(alert_id=body.alert)
            if not found or not _visible(who, found[0]):
                raise NotFoundError(f"no alert {body.alert} in your area")
            (lon, lat), title = watch.where(found[0]), title or watch.headline(found[0])
        if lon is None or lat is None or title is None:
            raise InvalidQueryError("give an alert, or lon, lat and a title")
        who.check_read(body.resources)
        return orders.open(watch.vitals.keeper.areas(), lon, lat, title, by=str(who.name), scope=who.area,
                           note=body.note, alert=body.alert, resources=Resources(body.resources, k=body.k))

    done = _audited(request, who, "work_order", f"open a work order (alert {body.alert})", open_)
    return render.json_response(_named(request, done), status=201)


@router.get("/work-orders", summary="Work orders in your area's chain, newest first")
def list_orders(request: Request, who: Who,
                status: Annotated[str | None, Query(description="Comma-separated: dispatched, accepted, handling, "
                                                                "closed (default: all)")] = None,
                as_of: AsOf = None) -> Response:
    _signed_in(who)
    wanted = tuple(s.strip() for s in (status or "").split(",") if s.strip())
    unknown = set(wanted) - set(STEP_TITLES)
    if unknown:
        raise InvalidQueryError(f"unknown status {sorted(unknown)[0]!r}; statuses are {', '.join(STEP_TITLES)}")
    moment = as_of_stamp(as_of) if as_of is not None else None
    found = [_named(request, o) for o in _orders(request).find(who.area, wanted, as_of=moment)]
    return render.stamped(render.json_response({"workOrders": found, "numberReturned": len(found)}), moment)


@router.get("/work-orders/stats", summary="评估评价: per area, orders opened and closed, median minutes to accept "
                                          "and to close")
def order_stats(request: Request, who: Who,
                level: Annotated[str, Query(description="district, subdistrict or committee")] = "district"
                ) -> Response:
    _signed_in(who)
    if level not in LEVELS:
        raise InvalidQueryError(f"unknown level {level!r}; levels are {', '.join(LEVELS)}")
    areas = _watch(request).vitals.keeper.areas()
    return render.json_response({"level": level, "areas": _orders(request).stats(areas, level, who.area)})


@router.get("/work-orders/{orderId}", summary="One work order, with its steps")
def get_order(request: Request, who: Who, orderId: RecordId) -> Response:
    _signed_in(who)
    return render.json_response(_named(request, _orders(request).get(orderId, who.area)))


@router.post("/work-orders/{orderId}/{action}", summary="Take a work order one step on: accept (接单), handle (处置), "
                                                        "close (办结)")
def advance_order(request: Request, who: Who, orderId: RecordId, action: str,
                  note: Annotated[str, Body(embed=True, max_length=2000, pattern=_TEXT)] = "") -> Response:
    _signed_in(who)
    if action not in ACTIONS:
        raise NotFoundError(f"no action {action!r}; actions are {', '.join(ACTIONS)}")
    done = _audited(request, who, "work_order", f"{action} work order {orderId}",
                    lambda: _named(request, _orders(request).advance(orderId, action, by=str(who.name), scope=who.area,
                                                                     note=note)))
    return render.json_response(done)

