"""Fixtures of the map tests: a small demo-like twin (real districts and roads), in a store of this run's engine, and
a server over a copy of it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.engines import clone, drop, fresh
from tests.maps.city import build_city
from tests.maps.server import running
from tests.users import add_user
from twin.catalogue import Catalogue
from twin.store import Store, open_store


@pytest.fixture(scope="session")
def pristine_city(tmp_path_factory: pytest.TempPathFactory, catalogue: Catalogue) -> Iterator[str]:
    """The city as built, never changed again: the source of every copy (where it is: a path or a URL)."""
    with fresh(tmp_path_factory.mktemp("pristine"), "city") as target:
        build_city(target, catalogue).close()
        yield target


@pytest.fixture(scope="session")
def city_target(tmp_path_factory: pytest.TempPathFactory, pristine_city: str, catalogue: Catalogue) -> Iterator[str]:
    """The shared city: tests read it and add users to it."""
    target = clone(pristine_city, tmp_path_factory.mktemp("city"), catalogue, "city")
    yield target
    drop(target)


@pytest.fixture(scope="session")
def city(city_target: str, catalogue: Catalogue) -> Iterator[Store]:
    store = open_store(city_target, catalogue, create=False)
    yield store
    store.close()


#: The committee the area officer of the tests works for.
OFFICER_AREA = "和阳村委会"


@pytest.fixture(scope="session")
def area_key(city: Store) -> str:
    """The key of :data:`OFFICER_AREA`."""
    committees = city.features("committee")
    return str(committees[committees["name"] == OFFICER_AREA].iloc[0]["key"])


@pytest.fixture(scope="session")
def tokens(city_target: str, area_key: str) -> dict[str, str]:
    """A token for a user of each role of the shared city, by role; the area officer works for :data:`OFFICER_AREA`."""
    return {role: add_user(city_target, f"test-{role}", role, area_key if role == "area_officer" else None)
            for role in ("admin", "gis_editor", "planner", "area_officer")}


@pytest.fixture(scope="session")
def city_url(city_target: str) -> Iterator[str]:
    """A server over the shared city (read-only tests)."""
    with running(city_target) as url:
        yield url


@pytest.fixture
def own_city(tmp_path: Path, pristine_city: str, catalogue: Catalogue) -> Iterator[str]:
    """A private copy of the city, for tests that write."""
    target = clone(pristine_city, tmp_path, catalogue, "city")
    yield target
    drop(target)
