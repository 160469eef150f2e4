"""Users for tests that talk to the service: created as ``twin user add`` does, sent as bearer tokens."""

from __future__ import annotations

from pathlib import Path

from twin.access import AccessSettings, Gate
from twin.catalogue import load_catalogue
from twin.settings import DEFAULT_LAYERS_DIR
from twin.store import open_store


def add_user(store: str | Path, name: str, role: str, area: str | None = None, *, layers: Path = DEFAULT_LAYERS_DIR,
             policy: Path | None = None) -> str:
    """Create a user in the access tables of the store at ``store`` (a path or a URL); returns the token."""
    opened = open_store(store, load_catalogue(layers), create=False)
    gate = Gate(opened, AccessSettings(policy=policy))
    try:
        return gate.add_user(name, role, area)
    finally:
        gate.close()
        opened.close()


def bearer(token: str) -> dict[str, str]:
    """The header that presents ``token``."""
    return {"Authorization": f"Bearer {token}"}
