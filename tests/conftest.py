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


@pytest.fixture(scope="session", autouse=True)
def torch_on_one_thread():
    """Run torch on one thread, as the workers of a local Dask cluster do.

    Many tests compare a single-process output with a Dask or resumed one bit for bit. That
    holds for one machine at one torch thread count: on some CPUs (seen on an AMD EPYC) the
    float32 matrix products sum in an order that depends on the thread count, moving values by
    a few ulp. ``test_thread_counts.py`` checks that agreement across thread counts instead.
    """
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
