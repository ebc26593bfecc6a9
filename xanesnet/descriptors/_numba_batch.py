"""Entry point of the Numba wACSF backend: the argument checks of the C++ binding
(``csrc/bindings/bind_wacsf.cpp``), in its order and with its messages, then the kernel.

The fallback when the compiled core is not built; :func:`wacsf_batch` is the twin of
``xanesnet._core.wacsf_batch``.
"""

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np

from xanesnet.descriptors._numba import batch_kernel
from xanesnet.descriptors._numba_neighbours import cell_lists, geometry

__all__ = ["wacsf_batch"]

_PARAM_KEYS = (
    "r_max",
    "g2_eta",
    "g2_mu",
    "g4_eta",
    "g4_mu",
    "lambdas",
    "zetas",
    "element_weights",
    "channel_weights",
    "rjk_raw_cosine",
    "min_distance",
    "max_neighbours",
    "max_images",
    "max_length",
)


def _array(value: object, dtype: type) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(value, dtype=dtype))


def _require_shape(a: np.ndarray, name: str, expected: tuple[int, ...], text: str) -> None:
    """As xanesnet_bindings::require_shape: -1 accepts any length."""
    ok = a.ndim == len(expected) and all(
        n < 0 or actual == n for actual, n in zip(a.shape, expected, strict=True)
    )
    if not ok:
        raise ValueError(f"{name}: expected shape {text}, got {a.shape}")


def _params(params: dict[str, Any]) -> dict[str, Any]:
    """The params dict checked and converted as the binding's Params does."""
    for key in params:
        if key not in _PARAM_KEYS:
            raise ValueError(f"params: unknown key '{key}'")
    for key in _PARAM_KEYS:
        if key not in params:
            raise ValueError(f"params: missing '{key}'")
    p = {}
    for key in ("g2_eta", "g2_mu", "g4_eta", "g4_mu", "lambdas", "zetas"):
        p[key] = _array(params[key], np.float64)
    p["element_weights"] = _array(params["element_weights"], np.float64)
    p["channel_weights"] = _array(params["channel_weights"], np.float64)
    _require_shape(p["g2_eta"], "g2_eta", (-1,), "(n_g2,)")
    _require_shape(p["g2_mu"], "g2_mu", (p["g2_eta"].size,), "(n_g2,)")
    _require_shape(p["g4_eta"], "g4_eta", (-1,), "(n_g4_radial,)")
    _require_shape(p["g4_mu"], "g4_mu", (p["g4_eta"].size,), "(n_g4_radial,)")
    _require_shape(p["lambdas"], "lambdas", (-1,), "(n_lambdas,)")
    _require_shape(p["zetas"], "zetas", (-1,), "(n_zetas,)")
    _require_shape(p["element_weights"], "element_weights", (-1,), "(n_elements,)")
    _require_shape(
        p["channel_weights"],
        "channel_weights",
        (-1, p["element_weights"].size),
        "(n_channels, n_elements)",
    )
    p["r_max"] = float(params["r_max"])
    p["rjk_raw_cosine"] = bool(params["rjk_raw_cosine"])
    p["min_distance"] = float(params["min_distance"])
    p["max_neighbours"] = int(params["max_neighbours"])
    if p["max_neighbours"] < 1:
        raise ValueError("max_neighbours must be >= 1")
    p["max_images"] = float(params["max_images"])
    p["max_length"] = float(params["max_length"])
    return p


