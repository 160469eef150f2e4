"""Shared fixtures: the repository's catalogue and real, small stores of this run's engine (``tests/engines.py``)."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import settings

from tests.engines import fresh
from twin.catalogue import Catalogue, load_catalogue
from twin.query.versions import as_of_stamp
from twin.settings import DEFAULT_LAYERS_DIR
from twin.store import Store, open_store

# Property tests explore new examples on every developer run; CI replays a fixed sequence so that a green
# submission cannot turn red by chance (failures found locally are kept in .hypothesis/). No deadlines: on a
# shared 2-core machine a first call that builds a parser or a cache takes longer, which is no failure.
settings.register_profile("ci", derandomize=True, deadline=None)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture(scope="session")
def catalogue() -> Catalogue:
    return load_catalogue(DEFAULT_LAYERS_DIR)


@pytest.fixture
def target(tmp_path: Path) -> Iterator[str]:
    """Where a new store of this run's engine goes (``tests/engines.py``); a PostGIS schema is dropped afterwards."""
    with fresh(tmp_path) as where:
        yield where


@pytest.fixture
def store(target: str, catalogue: Catalogue) -> Iterator[Store]:
    """A new, empty store of this run's engine."""
    st = open_store(target, catalogue)
    yield st
    st.close()


@pytest.fixture(scope="session")
def twin_target(tmp_path_factory: pytest.TempPathFactory, catalogue: Catalogue) -> Iterator[str]:
    """The small twin of :func:`tests.query.twin_fixture.build_twin`, built once per test worker and shared by the
    tests that only read its components (some add users to it)."""
    from tests.query.twin_fixture import build_twin

    with fresh(tmp_path_factory.mktemp("twin")) as target:
        build_twin(target, catalogue).close()
        yield target


def hydrants(n: int, seed: int = 0, *, box: tuple[float, float, float, float] = (121.40, 31.20, 121.50, 31.30),
             kind: str = "above_ground") -> gpd.GeoDataFrame:
    """``n`` random hydrants inside ``box`` (lon/lat)."""
    rng = np.random.default_rng(seed)
    x = box[0] + rng.random(n) * (box[2] - box[0])
    y = box[1] + rng.random(n) * (box[3] - box[1])
    return gpd.GeoDataFrame(
        {"kind": [kind] * n, "outlet_diameter": rng.choice([65, 100, 150], n).tolist(),
         "road": [f"测试路{i % 7}号" for i in range(n)]},
        geometry=shapely.points(x, y), crs="EPSG:4326",
    )


def moment() -> str:
    """Now, a few milliseconds apart from the writes before and after, as an ``as_of`` store time."""
    time.sleep(0.003)
    stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    time.sleep(0.003)
    return as_of_stamp(stamp)


CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """Debian's headless Chromium, driven by Playwright; one per test worker (Playwright's sync API allows one)."""
    playwright_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.skip("Chromium is not installed (scripts/system-packages installs it)")
    args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--no-first-run"]
    with playwright_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=args)
        yield chromium
        chromium.close()


@pytest.fixture
def fresh_store(catalogue: Catalogue) -> Callable[[], Iterator[Store]]:
    """Makes a new, empty store of this run's engine per call (``for store in fresh_store(): ...``), for tests
    that need one per hypothesis example; each is dropped when its loop ends."""

    def make() -> Iterator[Store]:
        with tempfile.TemporaryDirectory() as tmp, fresh(Path(tmp)) as target:
            store = open_store(target, catalogue)
            try:
                yield store
            finally:
                store.close()

    return make
