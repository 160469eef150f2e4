"""Who sees what on the map, in Chromium: signing in on the login page, an area officer's area, masked popups."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import unquote

import shapely

from tests.browser.conftest import Tab
from tests.browser.test_map import CENTRE, goto, screen
from tests.maps.city import BOX
from tests.maps.conftest import OFFICER_AREA
from twin.access import AccessSettings, Gate
from twin.store import Store

Tabs = Callable[[str | None], Tab]
#: Layers the area officer's test draws: GeoJSON (hydrants, compounds: few inside the area) and tiles (lights).
DRAWN = ("hydrant", "street_light", "residential_compound", "pipeline")


def map_view(tab: Tab) -> tuple[int, float, float]:
    zoom = tab.page.evaluate("TwinMap.map.getZoom()")
    lon, lat = tab.page.evaluate("TwinMap.toData(TwinMap.map.getCenter())")
    return zoom, lon, lat


def settled(tab: Tab) -> None:
    """Wait until the vector tiles in view have loaded and been drawn."""
    tab.page.wait_for_function("!TwinMap.grid || !TwinMap.grid.isLoading()")
    tab.page.wait_for_timeout(300)


def test_signing_in_on_the_login_page_keeps_the_shared_view(tabs: Tabs, tokens: dict[str, str]) -> None:
    tab = tabs(None)
    page = tab.page
    view = f"#map=16/{CENTRE[1]}/{CENTRE[0]}&layers=hydrant&base=twin&lang=zh"
    page.goto(tab.base + "/map" + view)
    page.locator("#login-form").wait_for()
    assert unquote(page.url) == tab.base + "/login?next=/map" + view  # redirected, the fragment kept
    page.locator("#token").press_sequentially("twin_0123456789ab_" + "x" * 43)
    page.click("#login-form button[type=submit]")
    page.locator("#login-error").wait_for()
    assert "登录失败 Sign-in failed" in page.locator("#login-error").inner_text()
    tab.shot("login-wrong-token")
    page.locator("#token").press_sequentially(tokens["planner"])
    page.click("#login-form button[type=submit]")
    page.wait_for_function("window.TwinMap && TwinMap.ready === true")
    zoom, lon, lat = map_view(tab)
    assert zoom == 16 and abs(lon - CENTRE[0]) < 1e-5 and abs(lat - CENTRE[1]) < 1e-5
    assert "layers=hydrant&" in page.evaluate("location.hash")
    user = page.locator("#twin-user").inner_text()
    assert "test-planner" in user and "规划人员" in user and "退出登录" in user
    assert page.locator("#twin-import").count() == 0  # a planner imports nothing
    page.wait_for_function("TwinMap.drawn().hydrant.features > 0")
    tab.shot("map-signed-in-planner")
    page.click("#twin-lang")
    user = page.locator("#twin-user").inner_text()
    assert "Planner" in user and "Sign out" in user
    page.goto(tab.base + "/import")
    assert "不能导入" in page.locator("[role=alert]").inner_text()
    tab.shot("import-forbidden")
    page.click("text=返回地图 Back to the map")
    page.wait_for_function("window.TwinMap && TwinMap.ready === true")
    page.click("#twin-sign-out button")
    page.locator("#login-form").wait_for()
    assert [c for c in page.context.cookies() if c["name"] == "twin_session"] == []
    page.goto(tab.base + "/map")
    assert page.url.startswith(tab.base + "/login?next=")


def test_a_printed_one_click_link_signs_in_once_and_the_cookie_is_not_the_token(
        tabs: Tabs, tokens: dict[str, str], city: Store) -> None:
    gate = Gate(city, AccessSettings())
    try:
        code = gate.sign_in_code(tokens["planner"])
    finally:
        gate.close()
    tab = tabs(None)
    page = tab.page
    page.goto(f"{tab.base}/login?code={code}&next=/map")
    page.wait_for_function("window.TwinMap && TwinMap.ready === true")
    assert page.url == tab.base + "/map" and "test-planner" in page.locator("#twin-user").inner_text()
    cookie = next(c for c in page.context.cookies() if c["name"] == "twin_session")
    assert cookie["httpOnly"] and cookie["value"] != tokens["planner"] and tokens["planner"] not in cookie["value"]
    again = tabs(None).page
    again.goto(f"{tab.base}/login?code={code}&next=/map")  # the same link, in another browser
    assert "already used" in again.locator("#login-error").inner_text()


def test_an_area_officer_sees_only_their_area(tabs: Tabs, tokens: dict[str, str], city: Store,
                                              area_key: str) -> None:
    area = city.get(area_key).geometry.iloc[0]
    inside = {}
    for layer in DRAWN:
        frame = city.features(layer)
        inside[layer] = set(frame["key"][shapely.intersects(area, frame.geometry.to_numpy())])
    tab = tabs(tokens["area_officer"])
    page = tab.page

    def check(everything_in_view: bool) -> None:
        keys = {layer: set(found) for layer, found in page.evaluate("TwinMap.drawnKeys()").items()}
        for layer in DRAWN:
            leaks = sorted(keys[layer] - inside[layer])
            assert not leaks, f"{len(leaks)} {layer} components drawn outside the area: {leaks[:5]}"
            if everything_in_view:
                assert keys[layer] == inside[layer], layer

    goto(tab, "#layers=" + ",".join(DRAWN) + "&base=twin&lang=zh")
    west, south, east, north = page.evaluate("(() => { const b = TwinMap.map.getBounds(); "
                                             "return [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()]; })()")
    a = area.bounds
    assert west <= a[0] and south <= a[1] and east >= a[2] and north >= a[3]  # opens on the area...
    assert (a[3] - a[1]) / (north - south) > 0.4  # ...fitted to it
    assert page.locator("#twin-area-badge").inner_text().strip() == f"您的辖区：{OFFICER_AREA}"
    assert OFFICER_AREA in page.locator(".twin-area-label").inner_text()
    assert page.locator("path.twin-area").count() == 1
    assert "辖区工作人员" in page.locator("#twin-user-role").inner_text()
    page.wait_for_function("TwinMap.drawn().hydrant.features > 0 && TwinMap.drawn().street_light.features > 0")
    settled(tab)
    check(everything_in_view=False)
    tab.shot("map-area-officer")
    # the whole box, the neighbouring committees included: their components stay hidden, this one's all show
    page.evaluate("([lon, lat]) => TwinMap.map.setView(TwinMap.toDisplay(lon, lat), 15, {animate: false})",
                  [(BOX[0] + BOX[2]) / 2, (BOX[1] + BOX[3]) / 2])
    settled(tab)
    check(everything_in_view=True)
    tab.shot("map-area-officer-wide")
    # nearby and search answer from inside the area only
    far = (BOX[2] - 0.002, BOX[1] + 0.002)  # in another committee
    groups = page.evaluate("([lon, lat]) => TwinMap.nearby(TwinMap.toDisplay(lon, lat))"
                           ".then(gs => gs.map(g => [g.spec.id, g.features.map(f => f.id)]))", list(far))
    found = dict(groups)
    assert found["hydrant"] and set(found["hydrant"]) <= inside["hydrant"]
    assert all(set(keys) <= inside[layer] for layer, keys in found.items() if layer in inside)
    hydrants = city.features("hydrant")
    outside = hydrants[~hydrants["key"].isin(inside["hydrant"])].iloc[0]["key"]
    page.fill("#twin-search", outside)
    page.press("#twin-search", "Enter")
    page.locator("#twin-results-title", has_text="没有找到").wait_for()


def test_personal_fields_are_masked_for_a_planner_and_not_for_an_admin(tabs: Tabs, tokens: dict[str, str],
                                                                       city: Store) -> None:
    compounds = city.features("residential_compound")
    row = compounds[compounds["name"] == "梧桐花园3期"].iloc[0]
    assert (row["property_manager"], row["contact_phone"]) == ("王小明3", "13912340003")
    centre = row.geometry.centroid
    for role, manager, phone in (("planner", "王***", "139****0003"), ("admin", "王小明3", "13912340003")):
        tab = tabs(tokens[role])
        goto(tab, f"#map=17/{centre.y}/{centre.x}&layers=residential_compound&base=twin&lang=zh")
        tab.page.wait_for_function("TwinMap.drawn().residential_compound.features > 0")
        tab.page.mouse.click(*screen(tab, centre.x, centre.y))
        popup = tab.page.locator(f'.twin-popup[data-key="{row["key"]}"]')
        popup.wait_for()
        assert popup.locator('[data-field="property_manager"] .twin-value').inner_text() == manager
        assert popup.locator('[data-field="contact_phone"] .twin-value').inner_text() == phone
        assert popup.locator(".twin-masked").count() == (2 if role == "planner" else 0)
        assert "梧桐花园3期" in popup.inner_text()  # names of places are not personal data
        tab.shot(f"map-popup-compound-{role}")
