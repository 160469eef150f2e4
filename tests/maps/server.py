"""A real uvicorn server over a store, in a thread on a free port, for the map and browser tests."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn

from twin.api.app import ServiceSettings, create_app
from twin.maps.basemap import MapSettings

#: Layers with more components than this are drawn from vector tiles in the tests (hydrants, street lights).
GEOJSON_MAX = 100


@contextmanager
def running(store: Path, map_settings: MapSettings | None = None) -> Iterator[str]:
    """Serve ``store``; yields the base URL and stops the server afterwards."""
    app = create_app(ServiceSettings(store=store, warm_index=False))
    app.state.map_settings = map_settings or MapSettings(geojson_max=GEOJSON_MAX)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
