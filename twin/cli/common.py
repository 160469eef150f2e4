"""Options and helpers shared by every command: ``--store``, ``--layers`` and error reporting."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from pathlib import Path
from typing import Annotated, ParamSpec, TypeVar

import typer
from rich.console import Console

from twin.catalogue import Catalogue, load_catalogue
from twin.errors import TwinError
from twin.settings import TwinSettings
from twin.store import Store, open_store

console = Console()
err_console = Console(stderr=True)

StoreOption = Annotated[
    str | None,
    typer.Option("--store", help="The store: a GeoPackage file, or postgresql://USER@HOST:PORT/DB[?schema=NAME] "
                                 "(default: $TWIN_STORE, else ./twin.gpkg).", show_default=False),
]
LayersOption = Annotated[
    Path | None,
    typer.Option("--layers", help="Layer catalogue folder (default: $TWIN_LAYERS, else the bundled layers/).",
                 show_default=False),
]

P = ParamSpec("P")
R = TypeVar("R")


def settings(store: str | Path | None = None, layers: Path | None = None) -> TwinSettings:
    """Settings from the environment, overridden by command-line options."""
    base = TwinSettings()
    updates = {k: v for k, v in {"store": None if store is None else str(store), "layers": layers}.items()
               if v is not None}
    return base.model_copy(update=updates)


def catalogue(cfg: TwinSettings) -> Catalogue:
    return load_catalogue(cfg.layers)


@contextmanager
def opened(cfg: TwinSettings, *, create: bool = False) -> Iterator[Store]:
    """Open the configured store, closing it afterwards."""
    store = open_store(cfg.store, catalogue(cfg), create=create)
    try:
        yield store
    finally:
        store.close()


def friendly(fn: Callable[P, R]) -> Callable[P, R]:
    """Report twin's own errors as one clear line and exit 1 instead of a traceback."""

    @wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except TwinError as exc:
            err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            sys.exit(1)

    return wrapper
