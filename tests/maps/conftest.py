"""Fixtures of the map tests: a small demo-like twin (real districts and roads) and a server over a copy of it."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.maps.city import build_city
from tests.maps.server import running
from tests.users import add_user
from twin.catalogue import Catalogue
from twin.store import Store, open_store


@pytest.fixture(scope="session")
def pristine_city(tmp_path_factory: pytest.TempPathFactory, catalogue: Catalogue) -> Path:
    """The city as built, never opened again: the source of every copy."""
    path = tmp_path_factory.mktemp("pristine") / "city.gpkg"
    build_city(path, catalogue).close()
    return path


@pytest.fixture(scope="session")
def city_path(tmp_path_factory: pytest.TempPathFactory, pristine_city: Path) -> Path:
    path = tmp_path_factory.mktemp("city") / "city.gpkg"
    shutil.copy(pristine_city, path)
    return path


@pytest.fixture(scope="session")
def city(city_path: Path, catalogue: Catalogue) -> Iterator[Store]:
    store = open_store(city_path, catalogue, create=False)
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
def tokens(city_path: Path, area_key: str) -> dict[str, str]:
    """A token for a user of each role of the shared city, by role; the area officer works for :data:`OFFICER_AREA`."""
    return {role: add_user(city_path, f"test-{role}", role, area_key if role == "area_officer" else None)
            for role in ("admin", "gis_editor", "planner", "area_officer")}


@pytest.fixture(scope="session")
def city_url(city_path: Path) -> Iterator[str]:
    """A server over the shared city (read-only tests)."""
    with running(city_path) as url:
        yield url


@pytest.fixture
def own_city(tmp_path: Path, pristine_city: Path) -> Path:
    """A private copy of the city, for tests that write."""
    path = tmp_path / "city.gpkg"
    shutil.copy(pristine_city, path)
    return path
