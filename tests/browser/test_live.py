"""The live twin in Chromium: a status change committed by another client reaches the open map without a reload
(the hydrant's colour where it is drawn, and the panel's list of latest changes)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import orjson
import pytest

from tests.browser.conftest import Tab, open_tab
from tests.browser.test_map import CENTRE, goto
from tests.maps.server import running
from tests.users import add_user, bearer
from twin.catalogue import Catalogue
from twin.store import open_store


@pytest.fixture
def live(browser: object, own_city: str) -> Iterator[tuple[Tab, str]]:
    planner, writer = add_user(own_city, "watcher", "planner"), add_user(own_city, "sensors", "gis_editor")
    with running(own_city) as url:
        tab = open_tab(browser, url, planner)
        yield tab, writer
        tab.page.context.close()
    assert tab.outside() == [] and tab.errors == []


def _in_service_near_centre(target: str, catalogue: Catalogue, nth: int) -> tuple[str, float, float]:
    """The ``nth`` hydrant in service near the city's centre: its key, lon and lat."""
    store = open_store(target, catalogue, create=False)
    try:
        near = store.features("hydrant", bbox=(CENTRE[0] - 0.004, CENTRE[1] - 0.003, CENTRE[0] + 0.004,
                                               CENTRE[1] + 0.003))
    finally:
        store.close()
    hydrant = near[near.status == "in_service"].iloc[nth]
    return str(hydrant.key), float(hydrant.geometry.x), float(hydrant.geometry.y)


def test_a_status_report_reaches_the_open_map_without_a_reload(live: tuple[Tab, str], own_city: str,
                                                               catalogue: Catalogue) -> None:
    tab, writer = live
    key, lon, lat = _in_service_near_centre(own_city, catalogue, 0)
    goto(tab, f"#map=17/{lat}/{lon}&layers=hydrant&base=twin&lang=zh")
    tab.page.wait_for_function("TwinMap.drawn().hydrant.features > 0 && TwinMap.liveOpen === true")
    loads = len(tab.requests)
    assert tab.page.locator(".twin-s-under_repair").count() == 0
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    r = httpx.post(tab.base + "/status", timeout=30, headers={**bearer(writer), "Content-Type": "application/json"},
                   content=orjson.dumps([{"key": key, "status": "under_repair", "observed_at": now}]))
    assert r.status_code == 200 and r.json()["applied"] == 1, r.text
    item = tab.page.locator(f'#twin-live-list [data-key="{key}"]')
    item.wait_for(timeout=10_000)
    assert "消火栓" in item.inner_text() and "维修中" in item.inner_text()
    tab.page.wait_for_function("document.querySelectorAll('.twin-f-hydrant.twin-s-under_repair').length >= 1")
    assert not any("/map" in u and u.endswith("/map") for u in tab.requests[loads:])  # no reload of the page
    tab.shot("map-live-change")


def test_the_time_bar_shows_the_map_as_it_was_and_replays(live: tuple[Tab, str], own_city: str,
                                                            catalogue: Catalogue) -> None:
    tab, writer = live
    key, lon, lat = _in_service_near_centre(own_city, catalogue, 1)
    faulty = "document.querySelectorAll('.twin-f-hydrant.twin-s-faulty').length"
    goto(tab, f"#map=17/{lat}/{lon}&layers=hydrant&base=twin&lang=zh")
    tab.page.wait_for_function("TwinMap.drawn().hydrant.features > 0 && TwinMap.liveOpen === true")
    before = tab.page.evaluate(faulty)
    moment = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    tab.page.wait_for_timeout(20)
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    r = httpx.post(tab.base + "/status", timeout=30, headers={**bearer(writer), "Content-Type": "application/json"},
                   content=orjson.dumps([{"key": key, "status": "faulty", "observed_at": now}]))
    assert r.status_code == 200 and r.json()["applied"] == 1, r.text
    tab.page.wait_for_function(f"{faulty} > {before}")
    after = tab.page.evaluate(faulty)
    tab.page.evaluate("at => TwinMap.setAsOf(at)", moment)  # as the time bar's input does
    tab.page.wait_for_function(f"TwinMap.drawn().hydrant.features > 0 && {faulty} === {before}")
    assert "at=" in tab.page.evaluate("location.hash")
    assert "的状态" in tab.page.locator("#twin-asof-note").inner_text()
    assert any("as_of=" in u for u in tab.requests)
    tab.shot("map-time-bar-past")
    tab.page.click("#twin-now")
    tab.page.wait_for_function(f"TwinMap.drawn().hydrant.features > 0 && {faulty} === {after}")
    assert "at=" not in tab.page.evaluate("location.hash")
    tab.page.fill("#twin-asof", "2026-01-01T08:00:00")
    tab.page.click("#twin-replay")
    first = tab.page.evaluate("TwinMap.asOf")
    tab.page.wait_for_function(f"TwinMap.asOf > '{first}'", timeout=5000)
    tab.page.click("#twin-replay")  # pause
    assert tab.page.locator("#twin-replay").inner_text() == "回放"
