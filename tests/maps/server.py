"""A real uvicorn server over a store, in a thread on a free port, for the map and browser tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.serving import serving
from twin.api.app import create_app
from twin.settings import MapSettings, TwinSettings

#: Layers with more components than this are drawn from vector tiles in the tests (hydrants, street lights).
GEOJSON_MAX = 100


@contextmanager
def running(store: str | Path, map_settings: MapSettings | None = None, **settings: object) -> Iterator[str]:
    """Serve ``store`` (``settings``: more :class:`TwinSettings`); yields the base URL, then stops the server."""
    app = create_app(TwinSettings(store=store,
                                  map=map_settings or MapSettings(geojson_max=GEOJSON_MAX), **settings))
    with serving(app) as url:
        yield url
