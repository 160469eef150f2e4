"""The demo's people and phone numbers are visibly synthetic, reach no one, and are still served masked."""

from __future__ import annotations

from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from tests.demo.personal import (
    ALLOCATED_MOBILE_PREFIXES,
    FICTITIOUS_LANDLINE,
    FICTITIOUS_MOBILE,
    PERSONAL,
    SYNTHETIC_PERSON,
    assert_personal_data_is_fictitious,
)
from tests.users import add_user, bearer
from twin.api.app import create_app
from twin.demo import names
from twin.demo.rng import rng_for
from twin.settings import TwinSettings
from twin.store import Store


def test_every_demo_person_and_phone_is_fictitious(tiny: Store) -> None:
    assert_personal_data_is_fictitious(tiny)


def test_the_fictitious_mobile_range_is_no_allocated_code() -> None:
    assert not names.FICTITIOUS_MOBILE_PREFIX.startswith(ALLOCATED_MOBILE_PREFIXES)
    assert not any(p.startswith(names.FICTITIOUS_MOBILE_PREFIX) for p in ALLOCATED_MOBILE_PREFIXES)


@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 300))
def test_generated_people_and_phones_are_fictitious_for_any_seed(seed: int, n: int) -> None:
    rng = rng_for(seed, "personal")
    people, mobiles, landlines = names.people(rng, n), names.mobiles(rng, n), names.landlines(rng, n)
    assert all(SYNTHETIC_PERSON.fullmatch(p) for p in people.tolist())
    assert all(FICTITIOUS_MOBILE.fullmatch(m) for m in mobiles.tolist())
    assert not any(m.startswith(ALLOCATED_MOBILE_PREFIXES) for m in mobiles.tolist())
    assert all(FICTITIOUS_LANDLINE.fullmatch(t) for t in landlines.tolist())


def test_demo_personal_values_are_served_masked(tiny: Store, own_tiny: str) -> None:
    planner = bearer(add_user(own_tiny, "planner-1", "planner"))
    with TestClient(create_app(TwinSettings(store=own_tiny))) as client:
        for layer, (person, phone, _) in PERSONAL.items():
            stored = tiny.features(layer).set_index("key")
            r = client.get(f"/collections/{layer}/items", params={"limit": 10_000}, headers=planner)
            assert r.status_code == 200, r.text
            served = {f["id"]: f["properties"] for f in r.json()["features"]}
            assert set(served) == set(stored.index), layer
            for key, props in served.items():
                name, number = stored.at[key, person], stored.at[key, phone]
                assert props[person] == name[0] + "*" * (len(name) - 1), (layer, key)
                assert props[phone] == number[:3] + "*" * (len(number) - 7) + number[-4:], (layer, key)
                assert props[person] != name and props[phone] != number
