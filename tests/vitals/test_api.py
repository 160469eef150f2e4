"""The vital signs over HTTP, on a served store of the run's engine: per level, as of a past instant, drilled down to
the components behind a number, and never beyond the reader's area (not even as a count)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import running
from tests.conftest import hydrants
from tests.engines import fresh
from tests.users import add_user, bearer
from tests.vitals.cities import build_areas, write_indicators
from twin.catalogue import Catalogue
from twin.store import open_store


class City:
    def __init__(self, url: str, target: str, tokens: dict[str, str], committee: str, other: str,
                 before: str) -> None:
        self.url, self.target, self.tokens = url, target, tokens
        self.committee, self.other, self.before = committee, other, before

    def get(self, path: str, who: str = "admin", **params: object) -> httpx.Response:
        return httpx.get(self.url + path, params=params, headers=bearer(self.tokens[who]), timeout=30)  # type: ignore


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory, catalogue: Catalogue) -> Iterator[City]:
    folder = tmp_path_factory.mktemp("vitals_city")
    indicators = write_indicators(folder / "indicators")
    with fresh(folder) as target:
        store = open_store(target, catalogue)
        build_areas(store)
        frame = hydrants(40, seed=5)
        frame["road"] = ["旧路" if i % 3 == 0 else "新路" for i in range(40)]
        store.upsert("hydrant", frame, author="t", source="t")
        time.sleep(0.01)
        before = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        time.sleep(0.01)
        more = hydrants(20, seed=6)
        more["road"] = ["旧路"] * 20
        store.upsert("hydrant", more, author="t", source="t")
        committees = store.features("committee").sort_values("key")
        committee, other = str(committees.key.iloc[0]), str(committees.key.iloc[-1])
        store.close()
        tokens = {"admin": add_user(target, "admin-v", "admin"),
                  "officer": add_user(target, "officer-v", "area_officer", committee)}
        with running(target, indicators=str(indicators), rules=str(folder / "no-rules")) as url:
            yield City(url, target, tokens, committee, other, before)


def _wait_kept(city: City, indicator: str) -> None:
    for _ in range(100):
        r = city.get(f"/indicators/{indicator}", level="district")
        if r.status_code == 200 and r.json()["changeset"] > 0:
            return
        time.sleep(0.1)
    raise AssertionError("the indicator was never kept")


def test_the_list_names_each_indicator_with_its_levels_and_thresholds(city: City) -> None:
    body = city.get("/indicators").json()
    ids = {i["id"] for i in body["indicators"]}
    assert ids == {"old_road", "big_outlets", "mean_outlet", "hydrant_density", "gas_km"}
    one = next(i for i in body["indicators"] if i["id"] == "mean_outlet")
    assert one["levels"] == ["subdistrict", "committee"]
    assert one["thresholds"]["higherIsWorse"] is False
    assert [lv["id"] for lv in body["levels"]] == ["district", "subdistrict", "committee"]


def test_districts_add_up_their_committees_and_each_number_drills_down_to_its_components(city: City) -> None:
    _wait_kept(city, "old_road")
    districts = city.get("/indicators/old_road", level="district").json()
    committees = city.get("/indicators/old_road", level="committee").json()
    assert len(districts["areas"]) == 2 and len(committees["areas"]) == 8
    assert sum(a["value"] for a in districts["areas"]) == sum(a["value"] for a in committees["areas"]) == 34
    for area in committees["areas"]:
        items = httpx.get(area["links"][0]["href"] + "&limit=1000", headers=bearer(city.tokens["admin"]),
                          timeout=30).json()
        assert len(items["features"]) == area["value"]
        assert all(f["properties"]["road"] == "旧路" for f in items["features"])
        band = "warning" if area["value"] >= 4 else "attention" if area["value"] >= 2 else "normal"
        assert area["band"] == band
    first = districts["areas"][0]
    down = httpx.get(first["links"][1]["href"], headers=bearer(city.tokens["admin"]), timeout=30).json()
    assert down["level"] == "subdistrict" and {a["parent"] for a in down["areas"]} == {first["key"]}
    assert sum(a["value"] for a in down["areas"]) == first["value"]


def test_as_of_a_past_instant_gives_the_values_as_they_were(city: City) -> None:
    _wait_kept(city, "old_road")
    then = city.get("/indicators/old_road", level="district", as_of=city.before)
    assert then.status_code == 200 and then.headers["Twin-As-Of"].startswith(city.before[:19])
    assert sum(a["value"] for a in then.json()["areas"]) == 14  # before the 20 on the old road were added


def test_a_choropleth_carries_each_area_outline_and_colour(city: City) -> None:
    _wait_kept(city, "hydrant_density")
    r = city.get("/indicators/hydrant_density", level="subdistrict", f="geojson")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/geo+json")
    body = r.json()
    assert len(body["features"]) == 4
    for feature in body["features"]:
        assert feature["geometry"]["type"] == "Polygon"
        assert feature["properties"]["color"].startswith("#")


def test_an_officer_sees_only_their_committee_and_nothing_above_it(city: City) -> None:
    _wait_kept(city, "old_road")
    mine = city.get("/indicators/old_road", "officer", level="committee").json()
    assert [a["key"] for a in mine["areas"]] == [city.committee]
    assert [lv["id"] for lv in city.get("/indicators", "officer").json()["levels"]] == ["committee"]
    for level in ("district", "subdistrict"):
        r = city.get("/indicators/old_road", "officer", level=level)
        assert r.status_code == 403 and "居委" in r.json()["description"]
    r = city.get("/indicators/old_road", "officer", level="committee", parent=city.other)
    assert r.status_code == 200 and r.json()["areas"] == []  # another committee: not a count, not a name
    # the drill-down past one's own area gives nothing outside it
    outside = city.get("/collections/hydrant/items", "officer", area=city.other, limit=1000).json()
    assert outside["features"] == []


def test_bad_requests_are_4xx_that_say_what_was_wrong(city: City) -> None:
    assert city.get("/indicators/nope").status_code == 404
    r = city.get("/indicators/old_road", level="city")
    assert r.status_code == 400 and "levels are" in r.json()["description"]
    r = city.get("/indicators/mean_outlet", level="district")
    assert r.status_code == 400 and "subdistrict, committee" in r.json()["description"]
    r = city.get("/indicators/old_road", as_of="yesterday")
    assert r.status_code == 400
    r = city.get("/indicators/old_road", parent="HY-nothere")
    assert r.status_code == 400
    assert city.get("/collections/hydrant/items", area="HY-nothere").status_code == 400
    assert httpx.get(city.url + "/indicators/old_road", timeout=30).status_code in (401, 404)


def test_a_change_reaches_the_indicator_within_seconds(city: City, catalogue: Catalogue) -> None:
    _wait_kept(city, "old_road")
    before = sum(a["value"] for a in city.get("/indicators/old_road", level="district").json()["areas"])
    store = open_store(city.target, catalogue, create=False)
    try:
        key = str(store.features("hydrant").query("road == '新路'").key.iloc[0])
        store.edit(key, author="t", properties={"road": "旧路"})
    finally:
        store.close()
    started = time.monotonic()
    while time.monotonic() - started < 10:
        now = sum(a["value"] for a in city.get("/indicators/old_road", level="district").json()["areas"])
        if now == before + 1:
            return
        time.sleep(0.1)
    raise AssertionError(f"old_road still {now}, expected {before + 1}")


def test_an_indicator_file_that_does_not_validate_stops_start_up_naming_the_file_and_place(
        tmp_path: Path, catalogue: Catalogue) -> None:
    from twin.vitals.spec import VitalsConfigError, load_indicators
    cases = {
        "layer: hydrnt": "field 'layer': no layer 'hydrnt'",
        "filter: \"roda = 'x'\"": "field 'filter'",
        "filter: \"road = \"": "field 'filter'",
        "measure: sum\nfield: road": "field 'field': 'road' is string",
        "measure: mean\nfield: nothing": "field 'field': layer hydrant has no field 'nothing'",
        "measure: length": "only lines have a length",
        "levels: [city]": "unknown level 'city'",
        "thresholds: {attention: 5, warning: 2}": "warning must not be below attention",
    }
    base = {"id": "x", "title_zh": "x", "title_en": "x", "category": "x", "layer": "hydrant",
            "thresholds": "{attention: 1, warning: 2}"}
    for change, message in cases.items():
        folder = tmp_path / str(abs(hash(change)))
        folder.mkdir()
        key = change.split(":")[0]
        text = "\n".join(f"{k}: {v}" for k, v in base.items() if k != key) + "\n" + change + "\n"
        (folder / "x.yaml").write_text(text, encoding="utf-8")
        with pytest.raises(VitalsConfigError) as err:
            load_indicators(folder, catalogue)
        assert "x.yaml" in str(err.value) and message in str(err.value), (change, str(err.value))
    folder = tmp_path / "levels"
    folder.mkdir()
    (folder / "x.yaml").write_text("id: x\ntitle_zh: x\ntitle_en: x\ncategory: x\nlayer: committee\n"
                                   "levels: [committee]\nthresholds: {attention: 1, warning: 2}\n", encoding="utf-8")
    with pytest.raises(VitalsConfigError, match=r"x\.yaml: field 'levels\.0': committee components cannot be grouped"):
        load_indicators(folder, catalogue)


def test_an_indicator_never_kept_is_not_ready_rather_than_zero(store, catalogue: Catalogue, tmp_path: Path) -> None:
    from twin.errors import NotReadyError
    from twin.vitals.service import VitalSigns
    from twin.vitals.spec import load_indicators
    build_areas(store)
    signs = VitalSigns(store, load_indicators(write_indicators(tmp_path), catalogue), store.access(), follow=False)
    with pytest.raises(NotReadyError, match="first time"):
        signs.read(signs.indicator("old_road"), "district")
    signs.sync()
    assert [a.value for a in signs.read(signs.indicator("old_road"), "district").areas] == [0.0, 0.0]
