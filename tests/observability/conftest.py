from __future__ import annotations

from typing import Any

import pytest

from tests.his.client import His

TOKEN = "scrape-token-for-the-tests-0123456789"


@pytest.fixture
def settings(settings: Any) -> Any:
    """The suite's settings, with a metrics token."""
    settings.metrics_token = TOKEN
    return settings


@pytest.fixture
def his(client: Any, demo: dict[str, Any], clock: Any) -> His:
    """The demo's level-3 hospital, signed in."""
    h = His(client, demo["institutions"][0], clock)
    h.sign_in()
    return h
