"""The README's vital-signs recipes, run as written (by bash and curl, ``$TOKEN`` a planner's) against a demo-like
twin."""

from __future__ import annotations

import json
import subprocess

from tests.api.test_readme_clients import readme_block
from tests.maps.conftest import area_key, city, city_target, city_url, pristine_city, tokens  # noqa: F401


def run_recipe(after: str, url: str, token: str) -> list[dict[str, object]]:
    """Run the first bash block of the README after ``after`` with the service at ``url``; the JSON it printed."""
    recipe = readme_block(after, "bash").replace("http://127.0.0.1:8000", url)
    done = subprocess.run(["bash", "-c", f"export TOKEN={token}\n{recipe}"], capture_output=True, text=True,
                          timeout=60, check=True)
    out, text, at = [], done.stdout.strip(), 0
    decoder = json.JSONDecoder()
    while at < len(text):
        doc, at = decoder.raw_decode(text, at)
        out.append(doc)
        while at < len(text) and text[at].isspace():
            at += 1
    return out


def test_the_readme_recipes_answer_as_it_says(city_url: str, tokens: dict[str, str]) -> None:  # noqa: F811
    listed, drill, then = run_recipe("### Reading them (for the people who use them)", city_url, tokens["planner"])
    assert len(listed["indicators"]) >= 50  # type: ignore[arg-type]
    assert drill["level"] == "subdistrict" and drill["areas"]
    assert {a["parent"] for a in drill["areas"]} == {"DI-wtw3s7d6-0"}  # type: ignore[attr-defined]
    assert then["type"] == "FeatureCollection" and then["level"] == "committee"
