"""Input checks shared by the metrics: finite float64 arrays, spectrum pairs, energy grids."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["as_finite_array", "check_energies", "check_spectra_pair"]


def as_finite_array(a: Any, name: str) -> np.ndarray:
    """``a`` as a float64 array of finite values; ValueError naming ``name`` otherwise."""
    try:
        arr = np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: expected an array of real numbers ({exc})") from None
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: contains non-finite values (NaN or inf)")
    return arr


def check_spectra_pair(pred: Any, target: Any) -> tuple[np.ndarray, np.ndarray]:
    """Both spectra arrays as float64 of the same shape, ``(n_e,)`` or ``(n, n_e)``, n_e ≥ 1."""
    p = as_finite_array(pred, "pred")
    t = as_finite_array(target, "target")
    if p.shape != t.shape:
        raise ValueError(
            f"pred and target must have the same shape, got pred {p.shape} and target {t.shape}"
        )
    if p.ndim not in (1, 2):
        raise ValueError(
            f"pred and target: expected shape (n_e,) or (n, n_e), got {p.ndim}-D shape {p.shape}"
        )
    if p.shape[-1] == 0:
        raise ValueError("pred and target: the energy axis (last axis) is empty")
    return p, t


def check_energies(energies: Any, n_e: int, what: str) -> np.ndarray:
    """The energy grid (eV) as a strictly increasing float64 array of ``n_e`` points."""
    e = as_finite_array(energies, "energies")
    if e.ndim != 1:
        raise ValueError(f"energies: expected a 1-D array, got shape {e.shape}")
    if e.shape[0] != n_e:
        raise ValueError(
            f"energies and {what} disagree: energies has {e.shape[0]} points, "
            f"{what} has {n_e} along its last axis"
        )
    if n_e > 1 and not np.all(np.diff(e) > 0):
        raise ValueError("energies: must be strictly increasing")
    return e
