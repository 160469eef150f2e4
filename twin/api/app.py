"""The query service's app factory: ``create_app(settings)`` builds everything once, nothing at import."""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from anyio import to_thread
from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse
from pydantic import Field

from tiles import TileEngine
from twin import __version__
from twin.access import AccessSettings, Gate, OidcSettings
from twin.access.redaction import install_log_redaction
from twin.api import auth, deps, errors, features, imports, maps, openapi, search
from twin.api.render import html_response
from twin.api.tiles import tiles_router
from twin.catalogue import load_catalogue
from twin.query.search import QueryService
from twin.settings import TwinSettings
from twin.store import open_store

log = logging.getLogger("twin.api")


class ServiceSettings(TwinSettings):
    """Settings of the query service, on top of the store's (``TWIN_QUERY_BUDGET_S=1.5`` ...)."""

    query_budget_s: float = Field(2.0, gt=0, description="Longest a single query may run before a 400.")
    max_upload_mb: int = Field(200, gt=0, description="Largest file accepted by POST .../import.")
    import_enabled: bool = Field(True, description="Accept POST .../import (turn off on a read-only service).")
    warm_index: bool = Field(True, description="Build the nearest-k index of every layer at start-up.")
    threads: int = Field(16, ge=1, le=256, description="Requests served at once per process (each thread keeps "
                                                        "its own read connections, so this bounds memory).")
    host: str = Field("127.0.0.1", description="Address `twin serve` listens on.")
    port: int = Field(8000, ge=1, le=65535, description="Port `twin serve` listens on.")
    oidc_jwks: str | None = Field(None, description="OIDC mode: the provider's JWKS (file path or intranet URL); "
                                                    "with issuer and audience, its JWTs are accepted as tokens.")
    oidc_issuer: str | None = Field(None, description="OIDC mode: the required `iss` claim.")
    oidc_audience: str | None = Field(None, description="OIDC mode: the required `aud` claim.")
    oidc_role_claim: str = Field("twin_role", description="OIDC mode: the claim holding the role(s).")
    oidc_area_claim: str = Field("twin_area", description="OIDC mode: the claim holding the area key.")
    oidc_role_map: dict[str, str] = Field(default_factory=dict, description="OIDC mode: the provider's role names "
                                          'to twin\'s, as JSON: {"gis-admins": "admin"}.')

    def access(self) -> AccessSettings:
        """The gate's settings; OIDC only when JWKS, issuer and audience are all given."""
        oidc = None
        parts = (self.oidc_jwks, self.oidc_issuer, self.oidc_audience)
        if any(parts):
            if not all(parts):
                raise ValueError("OIDC mode needs TWIN_OIDC_JWKS, TWIN_OIDC_ISSUER and TWIN_OIDC_AUDIENCE together")
            oidc = OidcSettings(jwks=str(self.oidc_jwks), issuer=str(self.oidc_issuer),
                                audience=str(self.oidc_audience), role_claim=self.oidc_role_claim,
                                area_claim=self.oidc_area_claim, role_map=dict(self.oidc_role_map))
        return AccessSettings(db=self.access_db, policy=self.access_policy, oidc=oidc)


def _warm(service: QueryService) -> None:
    for layer in service.catalogue:
        try:
            service.store.warm(layer)
        except Exception:  # a background warm-up must never kill the service; look-ups will retry
            log.exception("warming the index of %s failed", layer)


def create_app(settings: TwinSettings | None = None) -> FastAPI:
    """The FastAPI app serving the store named by ``settings`` (from ``TWIN_*`` variables when omitted)."""
    cfg = settings if isinstance(settings, ServiceSettings) else ServiceSettings(
        **(settings.model_dump() if settings is not None else {}))
    install_log_redaction()  # no token reaches uvicorn's access log, twin's log or any other
    store = open_store(cfg.store, load_catalogue(cfg.layers), create=False)
    service = QueryService(store, budget_s=cfg.query_budget_s)
    gate = Gate(store, cfg.access())
    engine = TileEngine(store)  # tile settings come from TWIN_TILES_* variables

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Requests allocate many short-lived dicts; moving the start-up heap out of the collector's
        # view and collecting the young generation less often takes the GC off the hot path.
        gc.collect()
        gc.freeze()
        gc.set_threshold(20_000, 20, 20)
        to_thread.current_default_thread_limiter().total_tokens = cfg.threads
        store.follow()
        if cfg.warm_index:
            threading.Thread(target=_warm, args=(service,), name="twin-index-warm", daemon=True).start()
        yield
        engine.close()
        gate.close()
        store.close()

    app = FastAPI(title="twin · OGC API - Features", version=__version__, lifespan=lifespan,
                  openapi_url=None, docs_url=None, redoc_url=None, description=openapi.DESCRIPTION,
                  dependencies=[Depends(auth.authenticate), Depends(deps.known_parameters)])
    app.state.service = service
    app.state.gate = gate
    app.state.settings = cfg
    errors.install(app)
    app.include_router(features.router)
    app.include_router(auth.router)
    app.include_router(search.router)
    app.include_router(imports.router)
    app.include_router(tiles_router(engine))
    maps.install(app)

    @app.get("/api.html", name="api_html", include_in_schema=False)
    def api_html(request: Request) -> HTMLResponse:
        return html_response("api.html", spec=app.openapi())

    openapi.install(app)
    return app
