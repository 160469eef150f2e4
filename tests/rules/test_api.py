"""Alerts and work orders over HTTP, on a served store of the run's engine: an active site next to a gas main raises
an alert with its explanation, in its committee only; the alert closes itself when the site completes; an order
opened from it goes to the right committee with the nearest hydrants, through its steps in order, seen and moved only
within that committee's chain, every act audited."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import geopandas as gpd
import httpx
import pytest
import shapely

from tests.api.conftest import running
from tests.conftest import hydrants
from tests.engines import fresh
from tests.rules.texts import gas_rule
from tests.users import add_user, bearer
from tests.vitals.cities import build_areas
from twin.catalogue import Catalogue
from twin.store import Store, open_store

RULE = gas_rule(10)
#: A site in the south-west committee, its east edge 5 m from a gas main running north-south.
SITE = shapely.box(121.405, 31.205, 121.410, 31.210)
GAS_X = 121.410 + 5 / (111_195 * 0.8563)


class Town:
    def __init__(self, url: str, target: str, tokens: dict[str, str], store: Store) -> None:
        self.url, self.target, self.tokens, self.store = url, target, tokens, store

    def get(self, path: str, who: str = "admin", **params: object) -> httpx.Response:
        return httpx.get(self.url + path, params=params, headers=bearer(self.tokens[who]), timeout=30)  # type: ignore

    def post(self, path: str, who: str = "admin", body: object = None) -> httpx.Response:
        return httpx.post(self.url + path, json=body, headers=bearer(self.tokens[who]), timeout=30)


@pytest.fixture(scope="module")
def town(tmp_path_factory: pytest.TempPathFactory, catalogue: Catalogue) -> Iterator[Town]:
    folder = tmp_path_factory.mktemp("rules_town")
    rules = folder / "rules"
    rules.mkdir()
    (rules / "site_near_gas.yaml").write_text(RULE, encoding="utf-8")
    with fresh(folder) as target:
        store = open_store(target, catalogue)
        build_areas(store)
        store.upsert("hydrant", hydrants(40, seed=3), author="t", source="t")
        store.upsert("construction_site", gpd.GeoDataFrame({"permit_no": ["沪建2026-001"], "status": ["active"]},
                                                           geometry=[SITE], crs="EPSG:4326"), author="t", source="t")
        store.upsert("pipeline", gpd.GeoDataFrame({"kind": ["gas"]}, geometry=[
            shapely.LineString([(GAS_X, 31.201), (GAS_X, 31.249)])], crs="EPSG:4326"), author="t", source="t")
        committees = store.features("committee").sort_values("key")
        home = committees[committees.intersects(SITE.centroid)].key.iloc[0]
        other = committees[committees.key != home].key.iloc[0]
        tokens = {"admin": add_user(target, "admin-r", "admin"),
                  "home": add_user(target, "officer-home", "area_officer", str(home)),
                  "other": add_user(target, "officer-other", "area_officer", str(other))}
        with running(target, rules=str(rules), indicators=str(folder / "none")) as url:
            yield Town(url, target, tokens, store)
        store.close()


def _wait(fn, what: str, seconds: float = 15):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = fn()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"never: {what}")


def _open_alerts(town: Town, who: str = "admin") -> list[dict[str, object]]:
    return town.get("/alerts", who).json()["alerts"]


def test_an_active_site_next_to_a_gas_main_raises_one_explained_alert_in_its_committee(town: Town) -> None:
    alerts = _wait(lambda: _open_alerts(town), "an alert")
    assert len(alerts) == 1
    a = alerts[0]
    assert a["rule"] == "site_near_gas" and a["severity"] == "high" and a["status"] == "open"
    assert a["distance"] == pytest.approx(5.0, abs=0.2)
    assert a["geometry"]["type"] == "LineString"  # the shortest line between the site and the main
    assert str(a["subject"]).startswith("CS-") and str(a["object"]).startswith("PL-")
    assert "米" in str(a["message"])
    assert [x["id"] for x in _open_alerts(town, "home")] == [a["id"]]
    assert _open_alerts(town, "other") == []  # not even a count outside one's area
    assert town.get(f"/alerts/{a['id']}", "other").status_code == 404
    geo = town.get("/alerts", f="geojson").json()
    assert geo["features"][0]["geometry"]["type"] == "LineString"
    rules = town.get("/rules").json()["rules"]
    assert rules[0]["withinM"] == 10


def test_a_work_order_from_the_alert_goes_to_its_committee_with_the_nearest_hydrants(town: Town) -> None:
    alert = _wait(lambda: _open_alerts(town), "an alert")[0]
    assert town.post(f"/alerts/{alert['id']}/acknowledge", "home").json()["status"] == "acknowledged"
    again = town.post(f"/alerts/{alert['id']}/acknowledge", "home")
    assert again.status_code == 409
    assert town.post(f"/alerts/{alert['id']}/close", "other").status_code == 404

    assert town.post("/work-orders", "other", {"alert": alert["id"]}).status_code == 404
    r = town.post("/work-orders", "home", {"alert": alert["id"], "note": "派往现场"})
    assert r.status_code == 201, r.text
    order = r.json()
    assert order["committee"] == alert["committee"] and order["status"] == "dispatched"
    assert order["subdistrict"] == alert["subdistrict"] and order["district"] == alert["district"]
    assert order["committeeName"] == alert["committeeName"] and str(order["committeeName"]).endswith("居委")
    assert len(order["resources"]) == 5
    distances = [x["distance_m"] for x in order["resources"]]
    assert distances == sorted(distances)
    frame = town.store.features("hydrant")
    point = shapely.Point(order["lon"], order["lat"])
    from twin.geodesy import distance_to_point
    nearest = sorted(distance_to_point(frame.geometry.values, point.x, point.y))[:5]
    assert distances == pytest.approx(nearest, abs=0.2)

    oid = order["id"]
    dispatched = _now()
    assert town.get(f"/work-orders/{oid}", "other").status_code == 404
    assert town.post(f"/work-orders/{oid}/accept", "other").status_code == 404  # outside the chain: refused
    assert town.post(f"/work-orders/{oid}/close", "home").status_code == 409  # not before it is accepted
    for action, status in (("accept", "accepted"), ("handle", "handling"), ("close", "closed")):
        step = town.post(f"/work-orders/{oid}/{action}", "home", {"note": action})
        assert step.status_code == 200 and step.json()["status"] == status
    done = town.get(f"/work-orders/{oid}", "home").json()
    assert [s["status"] for s in done["log"]] == ["dispatched", "accepted", "handling", "closed"]
    assert {s["by"] for s in done["log"]} == {"officer-home"}
    assert town.post(f"/work-orders/{oid}/close", "home").status_code == 409
    assert [o["id"] for o in town.get("/work-orders", "home").json()["workOrders"]] == [oid]
    assert town.get("/work-orders", "other").json()["workOrders"] == []
    then = town.get("/work-orders", "home", as_of=dispatched).json()["workOrders"]
    assert [(o["id"], o["status"], len(o["log"])) for o in then] == [(oid, "dispatched", 1)]
    stats = town.get("/work-orders/stats", "admin", level="committee").json()["areas"]
    assert [(s["key"], s["opened"], s["closed"]) for s in stats] == [(order["committee"], 1, 1)]
    assert stats[0]["medianMinutesToClose"] >= 0

    steps = town.get("/work-orders/events", "home").json()
    assert [(e["ref"], e["status"], e["by"]) for e in steps["events"]] == [
        (oid, "dispatched", "officer-home"), (oid, "accepted", "officer-home"), (oid, "handling", "officer-home"),
        (oid, "closed", "officer-home")]
    assert town.get("/work-orders/events", "other").json()["events"] == []  # not in their chain
    assert town.get("/work-orders/events", "home", after=steps["next"]).json()["events"] == []
    seen = town.get("/alerts/events", "home").json()["events"]
    assert [(e["ref"], e["status"]) for e in seen][:2] == [(alert["id"], "open"), (alert["id"], "acknowledged")]

    audit = _wait(lambda: town.store.access().read(
        "SELECT outcome, detail FROM {audit} WHERE action = 'work_order' ORDER BY id"), "the audit", 5)
    outcomes = [r[0] for r in audit]
    assert outcomes.count("ok") >= 4 and outcomes.count("rejected") >= 3


def test_orders_outside_every_area_or_the_officers_own_are_refused(town: Town) -> None:
    r = town.post("/work-orders", "admin", {"lon": 120.0, "lat": 30.0, "title": "河道漂浮物"})
    assert r.status_code == 400 and "outside every 居委" in r.json()["description"]
    r = town.post("/work-orders", "other", {"lon": 121.407, "lat": 31.207, "title": "井盖缺失"})
    assert r.status_code == 403
    assert town.post("/work-orders", "home", {"lon": 121.407, "lat": 31.207}).status_code == 400
    assert town.post("/work-orders/999/accept", "admin").status_code == 404
    for hostile in ({"alert": 10**30}, {"alert": -5}, {"lon": 1e308, "lat": 31.2, "title": "t"},
                    {"lon": 121.407, "lat": 31.207, "title": "井盖\x00缺失"}):
        assert town.post("/work-orders", "admin", hostile).status_code == 400, hostile  # never stored, never a 500
    assert town.post("/work-orders/1/teleport", "admin").status_code == 404
    assert httpx.get(town.url + "/alerts", timeout=30).status_code == 401


def _now() -> str:
    time.sleep(0.01)
    moment = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    time.sleep(0.01)
    return moment


def test_an_alert_closes_itself_when_the_site_is_completed(town: Town) -> None:
    alert = _wait(lambda: _open_alerts(town), "an alert")[0]
    before = _now()
    town.store.edit(str(alert["subject"]), author="t", properties={"status": "completed"})
    _wait(lambda: not _open_alerts(town), "the alert closed")
    closed = town.get(f"/alerts/{alert['id']}").json()
    assert closed["status"] == "closed" and closed["closed_by"] == "twin" and closed["closed_reason"] == "resolved"
    then = town.get("/alerts", as_of=before)  # the time bar's moment: open then, as it was then
    assert then.headers["Twin-As-Of"].startswith(before[:19])
    assert [a["id"] for a in then.json()["alerts"]] == [alert["id"]]
    town.store.edit(str(alert["subject"]), author="t", properties={"status": "active"})
    again = _wait(lambda: _open_alerts(town), "a new alert")
    assert len(again) == 1 and again[0]["id"] != alert["id"]  # a new condition, a new alert


def test_a_rule_file_that_does_not_validate_stops_start_up_naming_the_file_and_place(
        tmp_path: Path, catalogue: Catalogue) -> None:
    from twin.rules.spec import RulesConfigError, load_rules
    from twin.vitals.spec import Indicators
    cases = {
        RULE.replace("layer: pipeline", "layer: pipelines"): "field 'object.layer': no layer 'pipelines'",
        RULE.replace("kind = 'gas'", "knd = 'gas'"): "field 'object.filter'",
        RULE.replace("within_m: 10", "within_m: -1"): "field 'within_m'",
        RULE.replace("kind: proximity", "kind: indicator"): "an indicator rule needs",
    }
    for text, message in cases.items():
        folder = tmp_path / str(abs(hash(text)))
        folder.mkdir()
        (folder / "site_near_gas.yaml").write_text(text, encoding="utf-8")
        with pytest.raises(RulesConfigError) as err:
            load_rules(folder, catalogue, Indicators([]))
        assert "site_near_gas.yaml" in str(err.value) and message in str(err.value), str(err.value)
