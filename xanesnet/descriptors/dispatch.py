"""Backend selection and the shared driver of the wACSF kernels.

Both backends expose the same kernel, ``wacsf_batch`` (see ``_numba_batch.wacsf_batch`` for its
signature), over a :class:`~xanesnet.descriptors.packing.PackedBatch` and the configuration's
:meth:`~xanesnet.descriptors.wacsf.WACSF.kernel_params`. Everything around the kernel —
validation, error messages, extras — is done here once. This module does not import the
configuration class (which calls into it): it takes any object with the attributes of
:class:`KernelConfig`.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from xanesnet.config import env_setting
from xanesnet.descriptors.limits import (
    MAX_CELLS_AWAY,
    MAX_LENGTH,
    SITE_ATOMS_TOO_CLOSE,
    SITE_TOO_FAR,
    SITE_TOO_MANY_IMAGES,
    SITE_TOO_MANY_NEIGHBOURS,
    max_images,
    max_neighbours,
)
from xanesnet.descriptors.packing import PackedBatch, pack_structures

__all__ = [
    "KernelConfig",
    "available_backends",
    "default_backend",
    "compute_packed",
    "compute_wacsf",
    "resolve_backend",
    "run_kernel",
    "site_error",
]

BACKENDS = ("cpp", "numba")


class KernelConfig(Protocol):
    """What the driver reads from a descriptor configuration (:class:`xanesnet.WACSF`)."""

    r_max: float
    min_distance: float
    use_spin: bool
    use_charge: bool

    def kernel_params(self) -> dict[str, Any]: ...


def _load_cpp() -> Callable[..., Any]:
    from xanesnet import _core

    return _core.wacsf_batch


def _load_numba() -> Callable[..., Any]:
    from xanesnet.descriptors import _numba_batch

    return _numba_batch.wacsf_batch


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
    requested = env_setting("XANESNET_BACKEND")
    if requested:
        return _check_backend(requested)
    found = available_backends()
    if not found:
        raise ImportError("xanesnet: neither the compiled core (_core) nor numba is importable")
    return found[0]


@functools.cache
def _warn_numba_fallback() -> None:
    """Says once per process that descriptors come from the slower Numba backend."""
    warnings.warn(
        "xanesnet: the compiled core (xanesnet._core) is not importable, descriptors are "
        "computed by the Numba fallback (same values, slower; build it with "
        "scripts/dev_build.sh or pip install .)",
        RuntimeWarning,
        stacklevel=4,
    )


def resolve_backend(backend: str | None) -> str:
    """The backend named, or the default one (:func:`default_backend`).

    When the default falls back to Numba because the compiled core is missing (and
    ``XANESNET_BACKEND`` does not ask for it), a RuntimeWarning says so, once per process.
    """
    if backend is not None:
        return _check_backend(backend)
    name = default_backend()
    if name == "numba" and env_setting("XANESNET_BACKEND") is None:
        _warn_numba_fallback()
    return name


def _check_backend(name: str) -> str:
    if name not in BACKENDS:
        raise ValueError(f"backend: expected one of {BACKENDS}, got {name!r}")
    return name


def _check_threads(n_threads: int) -> int:
    if not isinstance(n_threads, (int, np.integer)) or n_threads < 0:
        raise ValueError(f"n_threads: expected an integer >= 0 (0 = all cores), got {n_threads!r}")
    return int(n_threads)


def run_kernel(
    config: KernelConfig, batch: PackedBatch, backend: str, n_threads: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Run one backend's kernel on a packed batch.

    Returns:
        features (n_sites, n_features without spin/charge) float64, status (n_sites,) int32
        (:mod:`xanesnet.descriptors.limits`: 0 ok, else why the site failed; its row is zero),
        close_pair (n_sites, 2) int64 and close_distance (n_sites,) float64: what the status
        names (see :func:`site_error`).
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
        config.kernel_params(),
        _check_threads(n_threads),
    )


def site_error(
    config: KernelConfig,
    batch: PackedBatch,
    site: int,
    status: int,
    close_pair: np.ndarray,
    value: float,
) -> str:
    """Message for a site the kernel failed (``status`` != 0), naming its structure.

    ``close_pair`` and ``value`` are the site's entries of the kernel's close_pair and
    close_distance: the two atoms and their distance (atoms too close), the atom and its
    largest |coordinate| (too far; atom -1: a lattice vector), the number of images.
    """
    label = batch.labels[int(batch.site_structures[site])]
    j, k = (int(v) for v in close_pair)
    r_max = float(config.r_max)
    if status == SITE_ATOMS_TOO_CLOSE:
        return (
            f"{label}: atoms {j} and {k} are {value:.4f} Å apart "
            f"(closer than {config.min_distance} Å; overlapping atoms?)"
        )
    if status == SITE_TOO_MANY_NEIGHBOURS:
        return (
            f"{label}: more than {max_neighbours(r_max)} atoms within r_max = {r_max:g} Å of "
            f"atom {int(batch.site_atoms[site])} (denser than any matter; is the periodic cell "
            "too small?)"
        )
    if status == SITE_TOO_MANY_IMAGES:
        return (
            f"{label}: periodic cell too small or too skewed for r_max = {r_max:g} Å (the "
            f"neighbour search would cross {value:.3g} periodic images, at most "
            f"{max_images(r_max):.0f})"
        )
    if status == SITE_TOO_FAR:
        if j < 0:
            return (
                f"{label}: lattice vector component of {value:.3g} Å (at most "
                f"{MAX_LENGTH:g} Å accepted)"
            )
        return (
            f"{label}: atom {j} lies too far from the origin ({value:.3g} Å; coordinates "
            f"must stay within {MAX_LENGTH:g} Å and {MAX_CELLS_AWAY:g} cells along a periodic "
            "axis)"
        )
    return f"{label}: descriptor kernel status {status}"


def _extras(config: KernelConfig, structures: Sequence[Any], batch: PackedBatch) -> np.ndarray:
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
    config: KernelConfig,
    structures: Any,
    absorber: int | str | Sequence[Sequence[int]] = 0,
    *,
    backend: str | None = None,
    n_threads: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """See :meth:`xanesnet.WACSF.compute`."""
    backend = resolve_backend(backend)
    _check_threads(n_threads)
    from xanesnet.io.pymatgen import as_atoms_list  # also pymatgen Structure/Molecule

    structures = as_atoms_list(structures)
    batch = pack_structures(structures, absorber)
    features, index = compute_packed(config, batch, backend=backend, n_threads=n_threads)
    extras = _extras(config, structures, batch)
    if extras.shape[1]:
        features = np.concatenate([features, extras], axis=1)
    return features, index


def compute_packed(
    config: KernelConfig, batch: PackedBatch, *, backend: str | None = None, n_threads: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Descriptors of the sites of a packed batch, without the spin/charge extras.

    The part of :func:`compute_wacsf` after packing, for readers that pack structures
    themselves (:func:`xanesnet.descriptors.packing.pack_arrays`).

    Returns:
        features (n_sites, n_descriptor_features) float64 and index (n_sites, 2) int64
        (structure, atom) of each site.

    Raises:
        ValueError: unknown backend, bad ``n_threads``, or a site the kernel failed (atoms
            closer than ``config.min_distance``, a structure beyond the limits of
            :mod:`xanesnet.descriptors.limits`); the first such site is named.
    """
    backend = resolve_backend(backend)
    _check_threads(n_threads)
    features, status, close_pair, close_distance = run_kernel(config, batch, backend, n_threads)
    failed = np.nonzero(status)[0]
    if failed.size:
        s = int(failed[0])
        raise ValueError(
            site_error(config, batch, s, int(status[s]), close_pair[s], float(close_distance[s]))
        )
    index = np.stack([batch.site_structures, batch.site_atoms], axis=1)
    return features, index
