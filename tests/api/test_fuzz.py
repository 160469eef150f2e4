"""Property-based fuzzing of every documented operation with schemathesis: whatever comes in, no 5xx.

Valid and invalid requests (positive and negative generation) are sent to the real server with a
planner's token (an administrator's for the admin-only operations, so that their parameters are
reached too); the run is bounded (30 examples per operation and mode, derandomized) so it stays well
under two minutes.
"""

from __future__ import annotations

import re

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from tests.api.conftest import Server

EXAMPLES = 30
PER_COLLECTION = re.compile(r"^GET /collections/[a-z_]+/items$")
ADMIN_ONLY = ("GET /audit", "GET /users")


def fuzz(operation, mode: GenerationMode, headers: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    """Send ``EXAMPLES`` generated requests for one operation and mode; none may answer 5xx."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def call(case) -> None:  # type: ignore[no-untyped-def]
        case.call_and_validate(checks=[not_a_server_error], timeout=30, headers=headers)

    try:
        call()
    except Unsatisfiable:
        # only negative mode gets here: an operation whose every input is valid (a free-text parameter)
        assert mode is GenerationMode.NEGATIVE, operation.label


def test_no_operation_answers_5xx(server: Server) -> None:
    schema = schemathesis.openapi.from_url(server.url + "/api")
    # reads only (the import endpoint writes; test_import.py sends it real files), and the generic items
    # operation rather than its per-collection copies, which differ only by property parameters
    operations = [op for op in (result.ok() for result in schema.get_all_operations())
                  if op.label.startswith("GET ") and not PER_COLLECTION.match(op.label)]
    assert len(operations) >= 9
    for operation in operations:
        headers = server.headers("admin" if operation.label in ADMIN_ONLY else "planner")
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            fuzz(operation, mode, headers)
