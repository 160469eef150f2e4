"""The README's alert and work-order recipes, run as written (``$TOKEN`` an officer's) against a demo-like twin."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import httpx

from tests.maps.conftest import own_city, pristine_city  # noqa: F401
from tests.maps.server import running
from tests.users import add_user

README = Path(__file__).resolve().parents[2] / "README.md"


def _recipes() -> list[list[str]]:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## 风险规则、告警与工单"):text.index("## Vector tiles")]
    block = section[section.index("```bash"):]
    block = block[:block.index("```", 7)]
    commands = re.sub(r"\\\n\s*", " ", block).splitlines()[1:]
    return [shlex.split(c) for c in commands if c.strip().startswith("curl")]


def test_the_readme_recipes_answer_as_it_says(own_city: str) -> None:  # noqa: F811
    token = add_user(own_city, "readme-officer", "admin")
    recipes = _recipes()
    assert len(recipes) == 2
    with running(own_city) as url:
        for argv in recipes:
            headers = dict(argv[i + 1].replace("$TOKEN", token).split(": ", 1) for i, a in enumerate(argv) if a == "-H")
            target = argv[-1].replace("http://127.0.0.1:8000", url)
            if "-d" in argv:
                r = httpx.post(target, headers=headers, content=argv[argv.index("-d") + 1], timeout=30)
                assert r.status_code == 201, r.text
                order = r.json()
                assert order["status"] == "dispatched" and order["committee"].startswith("NC-")
                assert len(order["resources"]) == json.loads(argv[argv.index("-d") + 1])["k"]
            else:
                r = httpx.get(target, headers=headers, timeout=30)
                assert r.status_code == 200 and "alerts" in r.json(), r.text
