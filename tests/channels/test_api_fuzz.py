"""Schemathesis over the staff API's own OpenAPI document, in-process.

Every operation is called with generated requests (valid ones, ones that
break the schema, and valid ones on the demo city's own objects) as two
staff roles, a county clerk and a city administrator, each with a bearer
token. Two checks hold for every answer:
``not_a_server_error`` (never a 5xx) and ``status_code_conformance`` (every
status the API gives is one the document declares, so a generated client
knows it). The seed is fixed and the number of examples bounded, so the run
is the same every time; ``make fuzz`` runs the same with more examples.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass, field

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import status_code_conformance

# Examples per operation, role and mode: small in ``make test``, larger in
# ``make fuzz`` (YIBAO_FUZZ_EXAMPLES).
EXAMPLES = int(os.environ.get("YIBAO_FUZZ_EXAMPLES", "6"))
ROLES = ("wuxing", "admin")  # a county clerk and a city administrator
CHECKS = [not_a_server_error, status_code_conformance]


@dataclass
class Tally:
    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    failures: dict[str, str] = field(default_factory=dict)


def known_objects(demo) -> dict[str, dict[str, str]]:
    """Path parameters naming objects of the demo city in both roles' area,
    by the path's first part: generated values are almost never found, these
    reach the services' own rules."""
    person = demo["persons"][1]
    common = {
        "account_no": person["account_no"],
        "card_no": person["card_no"],
        "uscc": demo["employers"][0]["uscc"],
    }
    return {
        "kiosk-terminals": {**common, "code": demo["terminals"][0]["code"]},
        "institutions": {**common, "code": demo["institutions"][0]["code"]},
        "": common,
    }


def fixed_for(operation, known: dict[str, dict[str, str]]) -> dict[str, str] | None:
    names = re.findall(r"{(\w+)}", operation.path)
    first = operation.path.removeprefix("/api/v1/").split("/")[0]
    table = known.get(first, known[""])
    if not names or not all(n in table for n in names):
        return None
    return {n: table[n] for n in names}


def fuzz_operation(
    operation,
    mode: GenerationMode,
    headers: dict[str, str],
    tally: Tally,
    path_parameters: dict[str, str] | None = None,
) -> None:
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,  # the fixed seed: the same requests every run
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=path_parameters))
    def run(case) -> None:
        tally.requests += 1
        try:
            response = case.call(headers=headers)
        except Exception as exc:
            # Starlette re-raises an unhandled error after answering 500 with it
            key = f"{operation.label} [{mode.value}] 500 {type(exc).__name__}"
            tally.statuses[500] += 1
            tally.failures.setdefault(key, f"{exc!r}\n{case.as_curl_command()}")
            return
        tally.statuses[response.status_code] += 1
        try:
            case.validate_response(response, checks=CHECKS)
        except FailureGroup as exc:
            key = f"{operation.label} [{mode.value}] {response.status_code}"
            tally.failures.setdefault(key, str(exc)[:2000])

    try:
        run()
    except Unsatisfiable:
        # an operation without parameters or body has no request that breaks its schema
        assert mode is GenerationMode.NEGATIVE


@pytest.mark.slow
def test_the_staff_api_holds_under_generated_requests(app, demo, token_for):
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)
    known = known_objects(demo)
    tally = Tally()
    try:
        for role in ROLES:
            for result in schema.get_all_operations():
                operation = result.ok()
                # a fresh token each time: a generated log-out ends the one before
                for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                    fuzz_operation(operation, mode, token_for(role), tally)
                fixed = fixed_for(operation, known)
                if fixed is not None:
                    fuzz_operation(
                        operation, GenerationMode.POSITIVE, token_for(role), tally, fixed
                    )
    finally:
        asgi.shutdown_lifespans()
    print(f"\nfuzz: {tally.requests} requests, statuses {dict(sorted(tally.statuses.items()))}")
    for key, text in sorted(tally.failures.items()):
        print(f"--- {key}\n{text}")
    assert tally.requests > 0
    assert not tally.failures, sorted(tally.failures)
