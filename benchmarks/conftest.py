"""Fixtures of the pytest-benchmark suite in ``benchmarks/``.

Not part of the default test run (``testpaths = ["tests"]``); run it explicitly::

    PYTHONPATH=. pytest benchmarks/

Environment variables: ``XANESNET_BENCH_DATA`` (directory of .xyz files; default
``../shared/data/fe_k_edge/xanesnet_2022_preconv/xyz_train`` from the repo root),
``XANESNET_BENCH_LIMIT`` (structures used, default 500), ``XANESNET_BENCH_REF_LIMIT``
(structures for the slow NumPy reference and DScribe, default 50).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

BENCH_DIR = Path(__file__).resolve().parent
for path in (BENCH_DIR, BENCH_DIR.parent):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Collect these benchmarks only when ``benchmarks/`` (or a file in it) is named.

    ``testpaths = ["tests"]`` already keeps them out of a plain ``pytest``; this also covers a
    checkout without ``tests/`` and ``pytest .``.
    """
    for arg in config.args:
        target = (config.invocation_params.dir / arg.split("::")[0]).resolve()
        if target == BENCH_DIR or BENCH_DIR in target.parents:
            return None
    return True


def _bench() -> Any:
    import bench_wacsf

    return bench_wacsf


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


@pytest.fixture(scope="session")
def bench_data_dir() -> Path:
    data_dir = _bench().default_data_dir()
    if not data_dir.is_dir() or not any(data_dir.glob("*.xyz")):
        pytest.skip(f"benchmark data not found: {data_dir} (set XANESNET_BENCH_DATA)")
    return data_dir


@pytest.fixture(scope="session")
def bench_structures(bench_data_dir: Path) -> list[Any]:
    structures, _ = _bench().load_structures(bench_data_dir, _env_int("XANESNET_BENCH_LIMIT", 500))
    return structures


@pytest.fixture(scope="session")
def bench_subset(bench_structures: list[Any]) -> list[Any]:
    """Evenly spread subset for the slow baselines (NumPy reference, DScribe)."""
    pick = _bench().spread_subset(len(bench_structures), _env_int("XANESNET_BENCH_REF_LIMIT", 50))
    return [bench_structures[i] for i in pick]


@pytest.fixture(scope="session")
def bench_config() -> Any:
    return _bench().WACSF()


@pytest.fixture(scope="session")
def bench_batch(bench_structures: list[Any]) -> Any:
    return _bench().pack_structures(bench_structures, 0)
