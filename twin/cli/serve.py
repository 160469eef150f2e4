"""``twin serve``: the OGC API - Features service over a store."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from twin.cli.access import opened_gate
from twin.cli.common import LayersOption, StoreOption, console, friendly, settings
from twin.errors import StoreError
from twin.settings import TwinSettings
from twin.store import exists

#: Seconds a worker may take to answer uvicorn's supervisor before it is taken for dead and restarted.
WORKER_HEALTHCHECK_S = 120


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


def _first_admin_hint(cfg: TwinSettings) -> None:
    """Without users only public layers can be read (there is no default password): say how to add one."""
    with opened_gate(cfg) as gate:
        if gate.list_users():
            return
    console.print(f"no users yet, so only public layers can be read; create the first administrator with\n"
                  f"  twin user add NAME --role admin --store {cfg.store}\n"
                  "and sign in with the link it prints", style="yellow", highlight=False, soft_wrap=True)


@friendly
def serve(store: StoreOption = None, layers: LayersOption = None,
          host: Annotated[str | None, typer.Option(help="Address to listen on (default: $TWIN_HOST, else "
                                                        "127.0.0.1).", show_default=False)] = None,
          port: Annotated[int | None, typer.Option(help="Port to listen on (default: $TWIN_PORT, else 8000).",
                                                   show_default=False)] = None,
          workers: Annotated[int | None, typer.Option(help="Worker processes (default: $TWIN_WORKERS, else one per "
                                                           "core).", show_default=False, min=1, max=64)] = None
          ) -> None:
    """Serve the store as OGC API - Features (http://HOST:PORT/, OpenAPI at /api)."""
    import uvicorn  # imported here so that other commands start without loading the web stack

    from twin.api.app import create_app

    cfg = settings(store, layers)
    if not exists(cfg.store):
        raise StoreError(f"{cfg.store}: no store here; build one with `twin demo` or `twin import`")
    host, port = host or cfg.service.host, port or cfg.service.port
    workers = workers or cfg.service.workers
    if cfg.oidc.jwks is None:
        _first_admin_hint(cfg)
    if workers > 1:  # each worker process builds its own app from the environment
        os.environ["TWIN_STORE"] = cfg.store
        os.environ["TWIN_LAYERS"] = str(cfg.layers)
        # a worker still importing or opening the store answers the supervisor's health check late on a busy
        # machine; uvicorn's 5 s would kill and restart it over and over
        uvicorn.run("twin.api.app:create_app", factory=True, host=host, port=port, workers=workers,
                    timeout_worker_healthcheck=WORKER_HEALTHCHECK_S)
        return
    uvicorn.run(create_app(cfg), host=host, port=port)
