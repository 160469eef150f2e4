"""The access policy file: the packaged default, what roles allow, and errors that name the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from twin.access import load_policy
from twin.access.policy import DEFAULT_POLICY, ScopeRule
from twin.catalogue import Catalogue
from twin.errors import AccessConfigError

GOOD = """
area_layers: [district, subdistrict, committee]
public_layers: [district]
token_days: 30
roles:
  admin:    {read: "*", write: "*", unmask: "*", manage: true}
  planner:  {read: "*"}
  roads:    {read: [hydrant, pipeline], write: [hydrant]}
  carer:    {read: "*", unmask: [residential_compound.contact_phone, committee.*], scope: required}
"""


def _load(tmp_path: Path, catalogue: Catalogue, text: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    return load_policy(path, catalogue)


def test_the_packaged_policy_has_the_five_roles(catalogue: Catalogue) -> None:
    policy = load_policy(None, catalogue)
    assert set(policy.roles) == {"admin", "gis_editor", "planner", "area_officer", "app"}
    assert policy.area_layers == ("district", "subdistrict", "committee") and policy.public_layers == ()
    compound = catalogue["residential_compound"]
    assert policy.role("admin").unmasked(compound) == {"property_manager", "contact_phone"}
    assert policy.role("admin").manage and not policy.role("planner").manage
    for role in ("gis_editor", "planner", "area_officer", "app"):
        assert policy.role(role).unmasked(compound) == frozenset(), role
    assert policy.role("gis_editor").writes("hydrant") and not policy.role("planner").writes("hydrant")
    assert policy.role("area_officer").scope is ScopeRule.required
    assert policy.role("app").scope is ScopeRule.optional and policy.role("planner").scope is ScopeRule.none
    assert DEFAULT_POLICY.name == "policy.yaml"


def test_a_policy_sets_layers_and_fields_role_by_role(tmp_path: Path, catalogue: Catalogue) -> None:
    policy = _load(tmp_path, catalogue, GOOD)
    roads, carer = policy.role("roads"), policy.role("carer")
    assert roads.reads("hydrant") and roads.reads("pipeline") and not roads.reads("residential_compound")
    assert roads.writes("hydrant") and not roads.writes("pipeline")
    assert carer.unmasked(catalogue["residential_compound"]) == {"contact_phone"}
    assert carer.unmasked(catalogue["committee"]) == {"secretary", "office_phone"}
    assert carer.unmasked(catalogue["construction_site"]) == frozenset()
    assert policy.public_layers == ("district",) and policy.token_days == 30


@pytest.mark.parametrize(("text", "where", "words"), [
    ("roles:\n  x: {read: [nope]}\n", "roles.x.read", "unknown layer 'nope'"),
    ("roles:\n  x: {write: [hydrant, nope]}\n", "roles.x.write", "unknown layer 'nope'"),
    ("roles:\n  x: {unmask: [nope.name]}\n", "roles.x.unmask", "unknown layer 'nope'"),
    ("roles:\n  x: {unmask: [hydrant.road]}\n", "roles.x.unmask", "hydrant has no sensitive field 'road'"),
    ("roles:\n  x: {unmask: [residential_compound.phone]}\n", "roles.x.unmask",
     "(it has: property_manager, contact_phone)"),
    ("roles:\n  x: {read: all}\n", "roles.x.read", 'give "*" or a list'),
    ("roles:\n  x: {scope: sometimes}\n", "roles.x.scope", "'none', 'optional' or 'required'"),
    ("roles:\n  x: {read: '*', colour: red}\n", "roles.x.colour", "Extra inputs are not permitted"),
    ("roles:\n  x: {manage: perhaps}\n", "roles.x.manage", "boolean"),
    ("roles:\n  'bad name': {read: '*'}\n", "roles.bad name.name", "pattern"),
    ("roles: {}\ntoken_days: 0\n", "token_days", "greater than or equal to 1"),
    ("roles: {}\narea_layers: [nope]\n", "area_layers/public_layers", "unknown layer 'nope'"),
    ("roles: {}\npublic_layers: [hydrant, nope]\n", "area_layers/public_layers", "unknown layer 'nope'"),
    ("roles: {}\nadmins: [me]\n", "admins", "Extra inputs are not permitted"),
    ("roles: [admin]\n", "", "needs a 'roles' mapping"),
    ("just text\n", "", "needs a 'roles' mapping"),
    ("roles: {x: {read: [hydrant}\n", "", "cannot read the access policy"),
])
def test_errors_name_the_file_and_the_field(tmp_path: Path, catalogue: Catalogue, text: str, where: str,
                                            words: str) -> None:
    with pytest.raises(AccessConfigError) as err:
        _load(tmp_path, catalogue, text)
    message = str(err.value)
    assert message.startswith(str(tmp_path / "policy.yaml") + ":"), message
    assert where in message and words in message, message


def test_a_missing_policy_file_is_named(tmp_path: Path, catalogue: Catalogue) -> None:
    with pytest.raises(AccessConfigError, match=r"nowhere\.yaml: cannot read the access policy"):
        load_policy(tmp_path / "nowhere.yaml", catalogue)


def test_an_unknown_role_is_named_with_the_known_ones(catalogue: Catalogue) -> None:
    with pytest.raises(AccessConfigError, match="unknown role 'boss'; roles: admin, gis_editor, planner"):
        load_policy(None, catalogue).role("boss")
