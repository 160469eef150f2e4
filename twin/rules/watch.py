"""Rules evaluated and their alerts kept: city-wide once, then on every change that can affect them.

A proximity rule's alerts are its pairs within the distance. After changesets of its layers, only the pairs of the
components they touched are found again (those components against what lies near them now), and compared with the
alerts open for those components: a new pair opens an alert, a pair gone ends one; nothing else is read. An
indicator rule is checked against the indicator's values at its level each time the indicator's sums move.

An alert is opened once per condition: ``open`` → ``acknowledged`` → ``closed``, closed by an officer (the condition
then stays noted until it ends, so it is not raised again meanwhile) or by itself when the condition ends. Each
carries its explanation: the pair, the distance and the geometry of the conflict, and the area it lies in.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np
import orjson
import shapely
from numpy.typing import NDArray
from shapely.geometry import mapping
from shapely.geometry.base import BaseGeometry

from twin.errors import NotFoundError, StepOutOfOrderError
from twin.geodesy import METRES_PER_DEGREE
from twin.model.changes import Position
from twin.model.filter import And, Const, Filter, In, Prop
from twin.model.query import MAX_LIMIT, BBox, FeatureQuery
from twin.rules import events
from twin.rules.proximity import Conflict, conflicts
from twin.rules.spec import Rule, Rules
from twin.store import Snapshot, Store
from twin.store.base import AccessDB, AccessWriter, utc_now
from twin.vitals.service import VitalSigns

#: Past this many changed components since the rule was last evaluated, it is evaluated city-wide instead.
_INCREMENTAL_MAX = 50_000
#: Up to this many changed components, only their alerts are read back (not all the rule's) to compare.
_FEW_KEYS = 500
#: Columns of an alert as read back.
ALERT_COLUMNS = ("id", "rule", "subject", "object", "committee", "subdistrict", "district", "status", "severity",
                 "distance", "geometry", "message", "opened_at", "opened_changeset", "acknowledged_at",
                 "acknowledged_by", "closed_at", "closed_by", "closed_reason", "ended_at")


@dataclass(frozen=True)
class Found:
    """A condition holding now: the pair (or the area, for an indicator rule) and its explanation."""

    subject: str
    object: str
    distance_m: float | None
    geometry: BaseGeometry
    message: str


class Watch:
    """The store's rules and alerts."""

    def __init__(self, store: Store, rules: Rules, db: AccessDB, vitals: VitalSigns) -> None:
        self.store = store
        self.rules = rules
        self.db = db
        self.vitals = vitals

    # -- evaluating ---------------------------------------------------------------------------
    def layers(self) -> set[str]:
        out: set[str] = set()
        for rule in self.rules.values():
            out.update(rule.layers or (self.vitals.indicators[str(rule.spec.indicator)].layer.id,))
        return out

    def sync(self, layer: str | None = None) -> None:
        """Bring the alerts of every rule on ``layer`` (of all rules, by default) up to date; indicator rules read
        their indicators as kept (the follower keeps them just before, ``twin rules sync`` too)."""
        proximity = [r for r in self.rules.values() if r.spec.kind == "proximity" and (layer is None or
                                                                                     layer in r.layers)]
        if proximity:
            self._sync_proximity(proximity)
        for rule in self.rules.values():
            if rule.spec.kind == "indicator":
                ind = self.vitals.indicators[str(rule.spec.indicator)]
                if layer is None or layer == ind.layer.id:
                    self._sync_indicator(rule)

    def _states(self) -> dict[str, tuple[int, str]]:
        return {str(r[0]): (int(r[1]), str(r[2])) for r in self.db.read(
            "SELECT rule, changeset, signature FROM {alert_state}")}

    def _sync_proximity(self, rules: list[Rule]) -> None:
        """Evaluate proximity rules in one snapshot whose reads they share (many rules read the same layers): each
        city-wide when it has never been (or its file changed), else around what changed since it last was."""
        with self.store.exclusive("rules:proximity"):
            states = self._states()
            plans: list[tuple[Rule, list[Found], tuple[set[str], set[str]] | None, int]] = []
            with self.store.read(3600.0) as snap:
                reads = _Reads(snap)
                for rule in rules:
                    last = max(reads.last(layer) for layer in rule.layers)
                    state = states.get(rule.id)
                    if state is not None and state[1] == rule.signature and state[0] >= last:
                        continue
                    changed = None if state is None or state[1] != rule.signature else reads.changed(rule, state[0],
                                                                                                       last)
                    if changed is None:
                        plans.append((rule, _city_wide(reads, rule), None, last))
                    else:
                        plans.append((rule, _around_changed(reads, rule, *changed), changed, last))
            if plans:
                with self.db.write() as w:
                    for rule, found, scope, last in plans:
                        self._apply(w, rule, found, scope, last)

    def city_wide(self, snap: Snapshot, rule: Rule) -> list[Found]:
        """Every pair of the rule as the store holds it now, found afresh."""
        return _city_wide(_Reads(snap), rule)

    def _sync_indicator(self, rule: Rule) -> None:
        spec = rule.spec
        ind = self.vitals.indicators[str(spec.indicator)]
        with self.store.exclusive(f"rules:{rule.id}"):
            reading = self.vitals.read(ind, str(spec.level))
            state = self._states().get(rule.id)
            if state is not None and state == (reading.changeset, rule.signature):
                return
            areas = self.vitals.keeper.areas()
            found = []
            for a in reading.areas:
                if a.value is None or not ((spec.above is not None and a.value > spec.above) or
                                           (spec.below is not None and a.value < spec.below)):
                    continue
                text = spec.message.format(area=a.name, value=f"{round(a.value, 2):g}", unit=ind.spec.unit,
                                           indicator=ind.spec.title_zh)
                found.append(Found(a.key, "", None, areas.simplified(a.key), text))
            with self.db.write() as w:
                self._apply(w, rule, found, None, reading.changeset)

    # -- keeping the alerts -------------------------------------------------------------------
    def _apply(self, w: AccessWriter, rule: Rule, found: list[Found], scope: tuple[set[str], set[str]] | None,
               last: int) -> None:
        """Open alerts for conditions found that have none, end those whose condition is gone (all the rule's when
        ``scope`` is ``None``, else those of the subjects and objects it names)."""
        areas = self.vitals.keeper.areas()
        now = utc_now()
        sql = ("SELECT id, subject, object, status, distance, committee, subdistrict, district FROM {alerts} "
               "WHERE rule = ? AND ended_at IS NULL")
        params: list[object] = [rule.id]
        if scope is not None and len(scope[0]) + len(scope[1]) <= _FEW_KEYS:  # only the alerts of what changed
            keys = [sorted(scope[0]) or [""], sorted(scope[1]) or [""]]
            sql += (f" AND (subject IN ({', '.join('?' * len(keys[0]))}) OR "
                    f"object IN ({', '.join('?' * len(keys[1]))}))")
            params += [*keys[0], *keys[1]]
        active = {(str(r[1]), str(r[2])): (int(r[0]), str(r[3]), r[4], (r[5], r[6], r[7]))
                  for r in w.execute(sql, params).rows}
        holding = {(f.subject, f.object): f for f in found}
        for pair, (alert_id, status, distance, where) in active.items():
            if pair in holding:  # still holding: its explanation follows what moved
                f = holding[pair]
                if distance != f.distance_m:
                    w.execute("UPDATE {alerts} SET distance = ?, geometry = ?, message = ? WHERE id = ?",
                              [f.distance_m, orjson.dumps(mapping(f.geometry)).decode(), f.message, alert_id])
                continue
            if scope is not None and pair[0] not in scope[0] and pair[1] not in scope[1]:
                continue
            if status == "closed":  # closed by hand: the condition's end is noted
                w.execute("UPDATE {alerts} SET ended_at = ? WHERE id = ?", [now, alert_id])
            else:
                w.execute("UPDATE {alerts} SET status = 'closed', closed_at = ?, closed_by = 'twin', "
                          "closed_reason = 'resolved', ended_at = ? WHERE id = ?", [now, now, alert_id])
                events.record(w, "alert", alert_id, "closed", now, "twin", where)
        for pair, f in holding.items():
            if pair in active:
                continue
            point = shapely.point_on_surface(f.geometry) if not f.geometry.is_empty else None
            place = areas.place(np.array([point], dtype=object))[0] if point is not None else -1
            chain = areas.chain(areas.committees[place]) if place >= 0 else []
            if not chain and rule.spec.kind == "indicator":
                chain = areas.chain(f.subject)
            levels = {areas.info[k].level: k for k in chain}
            where = (levels.get("committee"), levels.get("subdistrict"), levels.get("district"))
            new = w.execute("INSERT INTO {alerts} (rule, subject, object, committee, subdistrict, district, status, "
                            "severity, distance, geometry, message, opened_at, opened_changeset) "
                            "VALUES (?, ?, ?, ?, ?, ?, 'open', ?, ?, ?, ?, ?, ?) RETURNING id",
                            [rule.id, f.subject, f.object, *where, rule.spec.severity, f.distance_m,
                             orjson.dumps(mapping(f.geometry)).decode(), f.message, now, last]).rows
            events.record(w, "alert", int(new[0][0]), "open", now, "twin", where)
        w.execute("DELETE FROM {alert_state} WHERE rule = ?", [rule.id])
        w.execute("INSERT INTO {alert_state} (rule, changeset, signature) VALUES (?, ?, ?)",
                  [rule.id, last, rule.signature])

    # -- reading and acting -------------------------------------------------------------------
    def alerts(self, *, rule: str | None = None, status: Sequence[str] = (), area: str | None = None,
               alert_id: int | None = None, as_of: str | None = None, limit: int = 1000) -> list[dict[str, object]]:
        """Alerts, newest first: of a rule, in these statuses, in an area (a committee, sub-district or district
        key: those whose committee lies in it); with ``as_of`` (a store time), those open then, as they were then."""
        conds: list[str] = []
        params: list[object] = []
        if rule is not None:
            conds.append("rule = ?")
            params.append(rule)
        if status and as_of is None:
            conds.append("status IN (" + ", ".join("?" * len(status)) + ")")
            params.extend(status)
        if area is not None:
            conds.append("(committee = ? OR subdistrict = ? OR district = ?)")
            params += [area, area, area]
        if alert_id is not None:
            conds.append("id = ?")
            params.append(alert_id)
        if as_of is not None:
            conds.append("opened_at <= ? AND (closed_at IS NULL OR closed_at > ?)")
            params += [as_of, as_of]
        rows = self.db.read(f"SELECT {', '.join(ALERT_COLUMNS)} FROM {{alerts}} "
                            f"WHERE {' AND '.join(conds) or '1 = 1'} ORDER BY id DESC LIMIT ?", [*params, limit])
        found = [_alert(dict(zip(ALERT_COLUMNS, r, strict=True))) for r in rows]
        if as_of is None:
            return found
        for a in found:  # as it was then: open, or acknowledged by then; its closing still to come
            acknowledged = a["acknowledged_at"] is not None and str(a["acknowledged_at"]) <= as_of
            a["status"] = "acknowledged" if acknowledged else "open"
            if not acknowledged:
                a["acknowledged_at"] = a["acknowledged_by"] = None
            a["closed_at"] = a["closed_by"] = a["closed_reason"] = a["ended_at"] = None
        return [a for a in found if not status or a["status"] in status]

    @staticmethod
    def where(alert: dict[str, object]) -> tuple[float, float]:
        """Where an alert is, for a work order: a point on the geometry that explains it."""
        point = shapely.point_on_surface(shapely.from_geojson(orjson.dumps(alert["geometry"]).decode()))
        return float(shapely.get_x(point)), float(shapely.get_y(point))

    def headline(self, alert: dict[str, object]) -> str:
        """An alert as a work order's title: its rule's, then its message."""
        return f"{self.rules[str(alert['rule'])].spec.title_zh}: {alert['message']}"

    def act(self, alert_id: int, action: str, user: str) -> dict[str, object]:
        """``acknowledge`` an open alert or ``close`` an open or acknowledged one (by hand: ``dismissed``)."""
        now = utc_now()
        with self.db.write() as w:
            rows = w.execute("SELECT status, committee, subdistrict, district FROM {alerts} WHERE id = ?",
                             [alert_id]).rows
            if not rows:
                raise NotFoundError(f"no alert {alert_id}")
            status = str(rows[0][0])
            if action == "acknowledge" and status == "open":
                w.execute("UPDATE {alerts} SET status = 'acknowledged', acknowledged_at = ?, acknowledged_by = ? "
                          "WHERE id = ?", [now, user, alert_id])
            elif action == "close" and status in ("open", "acknowledged"):
                w.execute("UPDATE {alerts} SET status = 'closed', closed_at = ?, closed_by = ?, "
                          "closed_reason = 'dismissed' WHERE id = ?", [now, user, alert_id])
            else:
                raise StepOutOfOrderError(f"alert {alert_id} is {status}: it cannot be {action}d")
            events.record(w, "alert", alert_id, "acknowledged" if action == "acknowledge" else "closed", now, user,
                          (rows[0][1], rows[0][2], rows[0][3]))
        return self.alerts(alert_id=alert_id)[0]


