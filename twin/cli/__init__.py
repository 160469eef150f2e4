"""The ``twin`` command line. Each family of commands lives in its own module."""

from __future__ import annotations

import typer

from twin.cli import audit, core, demo, maps, rules, serve, status, store, tiles, transfer, users, vitals

app = typer.Typer(
    name="twin",
    help="twin: the Shanghai city digital-twin map service (上海城市数字孪生地图服务).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
core.register(app)
serve.register(app)
transfer.register(app)
demo.register(app)
tiles.register(app)
maps.register(app)
users.register(app)
audit.register(app)
store.register(app)
status.register(app)
vitals.register(app)
rules.register(app)


def main() -> None:
    """Entry point of the ``twin`` console script."""
    app()