def wacsf_batch(
    positions: np.ndarray,
    numbers: np.ndarray,
    atom_offsets: np.ndarray,
    cells: np.ndarray,
    pbc: np.ndarray,
    site_structures: np.ndarray,
    site_atoms: np.ndarray,
    params: dict[str, Any],
    n_threads: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """wACSF of a packed batch of sites (the Numba twin of ``xanesnet._core.wacsf_batch``).

    Args:
        positions, numbers, atom_offsets, cells, pbc, site_structures, site_atoms: the
            arrays of a :class:`xanesnet.descriptors.packing.PackedBatch` (shapes and units
            there).
        params: :meth:`xanesnet.WACSF.kernel_params` (every key required, no other).
        n_threads: threads to use; 0 = all (``numba.config.NUMBA_NUM_THREADS``).

    Returns:
        features (n_sites, 1 + n_g2 + n_g4_radial·n_lambdas·n_zetas + n_channels·n_g2) float64,
        status (n_sites,) int32 (:mod:`xanesnet.descriptors.limits`; a failed site's row is
        zero), close_pair (n_sites, 2) int64 and close_distance (n_sites,) float64: what the
        status names (-1 and 0 for sites that are ok; see ``dispatch.site_error``).

    Raises:
        ValueError: malformed arrays or params, indices out of range, r_max <= 0, zetas <= 0,
            a singular periodic cell, n_threads < 0 — with the messages of the C++ backend.
    """
    positions = _array(positions, np.float64)
    numbers = _array(numbers, np.int32)
    atom_offsets = _array(atom_offsets, np.int64)
    cells = _array(cells, np.float64)
    pbc = _array(pbc, np.uint8)
    site_structures = _array(site_structures, np.int64)
    site_atoms = _array(site_atoms, np.int64)
    n_threads = int(n_threads)

    # -- the binding's checks, in its order
    n_structures = atom_offsets.size - 1
    if n_structures < 0:
        raise ValueError("atom_offsets: must not be empty")
    _require_shape(positions, "positions", (-1, 3), "(n_atoms, 3)")
    _require_shape(numbers, "numbers", (positions.shape[0],), "(n_atoms,)")
    _require_shape(cells, "cells", (n_structures, 3, 3), "(n_structures, 3, 3)")
    _require_shape(pbc, "pbc", (n_structures, 3), "(n_structures, 3)")
    _require_shape(site_atoms, "site_atoms", (site_structures.size,), "(n_sites,)")
    p = _params(params)
    offsets = atom_offsets.reshape(-1)
    if offsets[0] != 0 or offsets[n_structures] != positions.shape[0]:
        raise ValueError("atom_offsets: must start at 0 and end at n_atoms")
    if np.any(np.diff(offsets) < 0):
        raise ValueError("atom_offsets: must not decrease")
    if n_threads < 0:
        raise ValueError(f"n_threads: expected an integer >= 0 (0 = all cores), got {n_threads}")

    # -- the kernel's checks
    r_max = p["r_max"]
    if not r_max > 0.0:
        raise ValueError("r_max must be positive")
    if not (p["min_distance"] > 0.0 and math.isfinite(p["min_distance"])):
        raise ValueError("min_distance must be positive and finite")
    if not (p["max_images"] >= 1.0 and p["max_length"] > 0.0):
        raise ValueError("limits: max_images must be >= 1 and max_length > 0")
    zetas = p["zetas"]
    prefactor = np.empty(zetas.size)
    int_zetas = np.zeros(zetas.size, dtype=np.int64)
    integer_zetas = True
    for zi, zeta in enumerate(zetas.tolist()):
        if not zeta > 0.0:
            raise ValueError("zetas must be positive")
        prefactor[zi] = math.pow(2.0, 1.0 - zeta)
        is_int = zeta == math.floor(zeta) and zeta <= 64.0
        integer_zetas = integer_zetas and is_int
        int_zetas[zi] = int(zeta) if is_int else 0
    site_structures = site_structures.reshape(-1)
    site_atoms = site_atoms.reshape(-1)
    for s in range(site_structures.size):
        st = int(site_structures[s])
        if st < 0 or st >= n_structures:
            raise ValueError(f"site {s}: structure index out of range")
        n_atoms = int(offsets[st + 1] - offsets[st])
        if site_atoms[s] < 0 or site_atoms[s] >= n_atoms:
            raise ValueError(f"site {s}: atom index out of range")
    status_st, atom_st, value_st, frac, reach = geometry(
        positions, offsets, cells, pbc, site_structures, r_max, p["max_images"], p["max_length"]
    )
    searched = np.zeros(n_structures, dtype=bool)
    searched[site_structures] = True
    searched &= status_st == 0
    bins = cell_lists(frac, offsets, pbc, reach, searched)

    n_sites = site_structures.size
    g2_eta, channel_weights = p["g2_eta"], p["channel_weights"]
    n_features = (
        1
        + g2_eta.size
        + p["g4_eta"].size * p["lambdas"].size * zetas.size
        + channel_weights.shape[0] * g2_eta.size
    )
    features = np.zeros((n_sites, n_features))
    status = np.zeros(n_sites, dtype=np.int32)
    close_pair = np.full((n_sites, 2), -1, dtype=np.int64)
    close_distance = np.zeros(n_sites)
    if n_sites == 0:
        return features, status, close_pair, close_distance

    available = numba.config.NUMBA_NUM_THREADS
    threads = available if n_threads == 0 else min(n_threads, available)
    previous = numba.get_num_threads()
    numba.set_num_threads(threads)  # for this call only, restored below
    try:
        batch_kernel(
            positions,
            numbers,
            offsets,
            cells,
            pbc,
            status_st,
            atom_st,
            value_st,
            frac,
            reach,
            *bins,
            site_structures,
            site_atoms,
            p["element_weights"],
            channel_weights,
            r_max,
            g2_eta,
            p["g2_mu"],
            p["g4_eta"],
            p["g4_mu"],
            p["lambdas"],
            zetas,
            integer_zetas,
            int_zetas,
            prefactor,
            p["rjk_raw_cosine"],
            p["min_distance"],
            p["max_neighbours"],
            features,
            status,
            close_pair,
            close_distance,
        )
    finally:
        numba.set_num_threads(previous)
    return features, status, close_pair, close_distance
