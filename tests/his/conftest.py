from __future__ import annotations

from typing import Any

import pytest

from tests.his.client import His


@pytest.fixture
def his(client: Any, demo: dict[str, Any], clock: Any) -> His:
    """The demo's level-3 hospital, signed in."""
    h = His(client, demo["institutions"][0], clock)
    h.sign_in()
    return h


@pytest.fixture
def pharmacy(client: Any, demo: dict[str, Any], clock: Any) -> His:
    h = His(client, demo["institutions"][3], clock)
    h.sign_in()
    return h
