"""The per-chunk step of a batch job, shared by the local and the Dask executors: descriptors of
the chunk's sites of the model's element (failed structures set aside, structures without such
a site counted apart), then the model's spectra and their trust columns."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from xanesnet.descriptors.absorbers import element_sites
from xanesnet.descriptors.orbits import unique_element_sites
from xanesnet.frames import Frames

__all__ = ["ChunkResult", "run_step", "run_step_on_worker", "structure_means"]


class ChunkResult(NamedTuple):
    """One chunk computed.

    Attributes:
        ids: (n_sites,) structure id of each site.
        sites: (n_sites,) int64 absorber atom index of each site.
        spectra: (n_sites, n_energies) predicted spectra.
        spread: (n_sites, n_energies) the model's spread (zeros for a model without one).
        errors: (id, reason) of each structure that failed.
        trust: the per-site trust columns by name (:meth:`xanesnet.model.trust.SiteTrust
            .columns`: predicted_delta_mu, domain_score, outside_domain, unphysical).
        no_sites: ids of the structures without a site of the model's element.
        multiplicity: (n_sites,) int64 sites of each row's symmetry orbit (a unique-sites
            job; None otherwise).
        structure_ids: (n_means,) ids of the structures with sites (a unique-sites job).
        structure_mean: (n_means, n_energies) float32 multiplicity-weighted mean spectrum of
            each of those structures (the mean over all its sites of the element).
    """

    ids: list[str]
    sites: np.ndarray
    spectra: np.ndarray
    spread: np.ndarray
    errors: list[tuple[str, str]]
    trust: dict[str, np.ndarray] | None = None
    no_sites: list[str] = []
    multiplicity: np.ndarray | None = None
    structure_ids: list[str] | None = None
    structure_mean: np.ndarray | None = None


def structure_means(
    spectra: np.ndarray, multiplicity: np.ndarray, structure: np.ndarray, n_structures: int
) -> np.ndarray:
    """(n_structures, n_energies) float32 multiplicity-weighted mean of each structure's rows
    (``structure``: (n_rows,) its position; sums in float64)."""
    weights = multiplicity.astype(np.float64)
    sums = np.zeros((n_structures, spectra.shape[1]))
    np.add.at(sums, structure, spectra.astype(np.float64) * weights[:, None])
    totals = np.bincount(structure, weights=weights, minlength=n_structures)
    return (sums / np.maximum(totals, 1)[:, None]).astype(np.float32)


def run_step(
    model: Any,
    frames: Frames,
    absorber: int | str,
    *,
    backend: str | None,
    n_threads: int,
    precision: str,
    unique_sites: bool = False,
) -> ChunkResult:
    """Descriptors, spectra and trust columns of every absorbing site of one chunk.

    Args:
        model: a loaded :class:`~xanesnet.model.runtime.XanesModel`.
        frames: the chunk's structures.
        absorber: the model's element symbol or an atom index (see
            :func:`xanesnet.descriptors.absorbers.resolve_absorber`); an index selecting an
            atom of another element fails that structure.
        backend: descriptor backend (None: the default).
        n_threads: descriptor and kernel threads (0 = all cores).
        precision: network arithmetic ("float32" or "bfloat16").
        unique_sites: one row per symmetry orbit of each crystal's sites (``absorber`` the
            element), with multiplicities and each structure's mean spectrum
            (:mod:`xanesnet.descriptors.orbits`).
    """
    if unique_sites:
        orbits = unique_element_sites(
            model.descriptor,
            model.element,
            frames,
            model.label,
            backend=backend,
            n_threads=n_threads,
        )
        found = orbits.found
        mean, spread, site_trust = model.predict_with_trust(
            found.features, n_threads=n_threads, precision=precision, sigma=False
        )
        trust = site_trust.columns()
        means = structure_means(
            mean, orbits.multiplicity, orbits.structure, len(orbits.structure_ids)
        )
        return ChunkResult(
            found.ids,
            found.sites,
            mean,
            spread,
            found.errors,
            trust,
            found.no_sites,
            orbits.multiplicity,
            orbits.structure_ids,
            means,
        )
    found = element_sites(
        model.descriptor,
        model.element,
        frames,
        absorber,
        model.label,
        backend=backend,
        n_threads=n_threads,
    )
    mean, spread, site_trust = model.predict_with_trust(
        found.features, n_threads=n_threads, precision=precision, sigma=False
    )
    trust = site_trust.columns()
    return ChunkResult(found.ids, found.sites, mean, spread, found.errors, trust, found.no_sites)


_WORKER_MODELS: dict[str, Any] = {}


def run_step_on_worker(
    model_path: str,
    model_sha256: str,
    frames: Frames,
    absorber: int | str,
    backend: str | None,
    n_threads: int,
    precision: str,
    unique_sites: bool = False,
) -> ChunkResult:
    """:func:`run_step` in a Dask worker process (the model is loaded once per process)."""
    from xanesnet.model.files import load_model

    model = _WORKER_MODELS.get(model_sha256)
    if model is None:
        model = _WORKER_MODELS[model_sha256] = load_model(model_path)
    return run_step(
        model,
        frames,
        absorber,
        backend=backend,
        n_threads=n_threads,
        precision=precision,
        unique_sites=unique_sites,
    )