def _alert(row: dict[str, object]) -> dict[str, object]:
    row["geometry"] = orjson.loads(str(row["geometry"])) if row["geometry"] else None
    return row


def _found(rule: Rule, pairs: Iterable[Conflict]) -> list[Found]:
    return [Found(c.subject, c.object, c.distance_m, c.geometry,
                  rule.spec.message.format(subject=c.subject, object=c.object, distance=f"{c.distance_m:.1f}"))
            for c in pairs]


def _page(snap: Snapshot, layer: str, flt: Filter | None, bbox: BBox | None = None
          ) -> tuple[list[str], NDArray[np.object_]]:
    """Keys and geometries of every component of ``layer`` that passes (in ``bbox``), page by page."""
    keys: list[str] = []
    geoms: list[NDArray[np.object_]] = []
    offset = 0
    while True:
        rows = snap.select(FeatureQuery(layer, bbox=bbox, filter=flt, limit=MAX_LIMIT, offset=offset))
        keys += [str(k) for k in rows.column("key")]
        geoms.append(rows.geometries())
        if len(rows) < MAX_LIMIT:
            break
        offset += MAX_LIMIT
    return keys, np.concatenate(geoms) if geoms else np.empty(0, dtype=object)


class _Reads:
    """The reads of one snapshot, kept for the rules evaluated in it: a thousand rules over a few layers read each
    layer (and each neighbourhood of a changed component) once."""

    def __init__(self, snap: Snapshot) -> None:
        self.snap = snap
        self._cache: dict[tuple[object, ...], object] = {}

    def last(self, layer: str) -> int:
        key = ("last", layer)
        if key not in self._cache:
            self._cache[key] = self.snap.last_changeset(layer)
        return cast(int, self._cache[key])

    def page(self, layer: str, flt: Filter | None, bbox: BBox | None = None
             ) -> tuple[list[str], NDArray[np.object_]]:
        key = ("page", layer, flt, bbox)
        if key not in self._cache:
            self._cache[key] = _page(self.snap, layer, flt, bbox)
        return cast(tuple[list[str], NDArray[np.object_]], self._cache[key])

    def touched(self, layer: str, since: int, last: int) -> set[str] | None:
        """Keys of ``layer`` written or ended after ``since`` (``None``: too many to follow one by one)."""
        key = ("touched", layer, since, last)
        if key not in self._cache:
            log_ = self.snap.layer_log(layer, Position(since), last, _INCREMENTAL_MAX + 1)
            too_many = len(log_.written) > _INCREMENTAL_MAX or len(log_.ended) > _INCREMENTAL_MAX
            self._cache[key] = None if too_many else (
                {str(k) for k in log_.written.column("key")} | {str(k) for k in log_.ended.column("key")})
        return cast("set[str] | None", self._cache[key])

    def changed(self, rule: Rule, since: int, last: int) -> tuple[set[str], set[str]] | None:
        """The keys of the rule's subjects and objects touched after ``since`` (``None``: too many)."""
        assert rule.subject is not None and rule.object is not None
        subjects = self.touched(rule.subject[0].id, since, last)
        objects = self.touched(rule.object[0].id, since, last)
        return None if subjects is None or objects is None else (subjects, objects)


