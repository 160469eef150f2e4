"""The README's vital-signs recipes, run as written (``$TOKEN`` a planner's) against a demo-like twin."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import httpx

from tests.maps.conftest import (  # noqa: F401
    area_key,
    city,
    city_target,
    city_url,
    pristine_city,
    tokens,
)

README = Path(__file__).resolve().parents[2] / "README.md"


def _recipes() -> list[list[str]]:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## 城市体征"):text.index("## Vector tiles")]
    block = section[section.index("```bash"):]
    block = block[:block.index("```", 7)]
    commands = re.sub(r"\\\n\s*", " ", block).splitlines()[1:]
    return [shlex.split(c.split("#")[0]) for c in commands if c.strip().startswith("curl")]


def test_the_readme_recipes_answer_as_it_says(city_url: str, tokens: dict[str, str]) -> None:  # noqa: F811
    recipes = _recipes()
    assert len(recipes) == 3
    for argv in recipes:
        url = argv[-1].replace("http://127.0.0.1:8000", city_url)
        header = argv[argv.index("-H") + 1].replace("$TOKEN", tokens["planner"])
        name, value = header.split(": ", 1)
        r = httpx.get(url, headers={name: value}, timeout=30)
        assert r.status_code == 200, (url, r.text)
        body = r.json()
        if "indicators" in body:
            assert len(body["indicators"]) >= 50
        elif "parent=" in url:
            assert body["level"] == "subdistrict" and body["areas"]
            assert {a["parent"] for a in body["areas"]} == {"DI-wtw3s7d6-0"}
        else:
            assert r.headers["Twin-As-Of"].startswith("2026-12-06T08:00:00")
            assert body["type"] == "FeatureCollection"
