"""``twin user``: add, list and revoke the users of a store, and issue their API tokens."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from twin.access import Gate
from twin.access.users import check_days, now, stamp
from twin.cli.access import opened_gate, operator, service_address, show_token
from twin.cli.common import LayersOption, StoreOption, console, friendly, settings
from twin.errors import AccessConfigError, FeatureNotFoundError

user_app = typer.Typer(help="Users and their API tokens (用户与令牌).", no_args_is_help=True)

NameArgument = Annotated[str, typer.Argument(
    metavar="NAME", help="User name: 1-64 letters, digits, '_', '.', '@' or '-'.")]
DaysOption = Annotated[int | None, typer.Option(
    help="Days the token lives, 1 to 3650 (default: the policy's token_days, 90).", show_default=False)]


def register(app: typer.Typer) -> None:
    app.add_typer(user_app, name="user")


def _expiry(gate: Gate, days: int | None) -> tuple[int, str]:
    """The lifetime of a new token (the policy's default when not given, refused outside 1 to 3650) and
    when it ends."""
    days = gate.policy.token_days if days is None else check_days(days)
    return days, stamp(now() + timedelta(days=days))


def _area(gate: Gate, key: str | None) -> str:
    """``KEY 名称`` of an area, or the key marked missing when it is gone from the store."""
    if key is None:
        return ""
    try:
        return escape(f"{key} {gate.areas.get(key).name}")
    except (AccessConfigError, FeatureNotFoundError):
        return f"{key} [red](missing)[/]"


@user_app.command("add")
@friendly
def add(name: NameArgument,
        role: Annotated[str, typer.Option("--role", help="Role from the access policy: admin, gis_editor, planner, "
                                                         "area_officer or app (the packaged policy).")],
        area: Annotated[str | None, typer.Option(
            "--area", help="Location key of the 区/街道/居委 (district, subdistrict or committee) the user is scoped "
                           "to: required for area_officer, optional for app, refused for the others.")] = None,
        days: DaysOption = None, store: StoreOption = None, layers: LayersOption = None) -> None:
    """Create a user and print their API token (shown only this once)."""
    cfg = settings(store, layers)
    with opened_gate(cfg) as gate:
        days, expires = _expiry(gate, days)
        try:
            token = gate.add_user(name, role, area, days, by=operator())
        except FeatureNotFoundError as exc:  # a well-formed key of an area layer, but no such component
            raise AccessConfigError(f"area {area!r} does not exist ({exc})") from None
        place = _area(gate, area)
        code = gate.sign_in_code(token)
    console.print(f"created user {name}: role {role}" + (f", area {place}" if area else ""), highlight=False)
    show_token(token, code, name, expires, *service_address())


@user_app.command("list")
@friendly
def list_command(revoked: Annotated[bool, typer.Option("--revoked", help="Include revoked users.")] = False,
                 store: StoreOption = None, layers: LayersOption = None) -> None:
    """List the users: role, area, when created, when their newest token expires, whether revoked."""
    cfg = settings(store, layers)
    with opened_gate(cfg) as gate:
        users = gate.list_users(include_revoked=revoked)
        table = Table("name", "role", "area", "created", "token expires", "revoked")
        moment = stamp(now())
        for u in users:
            expires = "-" if u.expires is None else (u.expires if u.expires > moment else f"[red]{u.expires} "
                                                                                          "(expired)[/]")
            table.add_row(u.name, u.role, _area(gate, u.area), u.created, expires, u.revoked or "")
    if not users:
        console.print(f"no {'' if revoked else 'live '}users; create the first administrator with "
                      f"`twin user add NAME --role admin --store {cfg.store}`", highlight=False)
        return
    console.print(table)


@user_app.command("revoke")
@friendly
def revoke(name: NameArgument, store: StoreOption = None, layers: LayersOption = None) -> None:
    """Revoke a user and every token they hold; their requests get 401 from now on."""
    with opened_gate(settings(store, layers)) as gate:
        n = gate.revoke_user(name, by=operator())
    console.print(f"revoked {name} and {n} live token{'' if n == 1 else 's'}", highlight=False)


@user_app.command("token")
@friendly
def token(name: NameArgument, days: DaysOption = None, store: StoreOption = None,
          layers: LayersOption = None) -> None:
    """Issue a new token for an existing user (their older tokens keep working until they expire)."""
    with opened_gate(settings(store, layers)) as gate:
        days, expires = _expiry(gate, days)
        secret = gate.issue_token(name, days, by=operator())
        code = gate.sign_in_code(secret)
    show_token(secret, code, name, expires, *service_address())
