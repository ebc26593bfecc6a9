"""Energy grids around an edge, and linear resampling between grids.

Energies are in eV, absolute unless a name says ``relative`` (``e = E - E0``). Resampling is
linear in μ: one matrix ``W`` of shape ``(n_out, n_in)`` per pair of grids, applied to a batch
of spectra as ``mu @ W.T``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "K_EDGE_ENERGIES",
    "SNAP_TOLERANCE",
    "EnergyGrid",
    "grid_relative",
    "snap_to_grid",
    "interpolation_matrix",
    "apply_matrix",
    "resample",
]

#: Tabulated K-edge energies (eV) of the first-row transition metals.
K_EDGE_ENERGIES: dict[str, float] = {
    "Ti": 4966.0,
    "V": 5465.0,
    "Cr": 5989.0,
    "Mn": 6539.0,
    "Fe": 7112.0,
    "Co": 7709.0,
    "Ni": 8333.0,
    "Cu": 8979.0,
    "Zn": 9659.0,
}

#: Tolerance (eV) for matching energies printed with 2 decimals to an exact grid.
SNAP_TOLERANCE = 0.006


# --------------------------------------------------------------------------------------------
# Energy grid
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EnergyGrid:
    """A uniform energy grid around an edge.

    Attributes:
        e0: edge energy E0 (eV, absolute).
        start: first point relative to ``e0`` (eV).
        stop: last point relative to ``e0`` (eV, included).
        n_points: number of points (≥ 2).
    """

    e0: float
    start: float = -15.0
    stop: float = 60.0
    n_points: int = 226

    def __post_init__(self) -> None:
        if int(self.n_points) != self.n_points or self.n_points < 2:
            raise ValueError(f"EnergyGrid needs n_points >= 2 (integer), got {self.n_points!r}")
        if not self.stop > self.start:
            raise ValueError(f"EnergyGrid needs stop > start, got {self.start}..{self.stop}")
        for name in ("e0", "start", "stop"):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"EnergyGrid.{name} must be finite")
        object.__setattr__(self, "n_points", int(self.n_points))

    @classmethod
    def standard(cls, e0: float) -> EnergyGrid:
        """The grid of the published models: 226 points, E0 − 15 … E0 + 60 eV, step 1/3 eV."""
        return cls(float(e0), -15.0, 60.0, 226)

    @property
    def step(self) -> float:
        """Spacing of the grid (eV)."""
        return (self.stop - self.start) / (self.n_points - 1)

    @property
    def relative(self) -> np.ndarray:
        """Energies relative to ``e0``, shape ``(n_points,)`` (eV)."""
        return np.linspace(self.start, self.stop, self.n_points)

    @property
    def energies(self) -> np.ndarray:
        """Absolute energies ``e0 + relative``, shape ``(n_points,)`` (eV)."""
        return self.e0 + self.relative

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (inverse of :meth:`from_dict`)."""
        return {
            "e0": float(self.e0),
            "start": float(self.start),
            "stop": float(self.stop),
            "n_points": int(self.n_points),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EnergyGrid:
        """Build a grid from :meth:`to_dict` output; unknown keys are an error."""
        unknown = set(data) - {"e0", "start", "stop", "n_points"}
        if unknown:
            raise ValueError(f"EnergyGrid.from_dict: unknown keys {sorted(unknown)}")
        return cls(
            float(data["e0"]),
            float(data.get("start", -15.0)),
            float(data.get("stop", 60.0)),
            int(data.get("n_points", 226)),
        )


def grid_relative(grid: EnergyGrid | np.ndarray, e0: float) -> np.ndarray:
    """Positions of ``grid`` relative to ``e0``, shape ``(n_points,)`` (eV); an array argument
    holds absolute energies."""
    if isinstance(grid, EnergyGrid):
        rel = grid.relative
        return rel if grid.e0 == e0 else rel + (grid.e0 - e0)
    return np.asarray(grid, dtype=np.float64) - e0


def snap_to_grid(
    energies: np.ndarray, grid: EnergyGrid | np.ndarray, tol: float = SNAP_TOLERANCE
) -> np.ndarray:
    """Replace energies printed with limited precision by the exact grid energies.

    Processed files print energies with 2 decimals (7097.33 stands for 7097 + 1/3). Returns the
    exact grid energies, shape ``(n,)`` (eV), when every printed value is within ``tol`` eV of the
    grid point at the same index; otherwise raises ``ValueError``.
    """
    energies = np.asarray(energies, dtype=np.float64)
    exact = grid.energies if isinstance(grid, EnergyGrid) else np.asarray(grid, dtype=np.float64)
    if energies.shape != exact.shape:
        raise ValueError(f"{energies.size} energies do not match a grid of {exact.size} points")
    worst = float(np.max(np.abs(energies - exact))) if energies.size else 0.0
    if worst > tol:
        i = int(np.argmax(np.abs(energies - exact)))
        raise ValueError(
            f"energy {energies[i]:.4f} eV (point {i}) is {worst:.4f} eV from the grid "
            f"value {exact[i]:.4f} eV (tolerance {tol} eV)"
        )
    return exact.copy()


def interpolation_matrix(x_from: np.ndarray, x_to: np.ndarray) -> np.ndarray:
    """Linear-interpolation matrix ``W`` of shape ``(len(x_to), len(x_from))``.

    ``f_to = W @ f_from`` interpolates linearly; outside ``x_from`` the first/last value is held
    constant (as ``numpy.interp``). ``x_from`` must be strictly increasing.
    """
    x_from = np.asarray(x_from, dtype=np.float64)
    x_to = np.asarray(x_to, dtype=np.float64)
    if x_from.ndim != 1 or x_from.size < 2:
        raise ValueError("interpolation needs at least 2 source points")
    if np.any(np.diff(x_from) <= 0):
        raise ValueError("source energies must be strictly increasing")
    n = x_from.size
    xc = np.clip(x_to, x_from[0], x_from[-1])
    j = np.clip(np.searchsorted(x_from, xc, side="right") - 1, 0, n - 2)
    w1 = (xc - x_from[j]) / (x_from[j + 1] - x_from[j])
    rows = np.arange(x_to.size)
    matrix = np.zeros((x_to.size, n))
    matrix[rows, j] = 1.0 - w1
    matrix[rows, j + 1] += w1
    return matrix


def apply_matrix(matrix: np.ndarray, mu: np.ndarray, n_in: int) -> np.ndarray:
    """``mu @ matrix.T`` for spectra ``mu`` of shape ``(n_in,)`` or ``(n_spectra, n_in)``.

    Raises ``ValueError`` when ``mu`` has another shape.
    """
    mu = np.asarray(mu, dtype=np.float64)
    if mu.shape[-1] != n_in or mu.ndim not in (1, 2):
        raise ValueError(f"mu must have shape ({n_in},) or (n_spectra, {n_in}), got {mu.shape}")
    return mu @ matrix.T


def resample(energies: np.ndarray, mu: np.ndarray, grid_energies: np.ndarray) -> np.ndarray:
    """Linearly interpolate spectra onto new energies (constant beyond the ends).

    Args:
        energies: source energies, shape ``(n,)`` (eV), strictly increasing.
        mu: spectra, shape ``(n,)`` or ``(n_spectra, n)``.
        grid_energies: target energies, shape ``(m,)`` (eV), same reference as ``energies``.

    Returns:
        shape ``(m,)`` or ``(n_spectra, m)``.
    """
    matrix = interpolation_matrix(energies, grid_energies)
    return apply_matrix(matrix, mu, matrix.shape[1])
