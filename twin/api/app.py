"""The query service's app factory: ``create_app(settings)`` builds everything once, nothing at import."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from anyio import to_thread
from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse

from tiles import TileEngine
from twin import __version__
from twin.access import AccessSettings, Gate
from twin.access.redaction import install_log_redaction
from twin.api import auth, changes, deps, edits, errors, features, imports, maps, openapi, search, status, versions
from twin.api import vitals as vitals_api
from twin.api import watch as watch_api
from twin.api.consistency import Positions, read_after
from twin.api.head import HeadAsGet
from twin.api.render import html_response
from twin.api.tiles import tiles_router
from twin.catalogue import load_catalogue
from twin.query.changes import ChangeReader
from twin.query.search import QueryService
from twin.query.versions import History
from twin.rules.orders import WorkOrders
from twin.rules.spec import load_rules
from twin.rules.watch import Watch
from twin.settings import TwinSettings
from twin.store import open_store
from twin.vitals.service import VitalSigns
from twin.vitals.spec import load_indicators

log = logging.getLogger("twin.api")


def create_app(settings: TwinSettings | None = None) -> FastAPI:
    """The FastAPI app serving the store named by ``settings`` (read from ``TWIN_*`` variables when omitted), built
    once; each part gets its section of the settings."""
    cfg = settings if settings is not None else TwinSettings()
    svc = cfg.service
    install_log_redaction()  # no token reaches uvicorn's access log, twin's log or any other
    # a read connection per request thread, plus a few for the feed, the tile warm-up and the audit writer
    catalogue = load_catalogue(cfg.layers)
    indicators = load_indicators(cfg.indicators, catalogue)  # a file that does not validate stops start-up here
    rules = load_rules(cfg.rules, catalogue, indicators)
    store = open_store(cfg.store, catalogue, create=False, read=cfg.store_read, pool_size=svc.threads + 4)
    service = QueryService(store, budget_s=svc.query_budget_s)
    gate = Gate(store, AccessSettings.of(cfg))
    engine = TileEngine(store, cfg.tiles)
    vital = VitalSigns(store, indicators, gate.db)  # one access database for the gate and what twin derives
    watch = Watch(store, rules, gate.db, vital)
    vital.also(watch.layers(), watch.sync)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Requests allocate many short-lived dicts; moving the start-up heap out of the collector's
        # view and collecting the young generation less often takes the GC off the hot path.
        gc.collect()
        gc.freeze()
        gc.set_threshold(20_000, 20, 20)
        to_thread.current_default_thread_limiter().total_tokens = svc.threads
        store.follow()
        yield
        engine.close()
        vital.close()
        gate.close()
        store.close()

    app = FastAPI(title="twin · OGC API - Features", version=__version__, lifespan=lifespan,
                  openapi_url=None, docs_url=None, redoc_url=None, description=openapi.DESCRIPTION,
                  dependencies=[Depends(auth.authenticate), Depends(read_after), Depends(deps.known_parameters)])
    app.state.service = service
    app.state.changes = ChangeReader(store, budget_s=svc.query_budget_s)
    app.state.history = History(store, budget_s=svc.query_budget_s)
    app.state.gate = gate
    app.state.vitals = vital
    app.state.watch = watch
    app.state.orders = WorkOrders(store, gate.db)
    app.state.settings = cfg
    app.state.positions = Positions()
    errors.install(app)
    app.add_middleware(HeadAsGet)
    app.include_router(features.router)
    app.include_router(auth.router)
    app.include_router(search.router)
    app.include_router(imports.router)
    app.include_router(edits.router)
    app.include_router(changes.router)
    app.include_router(versions.router)
    app.include_router(status.router)
    app.include_router(vitals_api.router)
    app.include_router(watch_api.router)
    app.include_router(tiles_router(engine, cfg.city_bbox))
    maps.install(app, cfg.map)

    @app.get("/api.html", name="api_html", include_in_schema=False)
    def api_html(request: Request) -> HTMLResponse:
        return html_response("api.html", spec=app.openapi())

    openapi.install(app)
    return app
