"""A plausible, seeded stream of events over the demo twin's real streets, for the live map, the replay and the
benchmarks (``twin simulate``, ``twin up --live``).

One tick is one second of city time. Around a seeded focus in the twin (a few kilometres of central streets):
- a rainstorm: a flood front grows from a seeded point and recedes; the drainage pipes it reaches are reported
  ``faulty`` (flooded), and ``in_service`` again once it has passed;
- hydrant pressure: hydrants report their static pressure; now and then one drops below 0.1 MPa (``faulty``) and
  is repaired a few minutes later;
- street-light circuits: a whole circuit fails at once and is repaired together;
- construction sites: an active site stops work (``suspended``) and resumes.

Events depend only on the seed and on the components in the focus (read once, in key order): the same seed over
the same twin gives the same events, tick by tick.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import geopandas as gpd
import numpy as np
import orjson

from twin.access.policy import load_policy
from twin.access.principal import local
from twin.geodesy import METRES_PER_DEGREE
from twin.model.reports import Reported
from twin.status import Intake
from twin.store import Store

#: Half the side of the focus, in metres.
FOCUS_M = 2_000
#: Ticks the storm lasts, and the farthest its front reaches (metres).
STORM_TICKS, STORM_REACH_M = 600, 1_200


@dataclass(frozen=True)
class Event:
    """One report to make: at ``tick``, ``key`` is observed in ``status`` (and ``values``), by ``source``."""

    tick: int
    key: str
    status: str
    source: str
    values: dict[str, float] = field(default_factory=dict)


@dataclass
class Focus:
    """The components the simulation drives (all in one box of the twin)."""

    centre: tuple[float, float]
    drains: gpd.GeoDataFrame
    hydrants: gpd.GeoDataFrame
    lights: gpd.GeoDataFrame
    sites: gpd.GeoDataFrame


def focus(store: Store, seed: int) -> Focus:
    """A seeded box of the twin around its busiest layer's components: what the simulation drives."""
    rng = np.random.default_rng(seed)
    extent = store.extent("hydrant") or store.extent("street_light")
    if extent is None:
        raise ValueError("the twin has no hydrants or street lights to drive; build one with `twin demo`")
    # a point of the middle half of the extent: central streets, not the edge of the map
    x = extent[0] + (0.25 + 0.5 * rng.random()) * (extent[2] - extent[0])
    y = extent[1] + (0.25 + 0.5 * rng.random()) * (extent[3] - extent[1])
    d = FOCUS_M / METRES_PER_DEGREE
    box = (x - d / math.cos(math.radians(y)), y - d, x + d / math.cos(math.radians(y)), y + d)

    def read(layer: str) -> gpd.GeoDataFrame:
        return store.features(layer, bbox=box).sort_values("key").reset_index(drop=True)

    pipes = read("pipeline")
    return Focus((x, y), pipes[pipes["kind"] == "drainage"].reset_index(drop=True), read("hydrant"),
                 read("street_light"), read("construction_site"))


def events(where: Focus, seed: int) -> Iterator[list[Event]]:
    """The events of each tick, for ever (the storm comes back every ``2 * STORM_TICKS`` ticks)."""
    rng = np.random.default_rng(seed + 1)
    cx, cy = where.centre
    drains = where.drains
    if len(drains):
        mid = drains.geometry.representative_point()
        dist = np.hypot((mid.x.to_numpy() - cx) * math.cos(math.radians(cy)), mid.y.to_numpy() - cy) * \
            METRES_PER_DEGREE
    else:
        dist = np.zeros(0)
    flooded = np.zeros(len(drains), dtype=bool)
    repairs: dict[int, list[Event]] = {}
    circuits = sorted({c for c in where.lights.get("circuit", []) if isinstance(c, str)})
    active = [str(k) for k, s in zip(where.sites.get("key", []), where.sites.get("status", []), strict=True)
              if s == "active"]
    tick = 0
    while True:
        out = repairs.pop(tick, [])
        phase = tick % (2 * STORM_TICKS)
        reach = STORM_REACH_M * math.sin(math.pi * phase / STORM_TICKS) if phase < STORM_TICKS else 0.0
        now = dist < reach
        for i in np.flatnonzero(now != flooded):
            out.append(Event(tick, str(drains.key.iloc[i]), "faulty" if now[i] else "in_service", "排水监测"))
        flooded = now
        for i in rng.choice(len(where.hydrants), min(3, len(where.hydrants)), replace=False):
            key = str(where.hydrants.key.iloc[i])
            if rng.random() < 0.05:  # a pressure drop, repaired in 2 to 6 minutes
                out.append(Event(tick, key, "faulty", "压力传感器", {"pressure": round(rng.uniform(0.02, 0.09), 3)}))
                later = tick + int(rng.integers(120, 360))
                repairs.setdefault(later, []).append(Event(later, key, "in_service", "维修班组",
                                                           {"pressure": round(rng.uniform(0.28, 0.4), 3)}))
            else:
                pressure = round(rng.uniform(0.25, 0.45), 3)
                out.append(Event(tick, key, "in_service", "压力传感器", {"pressure": pressure}))
        if circuits and rng.random() < 0.01:  # a circuit fails, repaired in 3 to 10 minutes
            circuit = circuits[int(rng.integers(len(circuits)))]
            keys = [str(k) for k in where.lights.key[where.lights.circuit == circuit]]
            later = tick + int(rng.integers(180, 600))
            out += [Event(tick, k, "faulty", "路灯监控") for k in keys]
            repairs.setdefault(later, []).extend(Event(later, k, "in_service", "路灯监控") for k in keys)
        if active and rng.random() < 0.002:  # a site stops work for 5 to 15 minutes
            key = active[int(rng.integers(len(active)))]
            later = tick + int(rng.integers(300, 900))
            out.append(Event(tick, key, "suspended", "工地巡查"))
            repairs.setdefault(later, []).append(Event(later, key, "active", "工地巡查"))
        yield _last_per_key(out)
        tick += 1


def _last_per_key(found: list[Event]) -> list[Event]:
    """One event per component and tick (the last one said), in the order first said."""
    last: dict[str, Event] = {}
    for e in found:
        last[e.key] = e
    return list(last.values())


@dataclass
class Run:
    """What a simulation did: ticks run, reports kept and refused."""

    ticks: int = 0
    kept: int = 0
    refused: int = 0


def simulate(store: Store, seed: int, *, ticks: int | None = None, speed: float = 1.0, author: str = "simulator",
             stop: threading.Event | None = None, on_tick: Callable[[int, Reported], None] | None = None) -> Run:
    """Send each tick's events to ``store`` as status reports (observed now), ``speed`` ticks a second, for
    ``ticks`` ticks (``None``: until ``stop`` is set)."""
    intake = Intake(store, local(load_policy(None, store.catalogue)), author=author, source="simulator")
    run, stop = Run(), stop or threading.Event()
    started = time.monotonic()
    for found in events(focus(store, seed), seed):
        if stop.is_set() or (ticks is not None and run.ticks >= ticks):
            break
        if found:
            now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            lines = [(i, orjson.dumps({"key": e.key, "status": e.status, "values": e.values, "observed_at": now,
                                       "source": e.source})) for i, e in enumerate(found, start=1)]
            done = intake.push(lines)
            run.kept += done.applied + done.late
            run.refused += len(done.rejected)
            if on_tick is not None:
                on_tick(run.ticks, done)
        run.ticks += 1
        stop.wait(max(0.0, started + run.ticks / speed - time.monotonic()))
    return run
