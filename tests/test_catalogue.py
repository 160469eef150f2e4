"""The layer catalogue: the bundled layers, and clear errors for malformed files."""

from __future__ import annotations

from pathlib import Path

import pytest

from twin.catalogue import GeometryKind, MaskRule, load_catalogue
from twin.errors import CatalogueError, LayerNotFoundError
from twin.settings import DEFAULT_LAYERS_DIR

GOOD = """\
id: well
code: WE
title_zh: 水井
title_en: Well
group: infrastructure
geometry: point
fields:
  - {name: depth, type: float, unit: m}
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_bundled_catalogue_has_the_required_layers(catalogue):
    assert {"hydrant", "street_light", "pipeline", "construction_site", "residential_compound",
            "heritage_building", "district", "subdistrict", "committee"} <= set(catalogue)
    assert catalogue["pipeline"].geometry is GeometryKind.line
    kinds = catalogue["pipeline"].field("kind").values
    assert set(kinds) == {"water_supply", "drainage", "gas", "power", "telecom", "heat"}
    assert {"diameter", "material", "depth", "pressure_class", "owner"} <= set(catalogue["pipeline"].field_names)
    assert {"permit_no", "contractor", "start_date", "end_date"} <= set(catalogue["construction_site"].field_names)
    assert catalogue["residential_compound"].sensitive_fields == {
        "property_manager": MaskRule.name, "contact_phone": MaskRule.phone}
    assert {"protection_batch", "protection_level"} <= set(catalogue["heritage_building"].field_names)


def test_every_layer_has_titles_style_zoom_and_statuses(catalogue):
    for spec in catalogue.values():
        assert spec.title_zh and spec.title_en and spec.statuses
        assert spec.style.color.startswith("#") and 0 <= spec.min_zoom <= 22


def test_layer_codes_are_unique_and_resolve(catalogue):
    codes = [spec.code for spec in catalogue.values()]
    assert len(codes) == len(set(codes))
    assert catalogue.by_code("HY").id == "hydrant"


def test_unknown_layer_names_the_known_ones(catalogue):
    with pytest.raises(LayerNotFoundError, match=r"unknown layer 'nope'.*hydrant"):
        catalogue["nope"]


def test_adding_a_layer_is_adding_a_file(tmp_path):
    write(tmp_path, "well", GOOD)
    assert list(load_catalogue(tmp_path)) == ["well"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (GOOD.replace("geometry: point", "geometry: blob"), r"well.yaml: field 'geometry'"),
        (GOOD.replace("type: float", "type: decimal"), r"well.yaml: field 'fields\[0\] \(depth\).type'"),
        (GOOD.replace("code: WE", "code: w"), r"well.yaml: field 'code'"),
        (GOOD.replace("title_zh: 水井\n", ""), r"well.yaml: field 'title_zh'"),
        (GOOD.replace("name: depth", "name: status"), r"well.yaml: field 'fields\[0\].*reserved"),
        (GOOD + "colour: red\n", r"well.yaml: field 'colour'"),
        (GOOD.replace("id: well", "id: other"), r"well.yaml: field 'id'.*file name"),
        ("id: [unclosed", r"well.yaml: not valid UTF-8 YAML"),
        ("- just\n- a list\n", r"well.yaml: expected a mapping"),
        (GOOD + "identity: [serial]\n", r"well.yaml: field '\(top level\)'.*identity names 'serial'.*depth"),
    ],
)
def test_malformed_file_is_refused_naming_file_and_field(tmp_path, text, expected):
    write(tmp_path, "well", text)
    with pytest.raises(CatalogueError, match=expected):
        load_catalogue(tmp_path)


@pytest.mark.parametrize(("extra", "identity"), [("", ()), ("identity: [depth]\n", ("depth",)),
                                                  ("  - {name: name}\n", ("name",)),
                                                  ("  - {name: name}\nidentity: []\n", ())])
def test_identity_fields_default_to_name_and_may_be_declared(tmp_path, extra, identity):
    write(tmp_path, "well", GOOD + extra)
    assert load_catalogue(tmp_path)["well"].identity_fields == identity


def test_duplicate_code_names_both_files(tmp_path):
    write(tmp_path, "well", GOOD)
    write(tmp_path, "pump", GOOD.replace("id: well", "id: pump"))
    with pytest.raises(CatalogueError, match=r"well.yaml: field 'code': 'WE' is already used by pump.yaml"):
        load_catalogue(tmp_path)


def test_empty_or_missing_folder_is_refused(tmp_path):
    with pytest.raises(CatalogueError, match="no layer files"):
        load_catalogue(tmp_path)
    with pytest.raises(CatalogueError, match="not found"):
        load_catalogue(tmp_path / "missing")


def test_non_utf8_file_is_refused(tmp_path):
    (tmp_path / "well.yaml").write_bytes(GOOD.encode("gbk"))
    with pytest.raises(CatalogueError, match=r"well.yaml: not valid UTF-8"):
        load_catalogue(tmp_path)


def test_repository_catalogue_is_the_default():
    assert (DEFAULT_LAYERS_DIR / "hydrant.yaml").is_file()
