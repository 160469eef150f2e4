"""Demo fixtures: the city model and its street network (built once), and one tiny demo twin per session.

The tiny twin is built through the real command line (``twin demo --scale tiny``) into a real store of this run's
engine; the tests that only read it share it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.engines import clone, drop, fresh
from twin.catalogue import Catalogue
from twin.cli import app
from twin.demo import SCALES
from twin.demo.city import City, load_city
from twin.demo.networks import Network, street_length_for
from twin.demo.streets import calibrate, make_blocks
from twin.store import Store, open_store

SEED = 7


@pytest.fixture(scope="session")
def city() -> City:
    return load_city()


@pytest.fixture(scope="session")
def network(city: City) -> Network:
    scale = calibrate(city, street_length_for(city, SCALES["full"].points))
    return Network(city, make_blocks(city, scale, SEED), SEED)


def build_tiny(target: str, folder: Path, seed: int = SEED, *extra: str) -> str:
    """Run ``twin demo --scale tiny`` into the store at ``target`` (its downloads cached in ``folder``); returns the
    command's output."""
    result = CliRunner().invoke(app, ["demo", "--scale", "tiny", "--seed", str(seed), "--store", target,
                                      "--cache", str(folder / "files"), *extra])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="session")
def tiny_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Where the shared tiny twin is (a path or a URL)."""
    folder = tmp_path_factory.mktemp("tiny")
    with fresh(folder, "demo") as target:
        build_tiny(target, folder)
        yield target


@pytest.fixture
def own_tiny(tmp_path: Path, tiny_target: str, catalogue: Catalogue) -> Iterator[str]:
    """A private copy of the tiny twin, for a test that changes it."""
    target = clone(tiny_target, tmp_path, catalogue, "demo")
    yield target
    drop(target)


@pytest.fixture(scope="session")
def tiny(tiny_target: str, catalogue: Catalogue) -> Iterator[Store]:
    st = open_store(tiny_target, catalogue, create=False)
    yield st
    st.close()
