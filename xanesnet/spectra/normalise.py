"""Edge-step normalisation of spectra (a quadratic fitted on the post-edge region)."""

from __future__ import annotations

import numpy as np

__all__ = ["edge_step_normalise"]


def edge_step_normalise(
    energies: np.ndarray,
    mu: np.ndarray,
    e0: float,
    window: tuple[float, float] = (100.0, 400.0),
) -> np.ndarray:
    """Edge-step normalisation: divide μ by q(E0), q a quadratic fitted on the post-edge window.

    Args:
        energies: shape ``(n,)`` (absolute eV).
        mu: shape ``(n,)`` or ``(n_spectra, n)``.
        e0: edge energy (eV).
        window: post-edge fit window relative to E0 (eV), default 100…400.

    Raises:
        ValueError: if the spectra do not cover the window (e.g. the Fe set, which stops at
            E0 + 60 eV), or the window holds fewer than 3 points, or a step is zero.
    """
    energies = np.asarray(energies, dtype=np.float64)
    mu = np.asarray(mu, dtype=np.float64)
    if energies.ndim != 1 or mu.shape[-1] != energies.size or mu.ndim not in (1, 2):
        raise ValueError(f"mu {mu.shape} does not match energies {energies.shape}")
    rel = energies - e0
    lo, hi = window
    if rel[0] > lo or rel[-1] < hi:
        raise ValueError(
            f"edge-step normalisation needs spectra covering E0{lo:+g}…E0{hi:+g} eV; these "
            f"cover E0{rel[0]:+.2f}…E0{rel[-1]:+.2f} eV"
        )
    inside = (rel >= lo) & (rel <= hi)
    if np.count_nonzero(inside) < 3:
        raise ValueError("edge-step normalisation needs at least 3 points in the fit window")
    x = rel[inside]
    y = mu[..., inside].T  # (n_window,) or (n_window, n_spectra)
    # Fit in relative energy: q(E0) is then the constant coefficient.
    coeffs = np.polynomial.polynomial.polyfit(x, y, 2)
    step = coeffs[0]
    if np.any(step == 0) or not np.all(np.isfinite(step)):
        raise ValueError("edge-step normalisation: zero or non-finite edge step")
    return mu / (step if mu.ndim == 1 else step[:, None])
