"""The planners' map in Chromium: layers drawn and toggled, popups, search, nearby, measure, share, language."""

from __future__ import annotations

import itertools
import re

import numpy as np

from tests.browser.conftest import Tab
from tests.maps.city import BOX
from twin.geodesy import haversine
from twin.store import Store

CENTRE = ((BOX[0] + BOX[2]) / 2, (BOX[1] + BOX[3]) / 2)


def goto(tab: Tab, fragment: str = "") -> None:
    tab.page.goto(tab.base + "/map" + fragment)
    tab.page.wait_for_function("window.TwinMap && TwinMap.ready === true")


def drawn(tab: Tab) -> dict[str, dict[str, int]]:
    return tab.page.evaluate("TwinMap.drawn()")


def screen(tab: Tab, lon: float, lat: float) -> tuple[float, float]:
    """Where a lon/lat point is on the page, in CSS pixels."""
    box = tab.page.locator(".folium-map").bounding_box()
    x, y = tab.page.evaluate("([lon, lat]) => { const p = TwinMap.map.latLngToContainerPoint("
                             "TwinMap.toDisplay(lon, lat)); return [p.x, p.y]; }", [lon, lat])
    return box["x"] + x, box["y"] + y


def a_faulty_hydrant(city: Store) -> tuple[str, float, float]:
    """A faulty hydrant near the centre with no other hydrant within 12 m, so that a click on it meets only it
    (which of two overlapping markers is drawn on top is no part of what the map promises)."""
    frame = city.features("hydrant", bbox=(CENTRE[0] - 0.006, CENTRE[1] - 0.004, CENTRE[0] + 0.006,
                                           CENTRE[1] + 0.004))
    lon, lat = frame.geometry.x.to_numpy(), frame.geometry.y.to_numpy()
    for i in np.flatnonzero(frame["status"].to_numpy() == "faulty"):
        gaps = haversine(np.delete(lon, i), np.delete(lat, i), lon[i], lat[i])
        if gaps.min() > 12:  # over 10 px apart at zoom 17
            return frame["key"].iloc[i], lon[i], lat[i]
    raise AssertionError("the test city has no faulty hydrant standing alone near its centre")


def test_map_draws_tiles_and_geojson_and_toggles_layers(tab: Tab, city: Store) -> None:
    goto(tab, f"#map=15/{CENTRE[1]}/{CENTRE[0]}&layers=hydrant,street_light,residential_compound,pipeline"
              "&base=twin&lang=zh")
    tab.page.wait_for_function("TwinMap.drawn().hydrant.features > 20 && TwinMap.drawn().street_light.features > 50"
                               " && TwinMap.drawn().residential_compound.features > 0")
    before = drawn(tab)
    assert before["residential_compound"]["features"] == city.count("residential_compound")  # small: GeoJSON
    assert tab.page.locator(".twin-f-hydrant.twin-s-faulty").count() > 0
    tab.shot("map-z15-zh")
    tab.page.uncheck('input[data-layer="hydrant"]')
    tab.page.wait_for_function("TwinMap.drawn().hydrant.features === 0")
    tab.page.wait_for_function("TwinMap.drawn().street_light.features > 50")
    assert "hydrant" not in tab.page.evaluate("location.hash").split("layers=")[1].split("&")[0].split(",")
    tab.page.uncheck('input[data-layer="residential_compound"]')
    tab.page.wait_for_function("TwinMap.drawn().residential_compound.features === 0")
    tab.page.check('input[data-layer="hydrant"]')
    tab.page.wait_for_function("TwinMap.drawn().hydrant.features > 20")


def test_low_zooms_draw_cells_with_counts(tab: Tab) -> None:
    goto(tab, f"#map=12/{CENTRE[1]}/{CENTRE[0]}&layers=hydrant&base=twin&lang=zh")
    tab.page.wait_for_function("TwinMap.drawn().hydrant.cells > 0")
    assert drawn(tab)["hydrant"]["features"] == 0
    assert tab.page.locator('[data-zoomhint="hydrant"]').is_visible()
    assert "放大到 14 级" in tab.page.locator('[data-zoomhint="hydrant"]').inner_text()
    tab.shot("map-z12-cells")


def test_clicking_a_hydrant_opens_its_popup(tab: Tab, city: Store) -> None:
    key, lon, lat = a_faulty_hydrant(city)
    goto(tab, f"#map=17/{lat}/{lon}&layers=hydrant&base=twin&lang=zh")
    tab.page.wait_for_function("TwinMap.drawn().hydrant.features > 0")
    tab.page.mouse.click(*screen(tab, lon, lat))
    popup = tab.page.locator(f'.twin-popup[data-key="{key}"]')
    popup.wait_for()
    text = popup.inner_text()
    assert key in text and "故障" in text and "消火栓" in text and "出水口径 (mm)" in text and "管理单位" in text
    href = popup.locator("a").first.get_attribute("href")
    assert href.endswith(f"/collections/hydrant/items/{key}?f=json")
    tab.shot("map-popup-hydrant")


