"""Work orders (工单), closed in a loop: 派单 (dispatched) → 接单 (accepted) → 处置 (handling) → 办结 (closed).

An order is opened at a place (an alert's, or one an officer picks): the committee holding it is responsible, with
its sub-district and district above it; the ``k`` nearest resources in service are attached with their straight-line
distances. Each step is taken by a user in the responsible chain, in order, with who and when kept; response times
(opened → accepted, opened → closed) are summed per area for 评估评价.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast

import numpy as np
import orjson
import shapely

from twin.errors import InvalidQueryError, NotFoundError, PermissionDeniedError, StepOutOfOrderError
from twin.model.area import Area
from twin.model.filter import Compare, Const, Filter, Prop
from twin.model.query import FeatureQuery, Near
from twin.rules import events
from twin.store import Store
from twin.store.base import TIME_FORMAT, AccessDB, utc_now
from twin.vitals.areas import AreaIndex

#: The steps of an order, in order, with their titles and the action that takes an order to each.
STEPS = ("dispatched", "accepted", "handling", "closed")
STEP_TITLES = {"dispatched": "派单", "accepted": "接单", "handling": "处置", "closed": "办结"}
ACTIONS = {"accept": "accepted", "handle": "handling", "close": "closed"}
#: The farthest a resource is looked for, in metres.
RESOURCE_REACH_M = 5_000.0
COLUMNS = ("id", "alert", "title", "note", "lon", "lat", "committee", "subdistrict", "district", "status",
           "resources", "opened_at", "opened_by", "accepted_at", "accepted_by", "handling_at", "handling_by",
           "closed_at", "closed_by", "log")


@dataclass(frozen=True)
class Resources:
    """Which components an order lists as resources: the ``k`` nearest of ``layer`` whose status is ``status``."""

    layer: str = "hydrant"
    status: str = "in_service"
    k: int = 5


def in_chain(order: dict[str, object], area: Area | None) -> bool:
    """Whether a reader bounded by ``area`` sees the order: the area is its committee, sub-district or district."""
    return area is None or area.key in (order["committee"], order["subdistrict"], order["district"])


class WorkOrders:
    """The store's work orders (kept beside its access tables)."""

    def __init__(self, store: Store, db: AccessDB) -> None:
        self.store = store
        self.db = db

    def open(self, areas: AreaIndex, lon: float, lat: float, title: str, *, by: str, scope: Area | None,
             note: str = "", alert: int | None = None, resources: Resources = Resources()) -> dict[str, object]:
        """Open an order at (lon, lat): its responsible areas found by location, its resources attached."""
        if not (np.isfinite(lon) and np.isfinite(lat)):
            raise InvalidQueryError("a work order needs a finite lon and lat")
        place = int(areas.place(np.array([shapely.Point(lon, lat)], dtype=object))[0])
        if place < 0:
            raise InvalidQueryError(f"({lon:.6f}, {lat:.6f}) lies outside every 居委: no area is responsible for it")
        chain = areas.chain(areas.committees[place])
        levels = {areas.info[k].level: k for k in chain}
        if scope is not None and scope.key not in chain:
            raise PermissionDeniedError(f"({lon:.6f}, {lat:.6f}) lies in {areas.info[chain[0]].name}, outside your "
                                        f"area ({scope.name}): its own officers dispatch it")
        if not title.strip():
            raise InvalidQueryError("a work order needs a title")
        found = self.nearest(resources, lon, lat)
        now = utc_now()
        log = [{"status": "dispatched", "at": now, "by": by, "note": note}]
        with self.db.write() as w:
            rows = w.execute(
                "INSERT INTO {work_orders} (alert, title, note, lon, lat, committee, subdistrict, district, status, "
                "resources, opened_at, opened_by, log) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'dispatched', ?, ?, ?, ?) "
                "RETURNING id", [alert, title.strip()[:500], note[:2000], lon, lat, levels.get("committee"),
                                 levels.get("subdistrict"), levels.get("district"), orjson.dumps(found).decode(),
                                 now, by, orjson.dumps(log).decode()]).rows
            events.record(w, "work_order", int(rows[0][0]), "dispatched", now, by,
                          (levels.get("committee"), levels.get("subdistrict"), levels.get("district")))
        return self.get(int(rows[0][0]), None)

    def nearest(self, resources: Resources, lon: float, lat: float) -> list[dict[str, object]]:
        """The ``k`` nearest resources in the given status, nearest first, with their distances in metres."""
        spec = self.store.catalogue[resources.layer]
        if resources.status not in spec.statuses:
            raise InvalidQueryError(f"{spec.id} has no status {resources.status!r} ({', '.join(spec.statuses)})")
        flt = Filter(Compare("=", Prop("status", "string"), Const(resources.status)))
        radius = 250.0
        while True:
            with self.store.read() as snap:
                rows = snap.select(FeatureQuery(spec.id, filter=flt, near=Near(lon, lat, radius), limit=resources.k))
            if len(rows) >= resources.k or radius >= RESOURCE_REACH_M:
                break
            radius = min(radius * 4, RESOURCE_REACH_M)
        keys, dist, geoms = rows.column("key"), rows.column("distance_m"), rows.geometries()
        return [{"key": str(k), "layer": spec.id, "distance_m": round(float(cast(float, d)), 1),
                 "lon": round(float(shapely.get_x(shapely.point_on_surface(g))), 7),
                 "lat": round(float(shapely.get_y(shapely.point_on_surface(g))), 7)}
                for k, d, g in zip(keys, dist, geoms, strict=True)]

    def get(self, order_id: int, scope: Area | None) -> dict[str, object]:
        rows = self.db.read(f"SELECT {', '.join(COLUMNS)} FROM {{work_orders}} WHERE id = ?", [order_id])
        order = _order(rows[0]) if rows else None
        if order is None or not in_chain(order, scope):  # outside the reader's area: as if it did not exist
            raise NotFoundError(f"no work order {order_id} in your area")
        return order

    def find(self, scope: Area | None, status: tuple[str, ...] = (), limit: int = 500, as_of: str | None = None
             ) -> list[dict[str, object]]:
        """Orders in ``scope``'s chain, newest first; with ``as_of`` (a store time), those opened by then, each at
        the step it had reached then."""
        conds: list[str] = ["1 = 1"]
        params: list[object] = []
        if scope is not None:
            conds.append("(committee = ? OR subdistrict = ? OR district = ?)")
            params += [scope.key] * 3
        if status and as_of is None:
            conds.append("status IN (" + ", ".join("?" * len(status)) + ")")
            params += list(status)
        if as_of is not None:
            conds.append("opened_at <= ?")
            params.append(as_of)
        rows = self.db.read(f"SELECT {', '.join(COLUMNS)} FROM {{work_orders}} WHERE {' AND '.join(conds)} "
                            "ORDER BY id DESC LIMIT ?", [*params, limit])
        found = [_order(r) for r in rows]
        if as_of is None:
            return found
        for order in found:  # the steps taken by then
            steps = [step for step in order["log"] if str(step["at"]) <= as_of]  # type: ignore[attr-defined]
            order["log"] = steps
            order["status"] = steps[-1]["status"]
            order["statusTitle"] = STEP_TITLES[str(order["status"])]
            for later in STEPS[STEPS.index(str(order["status"])) + 1:]:
                order[f"{later}_at"] = order[f"{later}_by"] = None
        return [o for o in found if not status or o["status"] in status]

    def advance(self, order_id: int, action: str, *, by: str, scope: Area | None, note: str = "") -> dict[str, object]:
        """Take an order one step on (``accept``, ``handle``, ``close``), only from the step before."""
        if action not in ACTIONS:
            raise InvalidQueryError(f"unknown action {action!r}; actions are {', '.join(ACTIONS)}")
        target = ACTIONS[action]
        before = STEPS[STEPS.index(target) - 1]
        now = utc_now()
        with self.db.write() as w:
            rows = w.execute(f"SELECT {', '.join(COLUMNS)} FROM {{work_orders}} WHERE id = ?", [order_id]).rows
            order = _order(rows[0]) if rows else None
            if order is None or not in_chain(order, scope):
                raise NotFoundError(f"no work order {order_id} in your area")
            if order["status"] != before:
                now_is = str(order["status"])
                raise StepOutOfOrderError(f"work order {order_id} is {now_is} ({STEP_TITLES[now_is]}): it can be "
                                          f"{target} ({STEP_TITLES[target]}) only once {before}")
            log = [*order["log"], {"status": target, "at": now, "by": by, "note": note[:2000]}]  # type: ignore[misc]
            w.execute(f"UPDATE {{work_orders}} SET status = ?, {target}_at = ?, {target}_by = ?, log = ? "
                      "WHERE id = ? AND status = ?", [target, now, by, orjson.dumps(log).decode(), order_id, before])
            events.record(w, "work_order", order_id, target, now, by,
                          (order["committee"], order["subdistrict"], order["district"]))
        return self.get(order_id, scope)

    def stats(self, areas: AreaIndex, level: str, scope: Area | None) -> list[dict[str, object]]:
        """Per area of ``level`` (within ``scope``): orders opened and closed, and the median minutes from opened
        to accepted and to closed."""
        column = {"district": "district", "subdistrict": "subdistrict", "committee": "committee"}[level]
        per: dict[str, list[dict[str, object]]] = {}
        for order in self.find(scope, limit=1_000_000):
            key = order[column]
            if key is not None:
                per.setdefault(str(key), []).append(order)
        out = []
        for key, orders in sorted(per.items()):
            accept = [_minutes(o["opened_at"], o["accepted_at"]) for o in orders if o["accepted_at"]]
            close = [_minutes(o["opened_at"], o["closed_at"]) for o in orders if o["closed_at"]]
            info = areas.info.get(key)
            out.append({"key": key, "name": info.name if info else key, "level": level, "opened": len(orders),
                        "closed": len(close), "medianMinutesToAccept": _median(accept),
                        "medianMinutesToClose": _median(close)})
        return out


def _order(row: tuple[object, ...]) -> dict[str, object]:
    order = dict(zip(COLUMNS, row, strict=True))
    order["resources"] = orjson.loads(str(order["resources"]))
    order["log"] = orjson.loads(str(order["log"]))
    order["statusTitle"] = STEP_TITLES[str(order["status"])]
    return order


def _minutes(start: object, end: object) -> float:
    a = datetime.strptime(str(start), TIME_FORMAT).replace(tzinfo=UTC)
    b = datetime.strptime(str(end), TIME_FORMAT).replace(tzinfo=UTC)
    return (b - a).total_seconds() / 60


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None
