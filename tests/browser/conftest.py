"""Real-browser fixtures: Debian's Chromium driven by Playwright, every request recorded, screenshots kept.

Screenshots go to ``test-artifacts/`` at the repository root (gitignored) for a person to look at.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.maps.conftest import (  # noqa: F401  (shared fixtures)
    area_key,
    city,
    city_target,
    city_url,
    own_city,
    pristine_city,
    tokens,
)

pytest.importorskip("playwright.sync_api")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@dataclass
class Tab:
    """A page, the URL of the server it talks to, and every request and error it made."""

    page: object
    base: str
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def outside(self) -> list[str]:
        """Requests to anything but the local server (data: and blob: URLs stay in the page)."""
        local = urlsplit(self.base).netloc
        return [u for u in self.requests if urlsplit(u).scheme not in ("data", "blob", "file")
                and urlsplit(u).netloc != local]

    def shot(self, name: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path))
        return path


def open_tab(browser: object, base: str, token: str | None = None) -> Tab:
    """A new browser profile on ``base``, signed in with ``token`` through the one-click link (if given)."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    page = context.new_page()
    tab = Tab(page, base)
    page.on("request", lambda r: tab.requests.append(r.url))
    page.on("pageerror", lambda e: tab.errors.append(str(e)))
    page.set_default_timeout(20_000)
    if token is not None:
        page.goto(f"{base}/login?token={token}&next=/whoami")
        assert page.url == base + "/whoami", page.content()[:300]
    return tab


@pytest.fixture
def tab(browser: object, city_url: str, tokens: dict[str, str]) -> Iterator[Tab]:  # noqa: F811
    """A planner's browser on the shared city."""
    t = open_tab(browser, city_url, tokens["planner"])
    yield t
    t.page.context.close()
    assert t.outside() == [], f"requests left the local server: {t.outside()[:5]}"
    assert t.errors == [], f"script errors: {t.errors[:3]}"


@pytest.fixture
def tabs(browser: object, city_url: str) -> Iterator[Callable[[str | None], Tab]]:  # noqa: F811
    """Opens browsers on the shared city signed in with a token (or not); none may leave the local server."""
    opened: list[Tab] = []

    def new(token: str | None = None) -> Tab:
        opened.append(open_tab(browser, city_url, token))
        return opened[-1]

    yield new
    for t in opened:
        t.page.context.close()
    for t in opened:
        assert t.outside() == [], f"requests left the local server: {t.outside()[:5]}"
        assert t.errors == [], f"script errors: {t.errors[:3]}"
