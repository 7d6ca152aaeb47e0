"""Schemathesis over the OpenAPI schema: generated requests (valid and invalid) never get a 5xx, and
every error comes back in the one JSON error shape.

Each operation's case strategy is driven by hypothesis directly (schemathesis's pytest plugin does not
run under pytest 9 here).
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

pytestmark = pytest.mark.slow
EXAMPLES_PER_OPERATION = 25


def _check(case) -> None:
    response = case.call()
    where = f"{case.method} {case.formatted_path}"
    assert response.status_code < 500, f"{where} -> {response.status_code}: {response.text[:500]}"
    if response.status_code >= 400:
        body = response.json()
        assert body["ok"] is False and body["status"] == response.status_code and body["error"], (where, body)


def test_no_server_errors_anywhere(private_atlas_client):
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", private_atlas_client.app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 14
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def fuzz(case) -> None:
            _check(case)

        fuzz()
