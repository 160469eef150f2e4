"""Risk rules, alerts and work orders at city scale (issue 15), on the 15 M demo twin.

    python bench/bench_rules.py --store ~/.cache/twin/bench/demo-full.gpkg [--rules 1000] [--edits 60]
        [--batches 10] [--requests 200] [--json FILE]

The store and its access database are copied first (SQLite's backup into ``~/.cache/twin/bench/rules-scratch.gpkg``;
the original is never written). Then:

- **one rule city-wide**: the demo's ``site_near_gas_main`` (active sites within 10 m of a gas main), and the
  heaviest generated rule, each evaluated afresh over the whole city;
- **1,000 proximity rules** generated (construction sites in four statuses against pipelines of every kind, gas mains
  of every pressure class, heritage buildings, old compounds and faulty hydrants, at 0 to 100 m), evaluated
  city-wide once; then ``--edits`` edits of active sites (one moved next to a gas main, the next completed, ...),
  each followed by the rules' incremental evaluation as a server's follower runs it: the time from the commit to
  the alerts raised or closed (checked: the moved site has its 10 m alert, the completed one none);
- **status rules at city rate**: batches of 10,000 status reports on random hydrants (one changeset each), each
  followed by the indicators and the indicator rules on hydrants: reports per second of follower time;
- **over HTTP** (``twin serve`` with default settings): a work order at a random place (its committee found, the 5
  nearest in-service hydrants attached), and a choropleth with its drill-down (districts, the sub-districts of one,
  the committees of one), p50 / p95.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import time
from pathlib import Path

import httpx
import machine
import numpy as np
from bench_status import save, serve
from bench_vitals import copy, pct
from shapely import box
from tokens import token_for

from twin.catalogue import load_catalogue
from twin.model.reports import Report
from twin.rules.spec import load_rules
from twin.rules.watch import Watch
from twin.settings import DEFAULT_INDICATORS_DIR, DEFAULT_LAYERS_DIR, DEFAULT_RULES_DIR
from twin.store import open_store
from twin.store.base import TIME_FORMAT
from twin.vitals.service import VitalSigns
from twin.vitals.spec import load_indicators

SUBJECTS = ["status = 'active'", "status = 'planned'", "status IN ('active', 'suspended')", None]
KINDS = ["water_supply", "drainage", "gas", "power", "telecom", "heat"]
OBJECTS = ([("pipeline", f"kind = '{k}'") for k in KINDS] +
           [("pipeline", f"kind = '{k}' AND status <> 'retired'") for k in KINDS] +
           [("pipeline", f"kind = '{k}' AND diameter >= 300") for k in KINDS] +
           [("pipeline", f"kind = 'gas' AND pressure_class = '{p}'") for p in ("low", "medium", "sub_high", "high",
                                                                              "none")] +
           [("heritage_building", None)] +
           [("heritage_building", f"protection_level = '{p}'") for p in ("national", "municipal", "district",
                                                                        "registered", "excellent_historic")] +
           [("residential_compound", None), ("residential_compound", "built_year < 1990"),
            ("hydrant", "status = 'faulty'")])
DISTANCES = [0, 5, 10, 20, 30, 50, 80, 100]


def generate(folder: Path, n: int) -> tuple[str, str]:
    """``n`` distinct proximity rules with construction sites as subjects; the ids of the rule "an active site within
    10 m of a gas main" and of the heaviest (every site within 100 m of a water main)."""
    combos = list(itertools.islice(itertools.product(OBJECTS, DISTANCES, SUBJECTS), n))
    gas = combos.index((("pipeline", "kind = 'gas'"), 10, "status = 'active'"))
    heaviest = combos.index((("pipeline", "kind = 'water_supply'"), 100, None))
    for i, ((layer, flt), within, subject) in enumerate(combos):
        lines = [f"id: r{i:04d}", f"title_zh: 规则{i}", f"title_en: Rule {i}", "severity: medium",
                 "kind: proximity", "subject: {layer: construction_site" + (
                     f", filter: \"{subject}\"" if subject else "") + "}",
                 f"object: {{layer: {layer}" + (f", filter: \"{flt}\"" if flt else "") + "}",
                 f"within_m: {within}", "message: \"{subject} {object} {distance}\""]
        (folder / f"r{i:04d}.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return f"r{gas:04d}", f"r{heaviest:04d}"


def one_rule(path: Path, rules_dir: Path, heaviest: str) -> dict[str, object]:
    catalogue = load_catalogue(DEFAULT_LAYERS_DIR)
    indicators = load_indicators(DEFAULT_INDICATORS_DIR, catalogue)
    out: dict[str, object] = {}
    store = open_store(path, catalogue, create=False)
    try:
        vitals = VitalSigns(store, indicators, store.access(), follow=False)
        for folder, rule_id in ((DEFAULT_RULES_DIR, "site_near_gas_main"), (rules_dir, heaviest)):
            rules = load_rules(folder, catalogue, indicators)
            watch = Watch(store, rules, store.access(), vitals)
            started = time.perf_counter()
            with store.read(3600) as snap:
                found = watch.city_wide(snap, rules[rule_id])
            out[rule_id] = {"seconds": round(time.perf_counter() - started, 2), "pairs": len(found)}
            print(f"one rule city-wide, {rule_id}: {out[rule_id]}", flush=True)
    finally:
        store.close()
    return out


def many_rules(path: Path, rules_dir: Path, edits: int, gas_rule: str) -> dict[str, object]:
    catalogue = load_catalogue(DEFAULT_LAYERS_DIR)
    indicators = load_indicators(DEFAULT_INDICATORS_DIR, catalogue)
    rules = load_rules(rules_dir, catalogue, indicators)
    store = open_store(path, catalogue, create=False)
    out: dict[str, object] = {"rules": len(rules)}
    rng = np.random.default_rng(5)
    try:
        watch = Watch(store, rules, store.access(), VitalSigns(store, indicators, store.access(), follow=False))
        started = time.perf_counter()
        watch.sync("construction_site")
        out["first_evaluation_s"] = round(time.perf_counter() - started, 1)
        out["alerts_open"] = len(watch.alerts(status=("open",), limit=10_000_000))
        print(f"{len(rules)} rules evaluated city-wide in {out['first_evaluation_s']} s: "
              f"{out['alerts_open']:,} alerts open", flush=True)
        sites = store.features("construction_site")
        active = sites[sites.status == "active"].key.tolist()
        gas = store.features("pipeline", limit=20_000)
        gas = gas[gas.kind == "gas"]
        follow, checked = [], 0
        for i in range(edits):
            key = str(active[int(rng.integers(0, len(active)))])
            if i % 2 == 0:  # moved to 3 m beside a gas main
                main = gas.geometry.iloc[int(rng.integers(0, len(gas)))]
                x, y = main.interpolate(0.5, normalized=True).coords[0]
                dx = 3 / (111_195 * np.cos(np.radians(y)))
                site = store.get(key).geometry.iloc[0]
                w = site.bounds[2] - site.bounds[0]
                h = site.bounds[3] - site.bounds[1]
                store.edit(key, author="bench", geometry=box(x + dx, y - h / 2, x + dx + w, y + h / 2),
                           properties={"status": "active"})
            else:
                store.edit(key, author="bench", properties={"status": "completed"})
            t = time.perf_counter()
            watch.sync("construction_site")
            follow.append(time.perf_counter() - t)
            mine = [a for a in watch.alerts(rule=gas_rule, status=("open",), limit=100_000) if a["subject"] == key]
            checked += (len(mine) > 0) == (i % 2 == 0)  # an active site within 10 m of a gas main
        out["after_edit"] = {**pct(follow), "p99_ms": round(float(np.percentile(np.array(follow) * 1000, 99)), 1)}
        out["edits_checked"] = f"{checked} of {edits}"
        print(f"an edited site -> alerts of {len(rules)} rules raised or closed: {out['after_edit']} "
              f"(alert present as expected after {checked} of {edits} edits)", flush=True)
    finally:
        store.close()
    return out


def status_rules(path: Path, batches: int) -> dict[str, object]:
    catalogue = load_catalogue(DEFAULT_LAYERS_DIR)
    indicators = load_indicators(DEFAULT_INDICATORS_DIR, catalogue)
    rules = load_rules(DEFAULT_RULES_DIR, catalogue, indicators)
    store = open_store(path, catalogue, create=False)
    rng = np.random.default_rng(9)
    try:
        vitals = VitalSigns(store, indicators, store.access(), follow=False)
        watch = Watch(store, rules, store.access(), vitals)
        vitals.keeper.sync("hydrant")
        watch.sync("hydrant")
        keys = store.features("hydrant", limit=300_000).key.tolist()
        spent = []
        for b in range(batches):
            moment = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{b:06d}Z"
            picked = rng.choice(len(keys), 10_000, replace=False)
            reports = [Report(n + 1, keys[j], str(rng.choice(["in_service", "faulty", "under_repair"], p=[.6, .3, .1])),
                              {}, moment, "bench") for n, j in enumerate(picked)]
            store.report("hydrant", reports, author="bench")
            t = time.perf_counter()
            vitals.keeper.sync("hydrant")  # the indicators of hydrants, then the indicator rules on them
            watch.sync("hydrant")
            spent.append(time.perf_counter() - t)
        alerts = len(watch.alerts(rule="hydrant_faults_in_committee", limit=1_000_000))
    finally:
        store.close()
    per_s = 10_000 / float(np.mean(spent))
    print(f"10,000 status reports -> indicators and status rules followed: {pct(spent)}; "
          f"{per_s:,.0f} reports/s of follower time; {alerts:,} committee alerts raised", flush=True)
    return {"after_batch": pct(spent), "reports_per_s": round(per_s), "alerts": alerts}


def over_http(path: Path, requests: int) -> dict[str, object]:
    token = token_for(path, "bench-admin", "admin")
    proc, url = serve(path)
    rng = np.random.default_rng(13)
    orders, choropleth, drill = [], [], []
    try:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=120) as http:
            http.get("/indicators").raise_for_status()
            for _ in range(requests):
                lon, lat = rng.uniform(121.40, 121.55), rng.uniform(31.15, 31.30)
                t = time.perf_counter()
                r = http.post("/work-orders", json={"lon": lon, "lat": lat, "title": "bench"})
                orders.append(time.perf_counter() - t)
                assert r.status_code in (201, 400), r.text
            every = load_indicators(DEFAULT_INDICATORS_DIR, load_catalogue(DEFAULT_LAYERS_DIR))
            three = [i for i in every if len(every[i].spec.levels) == 3][:3]  # those drilled down to committees
            for ind in three:
                for _ in range(requests // 6):
                    t = time.perf_counter()
                    top = http.get(f"/indicators/{ind}", params={"level": "district", "f": "geojson"}).json()
                    choropleth.append(time.perf_counter() - t)
                    district = top["features"][int(rng.integers(0, len(top["features"])))]["id"]
                    t = time.perf_counter()
                    subs = http.get(f"/indicators/{ind}", params={"level": "subdistrict", "parent": district,
                                                                  "f": "geojson"}).json()
                    drill.append(time.perf_counter() - t)
                    sub = subs["features"][int(rng.integers(0, len(subs["features"])))]["id"]
                    t = time.perf_counter()
                    http.get(f"/indicators/{ind}", params={"level": "committee", "parent": sub, "f": "geojson"}
                             ).raise_for_status()
                    drill.append(time.perf_counter() - t)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    out = {"work_order": pct(orders), "choropleth": pct(choropleth), "drill_down": pct(drill)}
    print(f"over HTTP: a work order with its area and 5 nearest hydrants {out['work_order']}; a district "
          f"choropleth {out['choropleth']}; a drill-down {out['drill_down']}", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--store", type=Path, required=True)
    ap.add_argument("--rules", type=int, default=1000)
    ap.add_argument("--edits", type=int, default=60)
    ap.add_argument("--batches", type=int, default=10)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--parts", default="one,many,status,http", help="which parts to run (comma-separated)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    print(machine.describe(), flush=True)
    path = copy(args.store, rebuild=False, name="rules-scratch")
    result: dict[str, object] = {"machine": machine.describe(), "store": str(args.store), "time_format": TIME_FORMAT}
    with tempfile.TemporaryDirectory() as tmp:
        rules_dir = Path(tmp)
        gas_rule, heaviest = generate(rules_dir, args.rules)
        if "one" in parts:
            result["one_rule"] = one_rule(path, rules_dir, heaviest)
        if "many" in parts:
            result["many_rules"] = many_rules(path, rules_dir, args.edits, gas_rule)
    if "status" in parts:
        result["status_rules"] = status_rules(path, args.batches)
    if "http" in parts:
        result["http"] = over_http(path, args.requests)
    save(result, "rules", args.json)


if __name__ == "__main__":
    sys.exit(main())
