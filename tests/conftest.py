"""Shared fixtures: backends and the example structures."""

from __future__ import annotations

import pytest
from helpers import BACKENDS, EXAMPLES, read_xanesnet_xyz


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return request.param


@pytest.fixture(scope="session")
def example_structures() -> list:
    return [read_xanesnet_xyz(p) for p in sorted(EXAMPLES.glob("*.xyz"))]
