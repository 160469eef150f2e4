"""Offline and GCJ-02: the static report map opens with no network; Amap's offset is matched by the overlays."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.browser.conftest import Tab, open_tab
from tests.browser.test_map import CENTRE, a_faulty_hydrant, goto, screen
from tests.maps.city import BOX
from tests.maps.server import GEOJSON_MAX, running
from twin.cli import app
from twin.crs import gcj02_to_wgs84, wgs84_to_gcj02
from twin.settings import MapSettings
from twin.store import Store

BLANK_PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                          "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")


def test_static_map_opens_with_every_outside_request_refused(browser: object, city_target: str,
                                                            tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    result = CliRunner().invoke(app, ["map", "--store", city_target, "--out", str(out), "--layer",
                                      "hydrant,residential_compound,pipeline", "--bbox", ",".join(map(str, BOX))])
    assert result.exit_code == 0, result.output
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    refused: list[str] = []
    context.route(lambda url: not url.startswith(("file:", "data:", "blob:")),
                  lambda route: (refused.append(route.request.url), route.abort()))
    page = context.new_page()
    page.goto(out.as_uri())
    page.wait_for_function("document.querySelectorAll('.leaflet-interactive').length > 200")
    page.screenshot(path=str(Tab(page, "").shot("static-report-map")))
    context.close()
    assert refused == []


@pytest.fixture
def amap_tab(browser: object, city_target: str, tokens: dict[str, str]) -> Iterator[Tab]:
    with running(city_target, MapSettings(basemaps="amap", geojson_max=GEOJSON_MAX)) as url:
        tab = open_tab(browser, url, tokens["planner"])
        # Amap tiles would come from the internet: answer them here with a blank tile, and record them
        tab.page.route("**/*autonavi.com/**", lambda route: route.fulfill(body=BLANK_PNG, content_type="image/png"))
        yield tab
        tab.page.context.close()
    assert all("autonavi.com" in u for u in tab.outside()) and tab.errors == []


def test_the_js_offset_matches_twin_crs(amap_tab: Tab) -> None:
    goto(amap_tab)
    rng = np.random.default_rng(3)
    lon, lat = 120.9 + rng.random(40) * 1.3, 30.7 + rng.random(40) * 1.1
    js = np.array(amap_tab.page.evaluate("pts => pts.map(p => TwinGeo.toGcj02(p[0], p[1]))",
                                         np.column_stack([lon, lat]).tolist()))
    glon, glat = wgs84_to_gcj02(lon, lat)
    assert np.abs(js - np.column_stack([glon, glat])).max() < 1e-9
    back = np.array(amap_tab.page.evaluate("pts => pts.map(p => TwinGeo.toWgs84(p[0], p[1]))",
                                           np.column_stack([glon, glat]).tolist()))
    assert np.abs(back - np.column_stack(gcj02_to_wgs84(glon, glat))).max() < 1e-9


def test_overlays_follow_amap_into_gcj02(amap_tab: Tab, city: Store) -> None:
    key, lon, lat = a_faulty_hydrant(city)
    goto(amap_tab, f"#map=17/{lat}/{lon}&layers=hydrant,residential_compound&base=twin&lang=zh")
    page = amap_tab.page
    page.wait_for_function("TwinMap.drawn().hydrant.features > 0")
    page.check('input[name="twin-base"][value="amap"]')
    page.wait_for_function("TwinMap.gcj === true && TwinMap.drawn().hydrant.features > 0")
    page.wait_for_timeout(500)
    glon, _ = (float(v[0]) for v in wgs84_to_gcj02(np.array([lon]), np.array([lat])))
    expected = screen(amap_tab, lon, lat)  # where GCJ-02 puts it on Amap's tiles
    box = page.locator(".folium-map").bounding_box()
    unshifted = page.evaluate("([lat, lon]) => { const p = TwinMap.map.latLngToContainerPoint([lat, lon]); "
                              "return [p.x, p.y]; }", [lat, lon])
    assert abs(box["x"] + unshifted[0] - expected[0]) + abs(box["y"] + unshifted[1] - expected[1]) > 100
    centres = page.evaluate("""() => [...document.querySelectorAll('.twin-f-hydrant')].map(e => {
        const b = e.getBoundingClientRect(); return [b.x + b.width / 2, b.y + b.height / 2]; })""")
    gap = min(abs(x - expected[0]) + abs(y - expected[1]) for x, y in centres)
    assert gap < 2.5, f"no hydrant drawn at its GCJ-02 position (nearest {gap:.1f} px away)"
    page.mouse.click(*expected)
    page.locator(f'.twin-popup[data-key="{key}"]').wait_for()
    assert "hydrant" in page.evaluate("location.hash") and "base=amap" in page.evaluate("location.hash")
    assert abs(page.evaluate("TwinMap.toData(TwinMap.map.getCenter())")[0] - lon) < 1e-3
    amap_tab.shot("map-amap-gcj02")
    assert page.evaluate("([x, y]) => TwinMap.map.containerPointToLatLng([x, y]).lng",
                         [expected[0] - box["x"], expected[1] - box["y"]]) == pytest.approx(glon, abs=2e-5)


def test_nearby_under_amap_queries_wgs84(amap_tab: Tab) -> None:
    goto(amap_tab, f"#map=16/{CENTRE[1]}/{CENTRE[0]}&layers=hydrant&base=amap&lang=zh")
    amap_tab.page.mouse.click(*screen(amap_tab, *CENTRE), button="right")
    amap_tab.page.locator("#twin-results h4", has_text="消火栓").wait_for()
    at = amap_tab.page.locator("#twin-results .twin-muted").first.inner_text()
    lon, lat = (float(v) for v in at.split(" ", 1)[1].split(","))
    assert abs(lon - CENTRE[0]) < 2e-5 and abs(lat - CENTRE[1]) < 2e-5  # the data point, not the shifted one
