"""``twin rules``: the risk rules, their alerts and the work orders (工单)."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.table import Table

from twin.cli.common import LayersOption, StoreOption, console, friendly, opened, settings
from twin.rules.orders import STEP_TITLES, WorkOrders
from twin.rules.spec import load_rules
from twin.rules.watch import Watch
from twin.settings import TwinSettings
from twin.store import Store
from twin.vitals.service import VitalSigns
from twin.vitals.spec import load_indicators

rules_app = typer.Typer(help="Risk rules, their alerts and the work orders (风险规则、告警与工单).",
                        no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(rules_app, name="rules")


def watch_of(cfg: TwinSettings, st: Store) -> Watch:
    indicators = load_indicators(cfg.indicators, st.catalogue)
    rules = load_rules(cfg.rules, st.catalogue, indicators)
    vitals = VitalSigns(st, indicators, st.access(cfg.access_db), follow=False)
    return Watch(st, rules, st.access(cfg.access_db), vitals)


def update_alerts(cfg: TwinSettings, st: Store) -> None:
    """Evaluate every rule now (city-wide the first time), so that a server starting on the store finds its alerts."""
    started = time.perf_counter()
    watch = watch_of(cfg, st)
    watch.vitals.sync()  # the indicators the status rules read, up to date first
    watch.sync()
    opened_ = len(watch.alerts(status=("open", "acknowledged"), limit=1_000_000))
    console.print(f"  {len(watch.rules)} rules evaluated: {opened_} alerts open "
                  f"({time.perf_counter() - started:.1f} s)", highlight=False)


@rules_app.command("list")
@friendly
def list_command(store: StoreOption = None, layers: LayersOption = None) -> None:
    """List the rules: what raises each alert and how severe it is."""
    cfg = settings(store, layers)
    with opened(cfg) as st:
        table = Table("id", "规则", "severity", "kind", "condition")
        for rule in watch_of(cfg, st).rules.values():
            s = rule.spec
            if s.kind == "proximity" and s.subject and s.object:
                cond = (f"{s.subject.layer} [{s.subject.filter or 'all'}] within {s.within_m:g} m of "
                        f"{s.object.layer} [{s.object.filter or 'all'}]")
            else:
                cond = f"{s.indicator} per {s.level} {'>' if s.above is not None else '<'} {s.above or s.below}"
            table.add_row(s.id, s.title_zh, s.severity, s.kind, cond)
        console.print(table)


@rules_app.command("sync")
@friendly
def sync(store: StoreOption = None, layers: LayersOption = None) -> None:
    """Evaluate every rule now (a server does it after each change by itself)."""
    cfg = settings(store, layers)
    with opened(cfg) as st:
        update_alerts(cfg, st)


@rules_app.command("alerts")
@friendly
def alerts(status: Annotated[str, typer.Option(help="Comma-separated statuses.")] = "open,acknowledged",
           rule: Annotated[str | None, typer.Option(help="Only this rule's.")] = None,
           area: Annotated[str | None, typer.Option(help="Only in this 区, 街道/镇 or 居委 (its key).")] = None,
           limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 50,
           store: StoreOption = None, layers: LayersOption = None) -> None:
    """List alerts, newest first."""
    cfg = settings(store, layers)
    with opened(cfg) as st:
        found = watch_of(cfg, st).alerts(rule=rule, status=tuple(status.split(",")), area=area, limit=limit)
    table = Table("id", "rule", "status", "committee", "distance m", "message")
    for a in found:
        table.add_row(str(a["id"]), str(a["rule"]), str(a["status"]), str(a["committee"] or "-"),
                      "-" if a["distance"] is None else f"{a['distance']:g}", str(a["message"]))
    console.print(table)


@rules_app.command("orders")
@friendly
def orders(area: Annotated[str | None, typer.Option(help="Only those of this 区, 街道/镇 or 居委 (its key).")] = None,
           store: StoreOption = None, layers: LayersOption = None) -> None:
    """List work orders, newest first, with their step."""
    cfg = settings(store, layers)
    with opened(cfg) as st:
        found = WorkOrders(st, st.access(cfg.access_db)).find(None)
    table = Table("id", "status", "committee", "opened", "title")
    for o in found:
        if area is None or area in (o["committee"], o["subdistrict"], o["district"]):
            table.add_row(str(o["id"]), STEP_TITLES[str(o["status"])], str(o["committee"]), str(o["opened_at"]),
                          str(o["title"]))
    console.print(table)

