"""``twin demo`` (build the Shanghai demo twin), ``twin up`` (build it if missing, then serve; ``--live`` drives it
with simulated events) and ``twin simulate``."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Annotated

import typer

from twin.cli import serve as serve_cli
from twin.cli.access import up_login
from twin.cli.audit import audited
from twin.cli.common import LayersOption, StoreOption, catalogue, console, err_console, friendly, opened, settings
from twin.cli.rules import update_alerts
from twin.cli.tiles import update_aggregates
from twin.cli.vitals import update_vitals
from twin.demo import PUBLIC_SCALES, SCALES, build_demo
from twin.demo.live import simulate
from twin.errors import TwinError
from twin.settings import TwinSettings
from twin.store import exists

ScaleOption = Annotated[str, typer.Option(
    help="small: a 2.5 km window on central Shanghai, about 100,000 components, under a minute; "
         "full: the whole city, about 15 million components, about 9 minutes on 2 cores.")]
SeedOption = Annotated[int, typer.Option(help="Random seed; the same seed always gives the same twin (same keys).")]


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
    app.command("up")(up)
    app.command("simulate")(simulate_command)


def _scale(name: str) -> str:
    if name not in SCALES:  # "tiny" is accepted too: the test suite's scale
        raise typer.BadParameter(f"{name!r}: choose one of {', '.join(PUBLIC_SCALES)}", param_hint="--scale")
    return name


def _build(store: str, layers: Path, scale: str, seed: int, force: bool, cache: Path | None) -> None:
    started = time.perf_counter()
    size, cfg, what = SCALES[_scale(scale)], settings(store, layers), f"twin demo --scale {scale} --seed {seed}"
    console.print(f"building the demo twin (scale={scale}, seed={seed}) into {store}", highlight=False)
    with audited(cfg, "import", None, what) as done:
        results = build_demo(store, catalogue(cfg), size, seed, force=force, workdir=cache,
                             progress=lambda line: console.print(f"  {line}", highlight=False))
        done.count = sum(r.inserted + r.updated for r in results)
        done.detail = (f"{what}: {len(results)} imports, {sum(r.inserted for r in results):,} inserted, "
                       f"{sum(r.updated for r in results):,} updated, "
                       f"{sum(r.unchanged for r in results):,} unchanged")
    with opened(cfg) as st:
        update_aggregates(st, st.catalogue)
        update_vitals(cfg, st)
        update_alerts(cfg, st)
    total = sum(r.inserted + r.updated + r.unchanged for r in results)
    console.print(f"done: {total:,} components in {time.perf_counter() - started:.0f} s; "
                  f"try `twin info --store {store}` or `twin up --store {store}`", highlight=False)


@friendly
def demo(store: StoreOption = None, layers: LayersOption = None, scale: ScaleOption = "small",
         seed: SeedOption = 42,
         force: Annotated[bool, typer.Option(help="Delete an existing store at --store and build from scratch.")
                          ] = False,
         cache: Annotated[Path | None, typer.Option(help="Folder for the files the demo writes and imports "
                                                         "(default: ~/.cache/twin/demo/SCALE-seedN).")] = None,
         ) -> None:
    """Build a plausible Shanghai twin from real data (districts, roads, heritage) plus synthetic layers.

    Re-running with the same scale and seed re-imports in place (everything comes back unchanged);
    a store holding anything else is refused unless --force.
    """
    cfg = settings(store, layers)
    _build(cfg.store, cfg.layers, scale, seed, force, cache)


LiveSeedOption = Annotated[int, typer.Option(help="Seed of the events; the same seed gives the same events.")]


@friendly
def up(store: StoreOption = None, layers: LayersOption = None, scale: ScaleOption = "small", seed: SeedOption = 42,
       host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
       port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
       workers: Annotated[int | None, typer.Option(help="Worker processes (default: $TWIN_WORKERS, else one per "
                                                        "core).", show_default=False, min=1, max=64)] = None,
       live: Annotated[bool, typer.Option(help="Drive the twin with simulated events while serving "
                                               "(as `twin simulate`).")] = False,
       live_seed: LiveSeedOption = 7) -> None:
    """Build the demo twin at --store if there is no store there yet, then serve it, with a sign-in link.

    Every start gives the user ``twin-up`` (an administrator, created on the first start) a new token valid
    for one day, printed as a one-click link; create real users with `twin user add`.
    """
    cfg = settings(store, layers)
    if not exists(cfg.store):
        _build(cfg.store, cfg.layers, scale, seed, False, None)
    try:
        up_login(cfg, host, port)
    except TwinError as exc:  # a policy without an admin role, say: serve all the same
        err_console.print(f"[yellow]warning:[/] no sign-in link: {exc}", highlight=False, soft_wrap=True)
    stop = threading.Event()
    if live:
        threading.Thread(target=_simulate_quietly, args=(cfg, live_seed, stop), name="twin-simulate",
                         daemon=True).start()
        console.print(f"simulating a live city (seed {live_seed}): watch /map", highlight=False)
    try:
        serve_cli.serve(store=cfg.store, layers=cfg.layers, host=host, port=port, workers=workers)
    finally:
        stop.set()


def _simulate_quietly(cfg: TwinSettings, seed: int, stop: threading.Event) -> None:
    try:
        with opened(cfg) as st:
            simulate(st, seed, stop=stop)
    except Exception as exc:  # a background simulation must never take the server down
        err_console.print(f"[yellow]warning:[/] the simulation stopped: {exc}", highlight=False, soft_wrap=True)


@friendly
def simulate_command(store: StoreOption = None, layers: LayersOption = None, seed: LiveSeedOption = 7,
                     ticks: Annotated[int | None, typer.Option(help="Seconds of city time to run (default: until "
                                                                     "interrupted).", show_default=False)] = None,
                     speed: Annotated[float, typer.Option(help="Ticks (seconds of city time) per second.", min=0.01,
                                                          max=1000)] = 1.0) -> None:
    """Drive the twin with a plausible stream of events: a rainstorm flooding drainage pipes, hydrant pressure
    drops, street-light circuits failing and being repaired, sites stopping and resuming work.

    Run it beside `twin serve` (or use `twin up --live`) and watch /map; every event is a status report, kept
    with its time (see `twin history KEY`).
    """
    with opened(settings(store, layers)) as st:
        run = simulate(st, seed, ticks=ticks, speed=speed, on_tick=lambda t, done: console.print(
            f"tick {t}: {done.applied + done.late} reports kept", highlight=False) if done.applied else None)
    console.print(f"{run.ticks} ticks, {run.kept:,} reports kept, {run.refused:,} refused", highlight=False)
