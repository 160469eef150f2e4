"""A real uvicorn server over a store, in a thread on a free port, for the map and browser tests; and its users."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.serving import serving
from twin.access import AccessSettings, Gate
from twin.api.app import ServiceSettings, create_app
from twin.catalogue import load_catalogue
from twin.maps.basemap import MapSettings
from twin.settings import DEFAULT_LAYERS_DIR
from twin.store import open_store

#: Layers with more components than this are drawn from vector tiles in the tests (hydrants, street lights).
GEOJSON_MAX = 100


@contextmanager
def running(store: Path, map_settings: MapSettings | None = None, **settings: object) -> Iterator[str]:
    """Serve ``store`` (``settings``: more :class:`ServiceSettings`); yields the base URL, then stops the server."""
    app = create_app(ServiceSettings(store=store, warm_index=False, **settings))
    app.state.map_settings = map_settings or MapSettings(geojson_max=GEOJSON_MAX)
    with serving(app) as url:
        yield url


def add_user(store: Path, name: str, role: str, area: str | None = None, *, layers: Path = DEFAULT_LAYERS_DIR,
             policy: Path | None = None) -> str:
    """Create a user in the access database beside ``store`` (as ``twin user add`` does); returns the token."""
    opened = open_store(store, load_catalogue(layers), create=False)
    gate = Gate(opened, AccessSettings(policy=policy))
    try:
        return gate.add_user(name, role, area)
    finally:
        gate.close()
        opened.close()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
