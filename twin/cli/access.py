"""What the access commands share: the store's gate, the local operator's name, and how a token is shown.

The command line runs on the store's machine, where file access is full access; it acts as the local
operator, recorded in the audit trail as ``local:<OS user>``.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Iterator
from contextlib import contextmanager

from rich.rule import Rule

from twin.access import AccessSettings, Gate
from twin.access.sessions import CODE_HOURS
from twin.cli.common import console, opened
from twin.settings import TwinSettings

#: The user ``twin up`` signs the operator in as, with a fresh one-day token on every start.
UP_USER = "twin-up"
UP_DAYS = 1


def operator() -> str:
    """The local operator as the audit trail names them: ``local:<OS user>``."""
    try:
        name = getpass.getuser()
    except (OSError, KeyError):  # no login name and no passwd entry (some containers)
        name = f"uid{os.getuid()}"
    return f"local:{name}"


@contextmanager
def opened_gate(cfg: TwinSettings) -> Iterator[Gate]:
    """The gate of the configured store, closed (its audit trail written) afterwards. A GeoPackage store's access
    database is made by the first write, so a command that fails before writing leaves no file behind."""
    with opened(cfg) as store:
        gate = Gate(store, AccessSettings(db=cfg.access_db, policy=cfg.access_policy))
        try:
            yield gate
        finally:
            gate.close()


def browser_host(host: str) -> str:
    """The address a browser on this machine reaches a server listening on ``host`` at."""
    return "127.0.0.1" if host in ("", "0.0.0.0", "::") else (f"[{host}]" if ":" in host else host)


def login_link(host: str, port: int, code: str) -> str:
    """The one-click sign-in link: ``/login`` spends the one-time code, sets the session cookie, opens the map."""
    return f"http://{browser_host(host)}:{port}/login?code={code}&next=/map"


def service_address() -> tuple[str, int]:
    """Where ``twin serve`` listens by default (``TWIN_HOST``, ``TWIN_PORT``)."""
    cfg = TwinSettings().service
    return cfg.host, cfg.port


def show_token(token: str, code: str, who: str, expires: str, host: str, port: int) -> None:
    """Print a new token with how to use it (it is never shown again) and a one-click sign-in link."""
    console.print(f"token for {who} (expires {expires}):", highlight=False)
    console.print(token, style="bold", soft_wrap=True, highlight=False)
    console.print("It is shown only once: twin keeps only its hash. Copy it now.", style="yellow")
    console.print(f"  API:     send the header  Authorization: Bearer {token}", soft_wrap=True, highlight=False)
    console.print(f"  browser: {login_link(host, port, code)}", soft_wrap=True, highlight=False)
    console.print(f"           (a link that signs in once, within {CODE_HOURS} hours; or paste the token at "
                  f"http://{browser_host(host)}:{port}/login)", soft_wrap=True, highlight=False)


def up_login(cfg: TwinSettings, host: str, port: int) -> None:
    """Sign the operator of ``twin up`` in: a fresh one-day admin token for ``twin-up``, shown as a link."""
    with opened_gate(cfg) as gate:
        user = gate.users.get(UP_USER)
        if user is not None and user.revoked is not None:
            console.print(f"{UP_USER} was revoked ({user.revoked}), so there is no sign-in link; sign in with your "
                          "own token at /login", style="yellow", highlight=False)
            return
        if user is None:
            token = gate.add_user(UP_USER, "admin", days=UP_DAYS, by=operator())
        else:
            token = gate.issue_token(UP_USER, UP_DAYS, by=operator())
        code = gate.sign_in_code(token)
        role = gate.users.get(UP_USER).role  # type: ignore[union-attr]
        roles = ", ".join(gate.policy.roles)
    console.print(Rule("sign in · 登录", style="green"))
    console.print(f"Open this link to sign in as {UP_USER} ({role}; it signs in once, within {UP_DAYS} day):",
                  highlight=False)
    console.print(login_link(host, port, code), style="bold green", soft_wrap=True, highlight=False)
    console.print(f"API clients: Authorization: Bearer {token}", soft_wrap=True, highlight=False)
    console.print(f"Real users: twin user add NAME --role ROLE [--area KEY] --store {cfg.store}   (roles: {roles})",
                  soft_wrap=True, highlight=False)
    console.print(Rule(style="green"))
