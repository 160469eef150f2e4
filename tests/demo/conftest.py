"""Demo fixtures: the city model and its street network (built once), and one tiny demo twin per session.

The tiny twin is built through the real command line (``twin demo --scale tiny``) into a real
GeoPackage store; the tests that only read it share it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

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


def build_tiny(folder: Path, seed: int = SEED, *extra: str) -> tuple[Path, str]:
    """Run ``twin demo --scale tiny`` into ``folder``; returns the store path and the command's output."""
    path = folder / "demo.gpkg"
    result = CliRunner().invoke(app, ["demo", "--scale", "tiny", "--seed", str(seed), "--store", str(path),
                                      "--cache", str(folder / "files"), *extra])
    assert result.exit_code == 0, result.output
    return path, result.output


@pytest.fixture(scope="session")
def tiny_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny(tmp_path_factory.mktemp("tiny"))[0]


@pytest.fixture(scope="session")
def tiny(tiny_path: Path, catalogue: Catalogue) -> Iterator[Store]:
    st = open_store(tiny_path, catalogue, create=False)
    yield st
    st.close()
