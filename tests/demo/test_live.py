"""The simulated live city on the tiny demo twin: seeded (the same seed, the same events), plausible (a storm that
floods drainage pipes and recedes, hydrants reporting pressure), and kept as status reports by the store."""

from __future__ import annotations

import itertools

from typer.testing import CliRunner

from tests.engines import execute
from twin.catalogue import Catalogue
from twin.cli import app
from twin.demo.live import STORM_TICKS, Event, events, focus, simulate
from twin.store import Store, open_store


def _first(store: Store, seed: int, ticks: int) -> list[list[Event]]:
    return list(itertools.islice(events(focus(store, seed), seed), ticks))


def test_the_same_seed_gives_the_same_events_and_another_seed_others(tiny: Store) -> None:
    one, again, other = _first(tiny, 7, 200), _first(tiny, 7, 200), _first(tiny, 8, 200)
    assert one == again and one != other
    assert sum(len(t) for t in one) > 200  # hydrants report every tick


def test_the_storm_floods_drainage_pipes_then_they_drain(tiny: Store) -> None:
    where = focus(tiny, 7)
    assert len(where.drains) and len(where.hydrants)
    ticks = _first(tiny, 7, 2 * STORM_TICKS)
    drains = set(where.drains.key)
    flooded_at = {e.key: e.tick for t in ticks for e in t if e.key in drains and e.status == "faulty"}
    drained_at = {e.key: e.tick for t in ticks for e in t if e.key in drains and e.status == "in_service"}
    assert flooded_at and set(drained_at) == set(flooded_at)
    assert all(drained_at[k] > flooded_at[k] for k in flooded_at)
    assert {e.source for t in ticks for e in t} >= {"排水监测", "压力传感器"}


def test_a_simulation_keeps_its_events_as_status_reports(own_tiny: str, catalogue: Catalogue) -> None:
    store = open_store(own_tiny, catalogue, create=False)
    try:
        run = simulate(store, 7, ticks=30, speed=1000)
    finally:
        store.close()
    assert run.ticks == 30 and run.kept >= 30 and run.refused == 0
    assert execute(own_tiny, "SELECT count(*) FROM twin_reports WHERE source = '压力传感器'")[0][0] >= 30
    done = CliRunner().invoke(app, ["simulate", "--ticks", "5", "--speed", "1000", "--store", own_tiny])
    assert done.exit_code == 0, done.output
    assert "5 ticks" in done.output
