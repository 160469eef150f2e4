"""The README's alert and work-order recipes, run as written (by bash and curl, ``$TOKEN`` an officer's) against a
demo-like twin."""

from __future__ import annotations

from tests.maps.conftest import own_city, pristine_city  # noqa: F401
from tests.maps.server import running
from tests.users import add_user
from tests.vitals.test_readme import run_recipe


def test_the_readme_recipes_answer_as_it_says(own_city: str) -> None:  # noqa: F811
    token = add_user(own_city, "readme-officer", "admin")
    with running(own_city) as url:
        alerts, order = run_recipe("### Alerts and work orders (for officers and app developers)", url, token)
    assert isinstance(alerts["alerts"], list)
    assert order["status"] == "dispatched" and str(order["committee"]).startswith("NC-")
    assert order["title"] == "燃气异味" and len(order["resources"]) == 5  # type: ignore[arg-type]
