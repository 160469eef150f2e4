"""Benchmark of the planners' map in Chromium: time to first features drawn, and tile bytes for pans.

Serves ``--store`` with ``twin serve``'s app on a free local port, opens ``/map`` in Debian's Chromium
(Playwright), and measures

* the time from navigation start to the first components drawn (target: under 2 s), cold and warm;
* the vector-tile requests and bytes (as sent, gzip) of a pan across central Shanghai at z12 and at z15.

    python bench/bench_map.py --store ~/.cache/twin/demo-small.gpkg [--runs 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import orjson
from playwright.sync_api import Page, sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.maps.server import running  # the same threaded uvicorn the tests use
from twin.maps.basemap import MapSettings

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run"]
PEOPLES_SQUARE = (121.4737, 31.2304)
#: A pan across central Shanghai: People's Square east to the Bund and Lujiazui, then south to Xintiandi.
PAN = [(121.4737, 31.2304), (121.4850, 31.2380), (121.4990, 31.2397), (121.4900, 31.2260), (121.4750, 31.2200)]


def first_drawn(page: Page, url: str, timeout_ms: int = 30_000) -> float:
    """Milliseconds from navigation start to the first component drawn on the map."""
    page.goto(url)
    page.wait_for_function("window.TwinMap && TwinMap.firstDrawnAt !== undefined", timeout=timeout_ms)
    return float(page.evaluate("TwinMap.firstDrawnAt"))


def pan(page: Page, base: str, zoom: int) -> dict[str, object]:
    """Tile requests and bytes (as sent) of the first view at ``zoom`` and of the pan along :data:`PAN`."""
    sizes: list[int] = []

    def on_response(response: object) -> None:
        if "/tiles/" in response.url:
            sizes.append(int(response.headers.get("content-length") or len(response.body())))

    page.on("response", on_response)
    lon, lat = PAN[0]
    page.goto(f"{base}/map#map={zoom}/{lat}/{lon}&layers=hydrant,street_light,pipeline&base=twin&lang=zh")
    page.wait_for_function("window.TwinMap && TwinMap.ready === true")
    page.wait_for_load_state("networkidle")
    first = list(sizes)
    for lon, lat in PAN[1:]:
        page.evaluate("([lat, lon]) => TwinMap.map.panTo([lat, lon], {animate: false})", [lat, lon])
        page.wait_for_load_state("networkidle")
        page.wait_for_timeout(300)
    page.remove_listener("response", on_response)
    panned = sizes[len(first):]
    return {"zoom": zoom, "first_view": {"tiles": len(first), "kb": round(sum(first) / 1024, 1)},
            "pan": {"tiles": len(panned), "kb": round(sum(panned) / 1024, 1),
                    "kb_per_tile": round(sum(panned) / 1024 / max(1, len(panned)), 2)}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    lon, lat = PEOPLES_SQUARE
    results: dict[str, object] = {"store": str(args.store)}
    with running(args.store, MapSettings()) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        cold, warm = [], []
        url = f"{base}/map#map=15/{lat}/{lon}&layers=hydrant,street_light,pipeline,residential_compound&base=twin"
        for _ in range(args.runs):  # cold: a new browser profile (empty cache); warm: a second tab in it
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            cold.append(first_drawn(context.new_page(), url))
            warm.append(first_drawn(context.new_page(), url.replace("map=15", "map=16")))
            context.close()
        results["first_features_ms"] = {"cold_median": round(statistics.median(cold)), "cold_max": round(max(cold)),
                                        "warm_median": round(statistics.median(warm)), "target": 2000}
        results["pan"] = []
        for zoom in (12, 15):
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            results["pan"].append(pan(context.new_page(), base, zoom))
            context.close()
        browser.close()
    print(orjson.dumps(results, option=orjson.OPT_INDENT_2).decode())
    if args.json:
        args.json.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    main()
