"""API tokens for benchmark users, created once per store's access tables and cached in ``~/.cache/twin``.

Every twin request now names its user, so benchmarks hold tokens like any client: ``token_for(store,
"bench-planner", "planner")`` returns a working token for that user, creating the user (or a fresh
token) only when the cached one no longer authenticates.
"""

from __future__ import annotations

import json
from pathlib import Path

from twin.access import Gate
from twin.catalogue import load_catalogue
from twin.errors import AuthenticationError
from twin.settings import DEFAULT_LAYERS_DIR
from twin.store import is_url, open_store

CACHE = Path.home() / ".cache" / "twin" / "bench" / "tokens.json"


def _load() -> dict[str, str]:
    return json.loads(CACHE.read_text(encoding="utf-8")) if CACHE.exists() else {}


def tokens_for(store: str | Path, users: list[tuple[str, str, str | None]], days: int = 30) -> list[str]:
    """A working token for each ``(name, role, area key)`` of ``store``'s access tables (in order)."""
    cached = _load()
    target = store if is_url(store) else str(Path(store).resolve())
    gate = Gate(open_store(target, load_catalogue(DEFAULT_LAYERS_DIR), create=False))
    out: list[str] = []
    try:
        for name, role, area in users:
            slot = f"{gate.db.location}::{name}"
            token = cached.get(slot)
            try:
                if token is None:
                    raise AuthenticationError("none cached")
                gate.users.authenticate(token)
            except AuthenticationError:
                user = gate.users.get(name)
                live = user is not None and user.revoked is None
                token = gate.users.issue(name, days) if live else gate.add_user(name, role, area, days)
                cached[slot] = token
            out.append(token)
    finally:
        gate.close()
        gate.store.close()
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    CACHE.write_text(json.dumps(cached), encoding="utf-8")
    return out


def token_for(store: str | Path, name: str, role: str, area: str | None = None) -> str:
    return tokens_for(store, [(name, role, area)])[0]
