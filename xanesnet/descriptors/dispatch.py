"""Backend selection and the shared driver of the wACSF kernels.

Both backends expose the same kernel, ``wacsf_batch`` (see ``_numba.wacsf_batch`` for its
signature), over a :class:`~xanesnet.descriptors.packing.PackedBatch`. Everything around the
kernel — validation, error messages, extras — is done here once.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from xanesnet.descriptors.packing import MIN_DISTANCE, PackedBatch, pack_structures

if TYPE_CHECKING:
    from xanesnet.descriptors.wacsf import WACSF

__all__ = [
    "available_backends",
    "default_backend",
    "compute_packed",
    "compute_wacsf",
    "run_kernel",
]

BACKENDS = ("cpp", "numba")


def _load_cpp() -> Callable[..., Any]:
    from xanesnet import _core

    return _core.wacsf_batch


def _load_numba() -> Callable[..., Any]:
    from xanesnet.descriptors import _numba

    return _numba.wacsf_batch


_LOADERS = {"cpp": _load_cpp, "numba": _load_numba}


def available_backends() -> list[str]:
    """Backends that import on this machine, best first."""
    found = []
    for name in BACKENDS:
        try:
            _LOADERS[name]()
        except ImportError:
            continue
        found.append(name)
    return found


def default_backend() -> str:
    """The backend used when none is named: "cpp" when compiled, else "numba".

    The environment variable ``XANESNET_BACKEND`` overrides it.
    """
    requested = os.environ.get("XANESNET_BACKEND")
    if requested:
        return _check_backend(requested)
    found = available_backends()
    if not found:
        raise ImportError("xanesnet: neither the compiled core (_core) nor numba is importable")
    return found[0]


def _check_backend(name: str) -> str:
    if name not in BACKENDS:
        raise ValueError(f"backend: expected one of {BACKENDS}, got {name!r}")
    return name


def _check_threads(n_threads: int) -> int:
    if not isinstance(n_threads, (int, np.integer)) or n_threads < 0:
        raise ValueError(f"n_threads: expected an integer >= 0 (0 = all cores), got {n_threads!r}")
    return int(n_threads)


def run_kernel(
    config: WACSF, batch: PackedBatch, backend: str, n_threads: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Run one backend's kernel on a packed batch.

    Returns:
        features (n_sites, n_features without spin/charge) float64, status (n_sites,) int32 (0 = ok,
        1 = atoms too close), close_pair (n_sites, 2) int64 atom indices within the structure,
        close_distance (n_sites,) float64 Å.
    """
    kernel = _LOADERS[_check_backend(backend)]()
    return kernel(
        batch.positions,
        batch.numbers,
        batch.atom_offsets,
        batch.cells,
        batch.pbc,
        batch.site_structures,
        batch.site_atoms,
        config.element_weights(),
        float(config.r_max),
        np.asarray(config.g2_eta),
        np.asarray(config.g2_mu),
        np.asarray(config.g4_eta),
        np.asarray(config.g4_mu),
        np.asarray(config.lambdas, dtype=np.float64),
        np.asarray(config.zetas, dtype=np.float64),
        config.rjk_cutoff == "raw",
        MIN_DISTANCE,
        _check_threads(n_threads),
        channel_weights=np.ascontiguousarray(config.group_weights),
    )


def site_error(batch: PackedBatch, site: int, close_pair: np.ndarray, distance: float) -> str:
    """Message for a site whose sphere holds atoms closer than the minimum distance."""
    label = batch.labels[int(batch.site_structures[site])]
    j, k = (int(v) for v in close_pair)
    return (
        f"{label}: atoms {j} and {k} are {distance:.4f} Å apart "
        f"(closer than {MIN_DISTANCE} Å; overlapping atoms?)"
    )


def _extras(config: WACSF, structures: Sequence[Any], batch: PackedBatch) -> np.ndarray:
    columns = []
    for flag, keys, what in (
        (config.use_spin, ("spin", "S"), "total spin"),
        (config.use_charge, ("charge", "q"), "charge"),
    ):
        if not flag:
            continue
        values = np.empty(batch.n_structures)
        for s, atoms in enumerate(structures):
            info = atoms.info or {}
            key = next((k for k in keys if k in info), None)
            if key is None:
                raise ValueError(
                    f"{batch.labels[s]}: descriptor needs the {what} in atoms.info[{keys[0]!r}]"
                )
            try:
                values[s] = float(info[key])
            except (TypeError, ValueError) as exc:
                raise ValueError(
                    f"{batch.labels[s]}: atoms.info[{key!r}] = {info[key]!r} is not a number"
                ) from exc
        columns.append(values[batch.site_structures])
    return np.stack(columns, axis=1) if columns else np.empty((batch.n_sites, 0))


def compute_wacsf(
    config: WACSF,
    structures: Any,
    absorber: int | str | Sequence[Sequence[int]] = 0,
    *,
    backend: str | None = None,
    n_threads: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """See :meth:`xanesnet.WACSF.compute`."""
    from xanesnet.descriptors.wacsf import _as_list

    backend = default_backend() if backend is None else _check_backend(backend)
    _check_threads(n_threads)
    structures = _as_list(structures)
    batch = pack_structures(structures, absorber)
    features, index = compute_packed(config, batch, backend=backend, n_threads=n_threads)
    extras = _extras(config, structures, batch)
    if extras.shape[1]:
        features = np.concatenate([features, extras], axis=1)
    return features, index


def compute_packed(
    config: WACSF, batch: PackedBatch, *, backend: str | None = None, n_threads: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Descriptors of the sites of a packed batch, without the spin/charge extras.

    The part of :func:`compute_wacsf` after packing, for readers that pack structures
    themselves (:func:`xanesnet.descriptors.packing.pack_arrays`).

    Returns:
        features (n_sites, n_descriptor_features) float64 and index (n_sites, 2) int64
        (structure, atom) of each site.

    Raises:
        ValueError: unknown backend, bad ``n_threads``, or atoms closer than MIN_DISTANCE
            in a site's sphere (the first such site is named).
    """
    backend = default_backend() if backend is None else _check_backend(backend)
    _check_threads(n_threads)
    features, status, close_pair, close_distance = run_kernel(config, batch, backend, n_threads)
    failed = np.nonzero(status)[0]
    if failed.size:
        s = int(failed[0])
        raise ValueError(site_error(batch, s, close_pair[s], float(close_distance[s])))
    index = np.stack([batch.site_structures, batch.site_atoms], axis=1)
    return features, index
