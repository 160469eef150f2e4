"""Benchmark of the planners' map in Chromium: time to first features drawn, and tile bytes for pans.

Serves ``--store`` with ``twin serve``'s app on a free local port, opens ``/map`` in Debian's Chromium
(Playwright), and measures

* the time from navigation start to the first components drawn (target: under 2 s), cold (a new browser
  profile; the first run also meets an empty server tile cache) and warm (a second tab);
* the vector-tile requests and bytes (as sent, gzip) of a pan across central Shanghai at z12 and at z15,
  and the median and slowest tile request (request start to response end, as Chromium timed it: the
  browser asks for a whole screen of tiles at once, so this includes waiting behind the others).

The server is twin's app in a thread of this process (``tests/maps/server.py``), with default settings (nearest-k
reads the store's own spatial index: nothing to warm). Each
browser profile first signs in as a planner through the one-click login link (not timed).

    python bench/bench_map.py --store ~/.cache/twin/bench/demo-full.gpkg [--runs 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

import machine
import orjson
from playwright.sync_api import Browser, BrowserContext, Page, Request, sync_playwright
from tokens import token_for

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.maps.server import running  # the same threaded uvicorn the tests use
from twin.settings import MapSettings

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run"]
PEOPLES_SQUARE = (121.4737, 31.2304)
#: Pans across central Shanghai, per zoom, each step about one screen or less. At z15 (a 1280 px screen is
#: ~5 km wide): People's Square east to the Bund and Lujiazui, then south to Xintiandi. At z12 (~40 km wide):
#: from People's Square west past Hongqiao, north to Baoshan, east across the river to Pudong, south to Minhang.
PANS = {
    15: [(121.4737, 31.2304), (121.4850, 31.2380), (121.4990, 31.2397), (121.4900, 31.2260), (121.4750, 31.2200)],
    12: [(121.4737, 31.2304), (121.30, 31.20), (121.40, 31.36), (121.60, 31.30), (121.62, 31.14), (121.42, 31.08)],
}


def first_drawn(page: Page, url: str, timeout_ms: int = 30_000) -> float:
    """Milliseconds from navigation start to the first component drawn on the map."""
    page.goto(url)
    page.wait_for_function("window.TwinMap && TwinMap.firstDrawnAt !== undefined", timeout=timeout_ms)
    return float(page.evaluate("TwinMap.firstDrawnAt"))


class TileTraffic:
    """The vector-tile requests a page makes: bytes as sent and Chromium's timing of each."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.sizes: list[int] = []
        self.times: list[tuple[float, str]] = []
        page.on("requestfinished", self._finished)

    def _finished(self, request: Request) -> None:
        if "/tiles/" not in request.url:
            return
        self.sizes.append(request.sizes()["responseBodySize"])  # as received (gzip), whatever the headers say
        self.times.append((request.timing["responseEnd"], request.url.split("/tiles/", 1)[1]))

    def mark(self) -> int:
        return len(self.sizes)

    def since(self, start: int) -> dict[str, object]:
        sizes, times = self.sizes[start:], self.times[start:]
        slowest = max(times, default=(0.0, "-"))
        return {"tiles": len(sizes), "kb": round(sum(sizes) / 1024, 1),
                "kb_per_tile": round(sum(sizes) / 1024 / max(1, len(sizes)), 2),
                "median_ms": round(statistics.median([t for t, _ in times])) if times else 0,
                "slowest_ms": round(slowest[0]), "slowest_tile": slowest[1]}

    def close(self) -> None:
        self.page.remove_listener("requestfinished", self._finished)


def pan(page: Page, base: str, zoom: int) -> dict[str, object]:
    """Tile requests and bytes (as sent) of the first view at ``zoom`` and of the pan along its :data:`PANS`."""
    traffic = TileTraffic(page)
    lon, lat = PANS[zoom][0]
    page.goto(f"{base}/map#map={zoom}/{lat}/{lon}&layers=hydrant,street_light,pipeline&base=twin&lang=zh")
    page.wait_for_function("window.TwinMap && TwinMap.ready === true")
    page.wait_for_load_state("networkidle")
    first = traffic.since(0)
    start = traffic.mark()
    for lon, lat in PANS[zoom][1:]:
        page.evaluate("([lat, lon]) => TwinMap.map.panTo([lat, lon], {animate: false})", [lat, lon])
        page.wait_for_load_state("networkidle")
        page.wait_for_timeout(300)
    panned = traffic.since(start)
    traffic.close()
    return {"zoom": zoom, "first_view": first, "pan": panned}


def signed_in(browser: Browser, base: str, token: str) -> BrowserContext:
    """A new browser profile signed in as a planner through the one-click link (as the browser tests do)."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    page = context.new_page()
    page.goto(f"{base}/login?token={token}&next=/whoami")
    page.close()
    return context


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--pyramid", type=Path, help="serve this pyramid (twin tiles build) for the zooms it has, "
                                                      "as TWIN_TILES_PYRAMID does")
    args = parser.parse_args()
    if args.pyramid is not None:
        os.environ["TWIN_TILES_PYRAMID"] = str(args.pyramid.resolve())
    lon, lat = PEOPLES_SQUARE
    results: dict[str, object] = {"machine": machine.describe(), "store": str(args.store),
                                  "pyramid": None if args.pyramid is None else str(args.pyramid)}
    token = token_for(args.store, "bench-planner", "planner")
    print(results["machine"], flush=True)
    with running(args.store, MapSettings()) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        cold, warm = [], []
        url = f"{base}/map#map=15/{lat}/{lon}&layers=hydrant,street_light,pipeline,residential_compound&base=twin"
        for _ in range(args.runs):  # cold: a new browser profile (empty cache); warm: a second tab in it
            context = signed_in(browser, base, token)
            cold.append(first_drawn(context.new_page(), url))
            warm.append(first_drawn(context.new_page(), url.replace("map=15", "map=16")))
            context.close()
        results["first_features_ms"] = {"cold_runs": [round(v) for v in cold], "warm_runs": [round(v) for v in warm],
                                        "cold_median": round(statistics.median(cold)), "cold_max": round(max(cold)),
                                        "warm_median": round(statistics.median(warm)), "target": 2000}
        results["pan"] = []
        for zoom in (12, 15):
            context = signed_in(browser, base, token)
            results["pan"].append(pan(context.new_page(), base, zoom))
            context.close()
        browser.close()
    results["load_after"] = machine.load()
    print(orjson.dumps(results, option=orjson.OPT_INDENT_2).decode())
    if args.json:
        args.json.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    main()
