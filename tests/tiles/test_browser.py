"""A real map client: Leaflet with Leaflet.VectorGrid (the repo's vendored copies) in headless Chromium draws
the service's tiles, and every hydrant in view reaches it with its properties."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from tests.serving import serving
from tests.tiles.conftest import tile_app
from tiles import TileEngine
from twin.access import Gate
from twin.api.auth import COOKIE
from twin.store import Store

VENDOR = Path(__file__).resolve().parents[2] / "twin" / "api" / "static" / "vendor"
PAGE = """<!doctype html><html><head><meta charset="utf-8">
<link rel="stylesheet" href="/vendor/leaflet/leaflet.css">
<script src="/vendor/leaflet/leaflet.js"></script>
<script src="/vendor/vectorgrid/Leaflet.VectorGrid.bundled.min.js"></script>
<style>html, body, #map { margin: 0; width: 768px; height: 512px; }</style></head>
<body><div id="map"></div><script>
window.seen = {}; window.cells = 0; window.done = false;
const map = L.map("map", {zoomAnimation: false, fadeAnimation: false}).setView([__LAT__, __LON__], __ZOOM__);
const layer = L.vectorGrid.protobuf("/tiles/hydrant/{z}/{x}/{y}.mvt", {
  rendererFactory: L.svg.tile,
  vectorTileLayerStyles: {hydrant: (p) => {
    if (p.count !== undefined) { window.cells += p.count; return {fill: true, fillColor: "#a50f15", radius: 6}; }
    window.seen[p.key] = p.status;
    return {radius: 4, fill: true, fillOpacity: 1, weight: 1,
            fillColor: p.status === "faulty" ? "#ffd700" : "#d7301f", color: "#fff"};
  }},
});
layer.on("load", () => { window.done = true; });
layer.addTo(map);
window.bounds = () => { const b = map.getBounds(); return [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()]; };
</script></body></html>"""


@pytest.mark.slow
def test_leaflet_vectorgrid_draws_every_hydrant_in_view(engine: TileEngine, city: Store, gate: Gate,
                                                        tmp_path: Path, browser) -> None:
    assert (VENDOR / "vectorgrid").is_dir(), "the vendored Leaflet.VectorGrid is missing (scripts/vendor-assets)"
    key = city.features("hydrant").key.iloc[0]
    city.edit(key, author="test", properties={"status": "faulty"})
    point = city.get(key).geometry.iloc[0]
    app = tile_app(engine, gate)
    app.mount("/vendor", StaticFiles(directory=VENDOR), name="vendor")

    def page(zoom: int) -> str:
        return PAGE.replace("__LAT__", str(point.y)).replace("__LON__", str(point.x)).replace("__ZOOM__", str(zoom))

    app.get("/map/{zoom}")(lambda zoom: HTMLResponse(page(int(zoom))))
    with serving(app) as url:
        tab = browser.new_page(viewport={"width": 768, "height": 512})
        # the browser signs in as /login does: a session cookie holding the id of a planner's session
        session_id = gate.sign_in(gate.add_user("planner1", "planner"))[1]
        tab.context.add_cookies([{"name": COOKIE, "value": session_id, "url": url}])
        try:
            tab.goto(f"{url}/map/16")
            tab.wait_for_function("window.done", timeout=30_000)
            seen, bounds = tab.evaluate("window.seen"), tab.evaluate("window.bounds()")
            tab.screenshot(path=str(tmp_path / "z16.png"))
            in_view = set(city.features("hydrant", bbox=tuple(bounds)).key)
            assert in_view and in_view <= set(seen)
            assert seen[key] == "faulty"
            assert tab.locator("path.leaflet-interactive").count() >= len(in_view)
            tab.goto(f"{url}/map/10")
            tab.wait_for_function("window.done", timeout=30_000)
            assert tab.evaluate("window.cells") == city.count("hydrant")  # the view holds the whole layer
            assert tab.evaluate("Object.keys(window.seen).length") == 0
        finally:
            tab.close()
