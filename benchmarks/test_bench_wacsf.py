"""pytest-benchmark timings of the wACSF backends and baselines.

One call computes every site of the batch; sites/s = ``extra_info["n_sites"]`` × OPS. Run with
``PYTHONPATH=. pytest benchmarks/`` (skipped when the data directory is missing).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from bench_wacsf import dscribe_acsf, pack_structures, run_kernel, wacsf_numpy

THREADS = [1, 2]


def _cpp_available() -> bool:
    try:
        from xanesnet import _core  # noqa: F401
    except ImportError:
        return False
    return True


needs_cpp = pytest.mark.skipif(not _cpp_available(), reason="xanesnet._core is not built")


def _needs_numba() -> None:
    pytest.importorskip("xanesnet.descriptors._numba", reason="Numba backend not importable")


def test_pack(benchmark: Any, bench_structures: list[Any]) -> None:
    benchmark.group = "wacsf packing"
    benchmark.extra_info["n_sites"] = len(bench_structures)
    batch = benchmark(pack_structures, bench_structures, 0)
    assert batch.n_sites == len(bench_structures)


@needs_cpp
@pytest.mark.parametrize("n_threads", THREADS)
def test_cpp_kernel(benchmark: Any, bench_config: Any, bench_batch: Any, n_threads: int) -> None:
    benchmark.group = "wacsf kernel"
    benchmark.extra_info["n_sites"] = bench_batch.n_sites
    features, status, _, _ = benchmark(run_kernel, bench_config, bench_batch, "cpp", n_threads)
    assert features.shape == (bench_batch.n_sites, bench_config.n_descriptor_features)
    assert not status.any()


@needs_cpp
@pytest.mark.parametrize("n_threads", THREADS)
def test_cpp_compute(
    benchmark: Any, bench_config: Any, bench_structures: list[Any], n_threads: int
) -> None:
    benchmark.group = "wacsf compute (incl. packing)"
    benchmark.extra_info["n_sites"] = len(bench_structures)
    features, _ = benchmark(
        bench_config.compute, bench_structures, 0, backend="cpp", n_threads=n_threads
    )
    assert features.shape[0] == len(bench_structures)


@pytest.mark.parametrize("n_threads", THREADS)
def test_numba_kernel(benchmark: Any, bench_config: Any, bench_batch: Any, n_threads: int) -> None:
    _needs_numba()
    run_kernel(bench_config, bench_batch, "numba", n_threads)  # JIT warm-up, not timed
    benchmark.group = "wacsf kernel"
    benchmark.extra_info["n_sites"] = bench_batch.n_sites
    features, status, _, _ = benchmark(run_kernel, bench_config, bench_batch, "numba", n_threads)
    assert features.shape == (bench_batch.n_sites, bench_config.n_descriptor_features)
    assert not status.any()


@pytest.mark.parametrize("n_threads", THREADS)
def test_numba_compute(
    benchmark: Any, bench_config: Any, bench_structures: list[Any], n_threads: int
) -> None:
    _needs_numba()
    bench_config.compute(bench_structures[:2], 0, backend="numba", n_threads=n_threads)
    benchmark.group = "wacsf compute (incl. packing)"
    benchmark.extra_info["n_sites"] = len(bench_structures)
    features, _ = benchmark(
        bench_config.compute, bench_structures, 0, backend="numba", n_threads=n_threads
    )
    assert features.shape[0] == len(bench_structures)


def test_numpy_reference(benchmark: Any, bench_config: Any, bench_subset: list[Any]) -> None:
    benchmark.group = "wacsf baselines (subset)"
    benchmark.extra_info["n_sites"] = len(bench_subset)

    def run() -> np.ndarray:
        return np.stack(
            [wacsf_numpy(bench_config, a.positions, a.numbers, 0) for a in bench_subset]
        )

    features = benchmark(run)
    assert features.shape == (len(bench_subset), bench_config.n_descriptor_features)


def test_dscribe(benchmark: Any, bench_config: Any, bench_subset: list[Any]) -> None:
    pytest.importorskip("dscribe")
    species = sorted({int(z) for a in bench_subset for z in a.get_atomic_numbers()})
    acsf = dscribe_acsf(bench_config, species)
    centers = [[0]] * len(bench_subset)
    benchmark.group = "wacsf baselines (subset)"
    benchmark.extra_info["n_sites"] = len(bench_subset)
    benchmark.extra_info["n_features"] = int(acsf.get_number_of_features())
    out = benchmark(acsf.create, bench_subset, centers=centers, n_jobs=1)
    assert len(out) == len(bench_subset)
