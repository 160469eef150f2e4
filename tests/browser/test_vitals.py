"""The vital-signs panel in Chromium: choose an indicator, see the districts in their band colours, drill down to a
sub-district and a committee, then to the components behind its number, and open one of them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.browser.conftest import Tab, open_tab
from tests.browser.test_map import goto
from twin.store import Store


@pytest.fixture
def planner(browser: object, city_url: str, tokens: dict[str, str]) -> Iterator[Tab]:
    tab = open_tab(browser, city_url, tokens["planner"])
    yield tab
    tab.page.context.close()
    assert tab.outside() == [] and tab.errors == []


def _drawn(tab: Tab) -> list[dict[str, object]]:
    return tab.page.evaluate("TwinMap.vitalsLayer ? TwinMap.vitalsLayer.getLayers().map(l => l.feature.properties)"
                             " : []")


def test_the_panel_draws_an_indicator_and_drills_down_to_a_component(planner: Tab, city: Store) -> None:
    tab = planner
    goto(tab, "#lang=zh")
    tab.page.wait_for_selector("#twin-vitals:not([hidden])")
    assert tab.page.locator("#twin-vitals h3").inner_text() == "城市体征"
    tab.page.select_option("#twin-vitals-indicator", "hydrant_density")
    tab.page.wait_for_function("TwinMap.vitalsLayer && TwinMap.vitalsLayer.getLayers().length > 0")
    districts = _drawn(tab)
    assert {d["level"] for d in districts} == {"district"} and len(districts) == city.count("district")
    assert tab.page.locator("#twin-vitals-legend .twin-band").count() == 3
    busy = max(districts, key=lambda d: d["value"] or 0)
    assert busy["value"] > 0 and busy["color"] == {"normal": "#1a9850", "attention": "#fdae61",
                                                   "warning": "#d73027"}[busy["band"]]
    # the area's colour on the page is its band's
    fill = tab.page.evaluate("key => TwinMap.vitalsLayer.getLayers().find(l => l.feature.properties.key === key)"
                             ".options.fillColor", busy["key"])
    assert fill == busy["color"]
    tab.shot("vitals-districts")

    tab.page.evaluate("key => TwinMap.vitalsLayer.getLayers().find(l => l.feature.properties.key === key)"
                      ".fire('click')", busy["key"])
    tab.page.wait_for_function("TwinMap.vitalsLayer && TwinMap.vitalsLayer.getLayers().length > 0 && "
                               "TwinMap.vitalsLayer.getLayers()[0].feature.properties.level === 'subdistrict'")
    subs = _drawn(tab)
    assert {s["parent"] for s in subs} == {busy["key"]}
    sub = max(subs, key=lambda s: s["value"] or 0)
    tab.page.evaluate("key => TwinMap.vitalsLayer.getLayers().find(l => l.feature.properties.key === key)"
                      ".fire('click')", sub["key"])
    tab.page.wait_for_function("TwinMap.vitalsLayer && TwinMap.vitalsLayer.getLayers().length > 0 && "
                               "TwinMap.vitalsLayer.getLayers()[0].feature.properties.level === 'committee'")
    committees = _drawn(tab)
    committee = max(committees, key=lambda c: c["count"])
    assert committee["count"] > 0
    tab.shot("vitals-committees")

    tab.page.evaluate("key => TwinMap.vitalsLayer.getLayers().find(l => l.feature.properties.key === key)"
                      ".fire('click')", committee["key"])
    tab.page.wait_for_selector("#twin-vitals-items li")
    listed = tab.page.locator("#twin-vitals-items li").count()
    assert listed == committee["count"]  # every component behind the number, and no other
    tab.page.locator("#twin-vitals-items a").first.click()
    tab.page.wait_for_selector(".leaflet-popup-content")
    assert "HY-" in tab.page.locator(".leaflet-popup-content").inner_text()
    tab.shot("vitals-component")

    tab.page.click("#twin-vitals-up")
    tab.page.wait_for_function("TwinMap.vitalsLayer && TwinMap.vitalsLayer.getLayers()[0].feature.properties.level"
                               " === 'subdistrict'")
