"""The per-chunk step of a batch job, shared by the local and the Dask executors: descriptors of
the chunk's sites (failed structures set aside), then the model's spectra."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from xanesnet.descriptors.sites import compute_sites
from xanesnet.frames import Frames

__all__ = ["ChunkResult", "run_step", "run_step_on_worker"]


class ChunkResult(NamedTuple):
    """One chunk computed.

    Attributes:
        ids: (n_sites,) structure id of each site.
        sites: (n_sites,) int64 absorber atom index of each site.
        spectra: (n_sites, n_energies) predicted spectra.
        spread: (n_sites, n_energies) the model's spread (zeros for a model without one).
        errors: (id, reason) of each structure that failed.
    """

    ids: list[str]
    sites: np.ndarray
    spectra: np.ndarray
    spread: np.ndarray
    errors: list[tuple[str, str]]


def run_step(
    model: Any,
    frames: Frames,
    absorber: int | str,
    *,
    backend: str | None,
    n_threads: int,
    precision: str,
) -> ChunkResult:
    """Descriptors and spectra of every absorbing site of one chunk.

    Args:
        model: a loaded model (``descriptor``, ``predict_features``).
        frames: the chunk's structures.
        absorber: element symbol or atom index.
        backend: descriptor backend (None: the default).
        n_threads: descriptor and kernel threads (0 = all cores).
        precision: network arithmetic ("float32" or "bfloat16").
    """
    features, ids, sites, errors = compute_sites(
        model.descriptor, frames, absorber, backend=backend, n_threads=n_threads
    )
    mean, spread = model.predict_features(features, n_threads=n_threads, precision=precision)
    return ChunkResult(ids, sites, mean, spread, errors)


_WORKER_MODELS: dict[str, Any] = {}


def run_step_on_worker(
    model_path: str,
    model_sha256: str,
    frames: Frames,
    absorber: int | str,
    backend: str | None,
    n_threads: int,
    precision: str,
) -> ChunkResult:
    """:func:`run_step` in a Dask worker process (the model is loaded once per process)."""
    from xanesnet.model.files import load_model

    model = _WORKER_MODELS.get(model_sha256)
    if model is None:
        model = _WORKER_MODELS[model_sha256] = load_model(model_path)
    return run_step(
        model, frames, absorber, backend=backend, n_threads=n_threads, precision=precision
    )