def test_search_finds_keys_names_and_addresses(tab: Tab, city: Store) -> None:
    key, _, _ = a_faulty_hydrant(city)
    goto(tab, "#layers=hydrant,residential_compound&base=twin&lang=zh")
    tab.page.fill("#twin-search", key)
    tab.page.press("#twin-search", "Enter")
    tab.page.locator(f'.twin-popup[data-key="{key}"]').wait_for()
    assert tab.page.evaluate("TwinMap.map.getZoom()") >= 16
    tab.page.fill("#twin-search", "梧桐花园3期")
    tab.page.press("#twin-search", "Enter")
    popup = tab.page.locator(".twin-popup", has_text="梧桐花园3期")
    popup.wait_for()
    compound = city.features("residential_compound")
    assert compound[compound["name"] == "梧桐花园3期"].iloc[0]["key"] in popup.inner_text()
    tab.page.fill("#twin-search", "测试路105号")
    tab.page.press("#twin-search", "Enter")
    tab.page.locator(".twin-popup", has_text="梧桐花园5期").wait_for()
    tab.page.fill("#twin-search", "没有这个地方")
    tab.page.press("#twin-search", "Enter")
    tab.page.locator("#twin-results-title", has_text="没有找到").wait_for()


def test_right_click_lists_nearest_components_with_distances(tab: Tab, city: Store) -> None:
    goto(tab, f"#map=16/{CENTRE[1]}/{CENTRE[0]}&layers=hydrant&base=twin&lang=zh")
    x, y = screen(tab, *CENTRE)
    tab.page.mouse.click(x, y, button="right")
    panel = tab.page.locator("#twin-results")
    panel.locator("h4", has_text="消火栓").wait_for()
    box = tab.page.locator(".folium-map").bounding_box()
    lon, lat = tab.page.evaluate("([x, y]) => TwinMap.toData(TwinMap.map.containerPointToLatLng([x, y]))",
                                 [x - box["x"], y - box["y"]])
    hydrants = city.features("hydrant")
    dist = haversine(hydrants.geometry.x.to_numpy(), hydrants.geometry.y.to_numpy(), lon, lat)
    nearest = hydrants.iloc[int(dist.argmin())]["key"]
    first = panel.locator("li", has=tab.page.locator(f"code:text('{nearest}')"))
    assert first.count() == 1
    shown = float(re.search(r"([\d.]+) 米", first.inner_text()).group(1))
    assert abs(shown - dist.min()) <= 1.0
    assert panel.locator("h4", has_text="路灯").count() == 1 and panel.locator("h4", has_text="地下管线").count() == 1
    tab.shot("map-nearby")


def test_measure_distance_and_area_geodesically(tab: Tab) -> None:
    goto(tab, f"#map=15/{CENTRE[1]}/{CENTRE[0]}&layers=&base=twin&lang=zh")
    pts = [(CENTRE[0] - 0.01, CENTRE[1] - 0.005), (CENTRE[0] + 0.01, CENTRE[1] - 0.005),
           (CENTRE[0] + 0.01, CENTRE[1] + 0.005)]
    tab.page.click("#twin-measure-distance")
    for lon, lat in pts:
        tab.page.mouse.click(*screen(tab, lon, lat))
    metres = float(re.search(r"([\d.]+) 公里", tab.page.evaluate("TwinMap.measureResult")).group(1)) * 1000
    exact = sum(float(haversine(a[0], a[1], b[0], b[1])) for a, b in itertools.pairwise(pts))
    assert abs(metres - exact) / exact < 0.01  # clicks land on whole pixels
    tab.shot("map-measure")
    tab.page.click("#twin-measure-area")
    for lon, lat in pts:
        tab.page.mouse.click(*screen(tab, lon, lat))
    value, unit = re.search(r"([\d.]+) (平方公里|公顷|平方米)", tab.page.evaluate("TwinMap.measureResult")).groups()
    area = float(value) * {"平方公里": 1e6, "公顷": 1e4, "平方米": 1.0}[unit]
    legs = [float(haversine(a[0], a[1], b[0], b[1])) for a, b in itertools.pairwise(pts)]
    assert abs(area - legs[0] * legs[1] / 2) / area < 0.02  # a right triangle, near enough on this scale
    tab.page.click("#twin-measure-clear")
    assert tab.page.evaluate("TwinMap.measureResult") == ""


def test_a_shared_link_restores_view_layers_and_language(tab: Tab, browser: object) -> None:
    goto(tab, f"#map=16/{CENTRE[1]}/{CENTRE[0]}&layers=pipeline,heritage_building&base=twin&lang=zh")
    tab.page.click("#twin-lang")
    tab.page.locator("#twin-panel h3", has_text="Layers").wait_for()
    link = tab.page.evaluate("location.href")
    assert "lang=en" in link and "layers=heritage_building,pipeline" in link  # catalogue order
    other = tab.page.context.new_page()
    other.goto(link)
    other.wait_for_function("window.TwinMap && TwinMap.ready === true")
    visible = other.evaluate("Object.keys(TwinMap.overlays).filter(k => TwinMap.overlays[k].visible)")
    assert sorted(visible) == ["heritage_building", "pipeline"]
    assert other.evaluate("TwinMap.map.getZoom()") == 16
    assert other.locator(".twin-layer-name", has_text="Underground pipeline").count() == 1
    centre = other.evaluate("TwinMap.toData(TwinMap.map.getCenter())")
    assert abs(centre[0] - CENTRE[0]) < 1e-4 and abs(centre[1] - CENTRE[1]) < 1e-4
    other.screenshot(path=str(tab.shot("map-english").with_name("map-english-shared.png")))
