"""``build_map`` and ``twin map``: the components a notebook or report map draws, from a store or a service."""

from __future__ import annotations

import json
import re
from pathlib import Path

import folium
import pytest
import shapely
from typer.testing import CliRunner

from tests.maps.city import BOX, FAULTY_EVERY
from tests.maps.htmlrefs import loaded_refs
from twin.cli import app
from twin.errors import InvalidQueryError, StoreError
from twin.maps import build_map
from twin.store import Store


def has(html: str, text: str) -> bool:
    """Whether the page shows ``text`` (as markup, or JSON-escaped inside a script)."""
    return text in html or json.dumps(text)[1:-1] in html


def _geojson_layers(fmap: folium.Map) -> dict[str, dict]:
    """The GeoJSON data of each catalogue layer drawn on the map, by layer id."""
    out = {}
    for group in fmap._children.values():
        for child in getattr(group, "_children", {}).values():
            if isinstance(child, folium.GeoJson) and child.layer_name not in ("roads", None):
                out[child.layer_name] = child.data
    return out


def test_layers_bbox_and_filter_select_what_the_store_holds(city: Store) -> None:
    box = (121.465, 31.225, 121.485, 31.240)
    fmap = build_map(city, layers=["hydrant", "residential_compound"], bbox=box, filter="status = 'faulty'")
    drawn = _geojson_layers(fmap)
    expected = city.features("hydrant", bbox=box)
    expected = expected[expected["status"] == "faulty"]
    keys = {f["id"] for f in drawn["hydrant"]["features"]}
    assert keys == set(expected["key"]) and keys
    assert drawn["residential_compound"]["features"] == []  # no faulty compound exists
    assert all(f["properties"]["status_zh"] == "故障" for f in drawn["hydrant"]["features"])


def test_popups_use_chinese_titles_and_masked_personal_data(city: Store) -> None:
    fmap = build_map(city, layers=["residential_compound"])
    feats = _geojson_layers(fmap)["residential_compound"]["features"]
    assert len(feats) == city.count("residential_compound")
    managers = {f["properties"]["property_manager"] for f in feats}
    assert all(m.startswith("王") and set(m[1:]) == {"*"} for m in managers)  # 王小明3 -> 王****
    html = fmap.get_root().render()
    assert has(html, "小区名称") and has(html, "联系电话") and has(html, "位置编码")


def test_status_colours_come_from_the_catalogue(city: Store) -> None:
    html = build_map(city, layers=["hydrant"]).get_root().render()
    faulty = city.catalogue["hydrant"].style.status_colors["faulty"]
    assert f'"fillColor": "{faulty}"' in html
    n = city.count("hydrant")
    assert html.count('"status": "faulty"') == len(range(0, n, FAULTY_EVERY))


def test_a_filter_naming_a_missing_field_names_the_layer(city: Store) -> None:
    with pytest.raises(InvalidQueryError, match=r"layer pipeline: .*households"):
        build_map(city, layers=["residential_compound", "pipeline"], filter="households > 100")


def test_the_same_map_from_the_service(city: Store, city_url: str, tokens: dict[str, str]) -> None:
    layers = ["hydrant", "pipeline", "residential_compound"]
    from_store = _geojson_layers(build_map(city, layers=layers, bbox=BOX))
    from_api = _geojson_layers(build_map(city_url, layers=layers, bbox=BOX, token=tokens["planner"]))
    for layer in layers:
        assert [f["id"] for f in from_api[layer]["features"]] == [f["id"] for f in from_store[layer]["features"]]
        assert [f["properties"] for f in from_api[layer]["features"]] == [
            {**f["properties"], "api": city_url + f"/collections/{layer}/items/" + f["id"]}
            for f in from_store[layer]["features"]]  # masked alike
    api_props = from_api["hydrant"]["features"][0]["properties"]
    assert api_props["api"].startswith(city_url + "/collections/hydrant/items/HY-")


def test_a_service_map_holds_what_the_token_may_see(city: Store, city_url: str, tokens: dict[str, str],
                                                   area_key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWIN_TOKEN", tokens["area_officer"])  # as `twin map --source URL` reads it
    hydrants = _geojson_layers(build_map(city_url, layers=["hydrant"]))["hydrant"]["features"]
    area = city.get(area_key).geometry.iloc[0]
    inside = city.features("hydrant")
    inside = inside[shapely.intersects(area, inside.geometry.to_numpy())]
    assert sorted(f["id"] for f in hydrants) == sorted(inside["key"])
    admin = _geojson_layers(build_map(city_url, layers=["residential_compound"], token=tokens["admin"]))
    assert {f["properties"]["property_manager"] for f in admin["residential_compound"]["features"]} == {
        f"王小明{i}" for i in range(12)}  # unmasked for an administrator
    monkeypatch.delenv("TWIN_TOKEN")
    with pytest.raises(InvalidQueryError, match="401"):
        build_map(city_url, layers=["hydrant"])


def test_max_features_cuts_and_says_so(city: Store) -> None:
    fmap = build_map(city, layers=["street_light"], max_features=50)
    assert len(_geojson_layers(fmap)["street_light"]["features"]) == 50
    assert "仅显示前 50 个" in fmap.get_root().render()


def test_missing_store_and_unreachable_service_are_clear(target: str) -> None:
    with pytest.raises(StoreError, match="no store here"):
        build_map(target)
    with pytest.raises(StoreError, match="cannot be reached"):
        build_map("http://127.0.0.1:9/", layers=["hydrant"])


def test_twin_map_writes_a_self_contained_file(city_target: str, tmp_path: Path) -> None:
    out = tmp_path / "report" / "map.html"
    result = CliRunner().invoke(app, ["map", "--store", city_target, "--out", str(out), "--layer", "hydrant",
                                      "--layer", "pipeline,district", "--bbox", ",".join(map(str, BOX)),
                                      "--title", "黄浦区消火栓"])
    assert result.exit_code == 0, result.output
    html = out.read_text(encoding="utf-8")
    assert loaded_refs(html) == []
    assert "<b>黄浦区消火栓</b>" in html and has(html, "消火栓 Fire hydrant") and "<b>地下管线</b>" in html
    data = re.findall(r'"id": "(HY-[0-9a-z]{8}-\d+)"', html)
    assert len(set(data)) > 100


@pytest.mark.parametrize(("args", "message"), [
    (["--bbox", "121,31,120,32"], "min < max"),
    (["--layer", "nosuch"], "nosuch"),
    (["--filter", "kind = "], "filter"),
])
def test_twin_map_reports_bad_options(city_target: str, tmp_path: Path, args: list[str], message: str) -> None:
    out = tmp_path / "map.html"
    result = CliRunner().invoke(app, ["map", "--store", city_target, "--out", str(out), *args])
    assert result.exit_code == 1
    assert message in result.output
    assert not out.exists()


def test_legend_lists_layers_by_group(city: Store) -> None:
    html = build_map(city, layers=["hydrant", "district"]).get_root().render()
    legend = html[html.index("twin-legend"):]
    order = [legend.index(text) for text in ("市政设施", "消火栓", "行政区划", "<b>区</b> District")]
    assert order == sorted(order)
    json.dumps(_geojson_layers(build_map(city, layers=["district"])))  # plain JSON data, no fragments left