def _city_wide(reads: _Reads, rule: Rule) -> list[Found]:
    assert rule.subject is not None and rule.object is not None
    skeys, sgeoms = reads.page(rule.subject[0].id, rule.subject[1])
    okeys, ogeoms = reads.page(rule.object[0].id, rule.object[1])
    return _found(rule, conflicts(skeys, sgeoms, okeys, ogeoms, float(rule.spec.within_m or 0)))


def _keyed(flt: Filter | None, keys: Iterable[str]) -> Filter:
    """``flt`` and ``id IN keys``."""
    among = In(Prop("id", "string"), tuple(Const(k) for k in sorted(keys)))
    return Filter(among if flt is None else And((flt.root, among)), flt.envelopes if flt else ())


def _around(bounds: tuple[float, float, float, float], within_m: float) -> BBox:
    margin = within_m / METRES_PER_DEGREE * 1.02 + 1e-6
    lat = (bounds[1] + bounds[3]) / 2
    dlon = margin / max(np.cos(np.radians(min(abs(lat) + margin, 89.9))), 1e-6)
    return BBox(bounds[0] - dlon, bounds[1] - margin, bounds[2] + dlon, bounds[3] + margin)


def _around_changed(reads: _Reads, rule: Rule, subjects: set[str], objects: set[str]) -> list[Found]:
    """The pairs now holding of the changed subjects (against the objects near them) and of the changed objects
    (against the subjects near them)."""
    assert rule.subject is not None and rule.object is not None
    (slayer, sflt), (olayer, oflt) = rule.subject, rule.object
    within = float(rule.spec.within_m or 0)
    pairs: dict[tuple[str, str], Conflict] = {}
    for key_set, own, other, mine_is_subject in ((subjects, (slayer.id, sflt), (olayer.id, oflt), True),
                                                 (objects, (olayer.id, oflt), (slayer.id, sflt), False)):
        ordered = sorted(key_set)
        for start in range(0, len(ordered), 500):
            keys, geoms = reads.page(own[0], _keyed(own[1], ordered[start:start + 500]))
            for key, geom in zip(keys, geoms, strict=True):
                near_keys, near = reads.page(other[0], other[1], _around(geom.bounds, within))
                one = np.array([geom], dtype=object)
                found = (conflicts([key], one, near_keys, near, within) if mine_is_subject
                         else conflicts(near_keys, near, [key], one, within))
                pairs.update({(c.subject, c.object): c for c in found})
    return _found(rule, [pairs[p] for p in sorted(pairs)])
