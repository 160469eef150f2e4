"""``twin vitals``: the city's indicators (城市体征): list them, show one per area (now or as of a past instant),
and bring their kept sums up to date."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from twin.cli.common import LayersOption, StoreOption, console, friendly, opened, settings
from twin.query.versions import as_of_stamp
from twin.settings import TwinSettings
from twin.store import Store
from twin.vitals.service import VitalSigns
from twin.vitals.spec import BAND_TITLES, LEVEL_TITLES, load_indicators

vitals_app = typer.Typer(help="City vital signs (城市体征): indicators per 区, 街道/镇 and 居委.", no_args_is_help=True)
IndicatorsOption = Annotated[Path | None, typer.Option(help="Folder of indicator files (default: TWIN_INDICATORS, "
                                                            "or the repository's indicators/).")]


def register(app: typer.Typer) -> None:
    app.add_typer(vitals_app, name="vitals")


def _cfg(store: str | None, layers: Path | None, indicators: Path | None) -> TwinSettings:
    cfg = settings(store, layers)
    return cfg if indicators is None else cfg.model_copy(update={"indicators": indicators})


def _signs(cfg: TwinSettings, st: Store) -> VitalSigns:
    return VitalSigns(st, load_indicators(cfg.indicators, st.catalogue), st.access(cfg.access_db), follow=False)


def update_vitals(cfg: TwinSettings, st: Store) -> None:
    """Bring every indicator's kept sums up to date now, in the process that wrote the store, so that a server
    starting on it finds them kept."""
    signs = _signs(cfg, st)
    for layer in signs.keeper.layers():
        started = time.perf_counter()
        signs.keeper.sync(layer)
        console.print(f"  vital signs of {layer} up to date ({len(signs.indicators.of_layer(layer))} indicators, "
                      f"{time.perf_counter() - started:.1f} s)", highlight=False)


@vitals_app.command("list")
@friendly
def list_command(store: StoreOption = None, layers: LayersOption = None, indicators: IndicatorsOption = None) -> None:
    """List the indicators: what each measures, over which layer, at which levels, where its bands begin."""
    cfg = _cfg(store, layers, indicators)
    with opened(cfg) as st:
        signs = _signs(cfg, st)
        kept = signs.keeper.state()
        table = Table("id", "指标", "category", "layer", "measure", "levels", "关注 / 预警", "kept to")
        for ind in signs.indicators.values():
            s = ind.spec
            t = s.thresholds
            table.add_row(s.id, s.title_zh, s.category, s.layer, s.measure.value, ", ".join(s.levels),
                          f"{'≥' if t.higher_is_worse else '≤'} {t.attention:g} / {t.warning:g} {s.unit}",
                          str(kept.get(s.id, "-")))
        console.print(table)


@vitals_app.command("show")
@friendly
def show(indicator: Annotated[str, typer.Argument(help="The indicator's id (twin vitals list).")],
         level: Annotated[str, typer.Option(help="district, subdistrict or committee.")] = "district",
         parent: Annotated[str | None, typer.Option(help="Only the areas inside this one (its key).")] = None,
         as_of: Annotated[str | None, typer.Option("--as-of", help="An instant (RFC 3339): the values then.")] = None,
         store: StoreOption = None, layers: LayersOption = None, indicators: IndicatorsOption = None) -> None:
    """Show an indicator's value in each area of a level, worst first."""
    cfg = _cfg(store, layers, indicators)
    with opened(cfg) as st:
        signs = _signs(cfg, st)
        ind = signs.indicator(indicator)
        signs.keeper.sync(ind.layer.id)  # as a server keeps them: up to the latest change
        changeset = None
        if as_of is not None:
            with st.read() as snap:
                changeset = snap.log_at(as_of_stamp(as_of))
        reading = signs.read(ind, level, changeset, None, parent)
        sign = -1 if ind.spec.thresholds.higher_is_worse else 1
        rows = sorted(reading.areas, key=lambda a: (a.value is None, sign * (a.value or 0), a.key))
        table = Table("key", LEVEL_TITLES[level], f"{ind.spec.title_zh} ({ind.spec.unit})", "band",
                      title=f"{ind.spec.title_zh} · {ind.spec.title_en} (changeset {reading.changeset})")
        for a in rows:
            table.add_row(a.key, a.name, "-" if a.value is None else f"{a.value:,.3f}".rstrip("0").rstrip("."),
                          BAND_TITLES.get(a.band or "", "-"))
        console.print(table)


@vitals_app.command("sync")
@friendly
def sync(store: StoreOption = None, layers: LayersOption = None, indicators: IndicatorsOption = None) -> None:
    """Bring every indicator's kept sums up to date (a server does it after each change by itself)."""
    cfg = _cfg(store, layers, indicators)
    with opened(cfg) as st:
        update_vitals(cfg, st)
