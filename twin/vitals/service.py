"""The city's vital signs as readers ask for them: an indicator's value in every area of a level (or under one
area), now or as of a past changeset, within the reader's area, with its band (正常 / 关注 / 预警) and colour.

A follower thread brings the kept sums up to date after every changeset the store's feed publishes (any writer's);
the deployment's processes take turns, so each change is counted once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from twin.errors import InvalidQueryError, NotFoundError, NotReadyError, PermissionDeniedError
from twin.model.area import Area
from twin.store import Changeset, Store
from twin.store.base import AccessDB
from twin.vitals.areas import AreaIndex
from twin.vitals.keeper import Keeper
from twin.vitals.spec import BAND_TITLES, LEVEL_TITLES, LEVELS, Indicator, Indicators

log = logging.getLogger("twin.vitals")


@dataclass(frozen=True)
class AreaValue:
    """One area's value of an indicator."""

    key: str
    level: str
    name: str
    parent: str | None
    value: float | None
    band: str | None
    color: str | None
    n: float
    v: float
    d: float
    km2: float

    def as_dict(self) -> dict[str, object]:
        return {"key": self.key, "level": self.level, "name": self.name, "parent": self.parent,
                "value": None if self.value is None else round(self.value, 6), "band": self.band,
                "bandTitle": BAND_TITLES.get(self.band or ""), "color": self.color, "count": round(self.n, 6),
                "sum": round(self.v, 6), "whole": round(self.d, 6), "km2": round(self.km2, 6)}


@dataclass(frozen=True)
class Reading:
    """An indicator's values at one level, as of a changeset."""

    indicator: Indicator
    level: str
    changeset: int
    areas: list[AreaValue]


class VitalSigns:
    """The indicators of a store: kept up to date from its feed, read per level within a reader's area."""

    def __init__(self, store: Store, indicators: Indicators, db: AccessDB, follow: bool = True) -> None:
        self.store = store
        self.indicators = indicators
        self.keeper = Keeper(store, indicators, db)
        self._pending: set[str] = set()
        self._wake = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._watched = {*self.keeper.layers(), *LEVELS}
        self._after: list[Callable[[str], None]] = []
        self._follow_on = follow
        if len(indicators):
            self._catch_up(self.keeper.layers())

    def close(self) -> None:
        with self._wake:
            self._closed = True
            self._wake.notify_all()
        self.store.feed.unsubscribe(self._on_changeset)
        if self._thread is not None:
            self._thread.join(timeout=60)

    # -- following ----------------------------------------------------------------------------
    def also(self, layers: Iterable[str], after: Callable[[str], None]) -> None:
        """Follow ``layers`` too, and call ``after(layer)`` once the indicators have followed a change of it (what
        depends on them, such as rules, goes next)."""
        self._watched.update(layers)
        self._after.append(after)
        self._catch_up(layers)

    def _catch_up(self, layers: Iterable[str]) -> None:
        """Have the follower (started with the first layers to follow) bring ``layers`` up to date: what changed
        while nobody served is caught up with, then every changeset the feed publishes."""
        if not self._follow_on:
            return
        with self._wake:
            self._pending.update(layers)
            self._wake.notify()
            if self._thread is None:
                self.store.feed.subscribe(self._on_changeset)
                self._thread = threading.Thread(target=self._follow, name="twin-vitals", daemon=True)
                self._thread.start()

    def _on_changeset(self, cs: Changeset) -> None:
        if cs.layer not in self._watched:
            return
        with self._wake:
            self._pending.update(self._watched - set(LEVELS) if cs.layer in LEVELS else [cs.layer])
            self._wake.notify()

    def _follow(self) -> None:
        while True:
            with self._wake:
                while not self._pending and not self._closed:
                    self._wake.wait()
                if self._closed:
                    return
                layer = min(self._pending)
                self._pending.discard(layer)
            try:
                self.keeper.sync(layer)
                for after in self._after:
                    after(layer)
            except Exception:  # the change is committed; the next one (or a restart) catches up
                log.exception("following the changes of %s failed", layer)

    def sync(self) -> None:
        """Bring every indicator up to date now (what the follower does in the background)."""
        self.keeper.sync()

    # -- reading ------------------------------------------------------------------------------
    def indicator(self, indicator_id: str) -> Indicator:
        try:
            return self.indicators[indicator_id]
        except KeyError:
            raise NotFoundError(f"no indicator {indicator_id!r}; GET /indicators lists them") from None

    def levels_for(self, scope: Area | None) -> tuple[str, ...]:
        """The levels a reader scoped to ``scope`` may read: theirs and the finer ones."""
        if scope is None or scope.layer not in LEVELS:
            return LEVELS
        return LEVELS[LEVELS.index(scope.layer):]

    def read(self, indicator: Indicator, level: str, changeset: int | None = None, scope: Area | None = None,
             parent: str | None = None) -> Reading:
        """The indicator's value in each area of ``level`` within ``scope`` (and under ``parent``), as of
        ``changeset`` (the latest kept by default)."""
        if level not in LEVELS:
            raise InvalidQueryError(f"unknown level {level!r}; levels are {', '.join(LEVELS)}")
        if level not in indicator.spec.levels:
            raise InvalidQueryError(f"{indicator.id} is kept at {', '.join(indicator.spec.levels)}, not {level}")
        if level not in self.levels_for(scope):
            assert scope is not None
            raise PermissionDeniedError(f"your area is a {LEVEL_TITLES[scope.layer]} ({scope.name}); "
                                        f"{LEVEL_TITLES[level]} values reach beyond it")
        areas = self.keeper.areas()
        if parent is not None and parent not in areas.info:
            raise InvalidQueryError(f"parent {parent!r} is not a district, sub-district or committee key")
        kept = self.keeper.kept(indicator.id, changeset)
        if kept is None:
            raise NotReadyError(f"{indicator.id} is being computed for the first time (a server does it in the "
                                "background once it starts; `twin vitals sync` does it by hand): retry shortly")
        sums = _roll_up(areas, kept.sums, level)
        values: list[AreaValue] = []
        for key in areas.by_level[level]:
            chain = areas.chain(key)
            if scope is not None and scope.key not in chain:
                continue
            if parent is not None and parent not in chain:
                continue
            info = areas.info[key]
            n, v, d = sums.get(key, (0.0, 0.0, 0.0))
            value = indicator.value(n, v, d, info.km2)
            band = indicator.spec.thresholds.band(value)
            values.append(AreaValue(key, level, info.name, info.parent, value, band,
                                    None if band is None else indicator.spec.thresholds.colors[band], n, v, d,
                                    info.km2))
        return Reading(indicator, level, kept.changeset, values)


def _roll_up(areas: AreaIndex, sums: dict[str, tuple[float, float, float]], level: str
             ) -> dict[str, tuple[float, float, float]]:
    """Committees' sums added up to the areas of ``level`` they lie in."""
    if level == "committee":
        return sums
    out: dict[str, list[float]] = {}
    for committee, (n, v, d) in sums.items():
        target = areas.level_of(committee, level)
        if target is None:
            continue
        acc = out.setdefault(target, [0.0, 0.0, 0.0])
        acc[0] += n
        acc[1] += v
        acc[2] += d
    return {k: (a[0], a[1], a[2]) for k, a in out.items()}
