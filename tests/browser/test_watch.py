"""Alerts and work orders in Chromium: an active site put beside a gas main raises an alert listed in the panel and
drawn on the map; the officer zooms to it, dispatches a work order from it (派单) and follows the order through
接单, 处置 and 办结, all on the map."""

from __future__ import annotations

from collections.abc import Iterator

import geopandas as gpd
import pytest
import shapely

from tests.browser.conftest import Tab, open_tab
from tests.browser.test_map import CENTRE, goto
from tests.maps.server import running
from tests.users import add_user
from twin.catalogue import Catalogue
from twin.store import open_store

#: A site at the centre of the test city, its east edge 4 m from a gas main of its own.
SITE = shapely.box(CENTRE[0] - 0.0006, CENTRE[1] - 0.0004, CENTRE[0], CENTRE[1])
GAS_X = CENTRE[0] + 4 / (111_195 * 0.856)


@pytest.fixture
def officer(browser: object, own_city: str, catalogue: Catalogue) -> Iterator[Tab]:
    store = open_store(own_city, catalogue, create=False)
    try:
        store.upsert("construction_site", gpd.GeoDataFrame(
            {"permit_no": ["沪建2026-0415"], "project_name": ["测试地块"], "status": ["active"]}, geometry=[SITE],
            crs="EPSG:4326"), author="t", source="t")
        store.upsert("pipeline", gpd.GeoDataFrame({"kind": ["gas"], "pressure_class": ["medium"]}, geometry=[
            shapely.LineString([(GAS_X, CENTRE[1] - 0.002), (GAS_X, CENTRE[1] + 0.002)])], crs="EPSG:4326"),
            author="t", source="t")
        site = str(store.features("construction_site", bbox=SITE.bounds).query("permit_no == '沪建2026-0415'")
                   .key.iloc[0])
    finally:
        store.close()
    token = add_user(own_city, "duty-officer", "admin")
    with running(own_city) as url:
        tab = open_tab(browser, url, token)
        tab.site = site  # type: ignore[attr-defined]
        yield tab
        tab.page.context.close()
    assert tab.outside() == [] and tab.errors == []


def test_an_officer_follows_an_alert_to_its_closed_work_order(officer: Tab) -> None:
    tab, site = officer, officer.site  # type: ignore[attr-defined]
    goto(tab, "#lang=zh")
    tab.page.wait_for_selector("#twin-watch:not([hidden])")
    item = tab.page.locator("#twin-alerts li", has_text=f"{site} 距燃气管线").first
    item.wait_for(timeout=20_000)
    assert "仅" in item.inner_text()  # the 10 m rule's text, with the distance
    assert tab.page.evaluate("TwinMap.alertLayer.getLayers().length") >= 1
    item.locator("a").click()
    tab.page.wait_for_function("TwinMap.map.getZoom() >= 17")
    tab.shot("watch-alert")

    item.locator("button").click()
    order = tab.page.locator("#twin-orders li").first
    order.locator(".twin-order-status", has_text="派单").wait_for()
    for step, after in (("接单", "接单"), ("处置", "处置"), ("办结", "办结")):
        order.locator("button", has_text=step).click()
        tab.page.locator("#twin-orders li").first.locator(".twin-order-status", has_text=after).wait_for()
    assert tab.page.locator("#twin-orders li").first.locator("button").count() == 0  # closed: no step left
    assert "5" in tab.page.locator("#twin-orders li").first.inner_text()  # the five nearest hydrants
    tab.shot("watch-order-closed")

    # an officer opens an order where they see a problem: the tool, a click on the map, a title
    tab.page.once("dialog", lambda d: d.accept("井盖缺失"))
    tab.page.click("#twin-new-order")
    box = tab.page.locator(".folium-map").bounding_box()
    tab.page.mouse.click(box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.5)
    tab.page.locator("#twin-orders li", has_text="井盖缺失").locator(".twin-order-status", has_text="派单").wait_for()
