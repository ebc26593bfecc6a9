"""FEFF spectra on model grids: ``xmu.dat`` (grid uniform in k, so non-uniform in energy)
resampled onto a model grid, and OmniXAS's Cu K-edge target.

The files are read by :mod:`xanesnet.io.feff`, which also defines the edge energy
(``e0 = omega - e``). Energies are in eV.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from xanesnet.spectra.grids import resample

__all__ = [
    "BOHR_RADIUS_ANGSTROM",
    "OMNIXAS_CU_GRID",
    "FeffSpectrumLike",
    "read_feff_spectrum",
    "resample_feff",
    "omnixas_target",
]

#: Bohr radius a0 in Å (CODATA 2018).
BOHR_RADIUS_ANGSTROM = 0.529177210903

#: OmniXAS's Cu K-edge target grid (absolute eV): 141 points, 8983.173 … 9018.173, step 0.25.
OMNIXAS_CU_GRID: np.ndarray = 8983.173 + 0.25 * np.arange(141)


class FeffSpectrumLike(Protocol):
    """What the FEFF functions need of a spectrum (:class:`xanesnet.io.feff.XmuSpectrum`)."""

    path: str
    omega: np.ndarray
    mu: np.ndarray
    e0: float
    xsedge: float | None


def read_feff_spectrum(path: str | Path) -> tuple[float, np.ndarray, np.ndarray]:
    """Read a FEFF ``xmu.dat`` as ``(e0, energies, mu)``, like :func:`read_fdmnes_spectrum`.

    ``e0`` is ``omega - e`` (see :mod:`xanesnet.io.feff` for the edge-energy definition),
    ``energies`` the absolute ``omega`` column (eV), both arrays of shape ``(n,)``. FEFF's μ
    already carries its Fermi-level cut (at ``e0 + Mu``, ``Mu`` −13.9…−3.8 eV in the Cu data)
    and core-hole broadening: a further :func:`~xanesnet.spectra.broaden` should not cut again:
    ``Broadening(..., fermi_cut=False)`` (or an ``e_fermi`` below the auxiliary grid).
    """
    from xanesnet.io.feff import read_xmu

    spectrum = read_xmu(path)
    return spectrum.e0, spectrum.omega, spectrum.mu


def resample_feff(
    spectra: FeffSpectrumLike | Sequence[FeffSpectrumLike],
    grid_energies: np.ndarray,
    *,
    relative: bool = False,
    outside: str = "hold",
) -> np.ndarray:
    """Linearly interpolate FEFF spectra (μ on their own ``omega`` grid) onto one model grid.

    Args:
        spectra: one spectrum or a sequence (each with its own grid and ``e0``).
        grid_energies: target energies, shape ``(m,)``, eV: absolute photon energies, or
            relative to each spectrum's ``e0`` (``omega - e0 = e``) when ``relative``.
        relative: whether ``grid_energies`` are relative to ``e0``.
        outside: beyond a spectrum's first/last row, ``"hold"`` the end value (as
            :func:`resample`) or raise (``"error"``).

    Returns:
        shape ``(m,)`` for one spectrum, ``(n_spectra, m)`` for a sequence, float64.

    Raises:
        ValueError: ``outside="error"`` and the grid leaves a spectrum's range (naming its file
            and the range), or an unknown ``outside``.
    """
    if outside not in ("hold", "error"):
        raise ValueError(f"outside must be 'hold' or 'error', got {outside!r}")
    single = not isinstance(spectra, Sequence)
    items = [spectra] if single else list(spectra)
    grid = np.asarray(grid_energies, dtype=np.float64)
    out = np.empty((len(items), grid.size))
    for row, spectrum in enumerate(items):
        energies = np.asarray(spectrum.omega, dtype=np.float64)
        if relative:
            energies = energies - spectrum.e0
        if outside == "error" and (grid.min() < energies[0] or grid.max() > energies[-1]):
            where = "E0" if relative else ""
            raise ValueError(
                f"{spectrum.path}: the grid {where}{grid.min():+.3f}…{where}{grid.max():+.3f} eV "
                f"leaves the spectrum's {where}{energies[0]:+.3f}…{where}{energies[-1]:+.3f} eV"
            )
        out[row] = resample(energies, spectrum.mu, grid)
    return out[0] if single else out


def omnixas_target(
    spectrum: FeffSpectrumLike,
    grid_energies: np.ndarray = OMNIXAS_CU_GRID,
    *,
    extrapolate: bool = False,
) -> np.ndarray:
    """OmniXAS's FEFF target: y = 1000 · μ · xsedge / a0² on an absolute-energy grid.

    The rows with μ > 0 are kept, scaled by ``xsedge`` (the ``xsedge+ 50`` header number) and
    the Bohr radius ``a0`` in Å, and interpolated linearly on ``omega`` onto ``grid_energies``
    (default :data:`OMNIXAS_CU_GRID`, the 141-point Cu window). Beyond the first/last kept row
    the end value is held, or, with ``extrapolate``, the line through the two end rows is
    continued. (The Cu window starts up to a few eV below the first FEFF row; on OmniXAS's
    validation split the mean-training-spectrum MSE is 0.0142146 held and 0.0142152
    extrapolated, against the quoted 0.01422.)

    Returns:
        shape ``(m,)`` float64.

    Raises:
        ValueError: the spectrum has no ``xsedge`` or fewer than 2 rows with μ > 0.
    """
    if spectrum.xsedge is None:
        raise ValueError(f"{spectrum.path}: no 'xsedge+ 50' number in the header")
    keep = np.asarray(spectrum.mu) > 0
    if np.count_nonzero(keep) < 2:
        raise ValueError(f"{spectrum.path}: fewer than 2 rows with mu > 0")
    omega = np.asarray(spectrum.omega, dtype=np.float64)[keep]
    y = 1000.0 * np.asarray(spectrum.mu)[keep] * spectrum.xsedge / BOHR_RADIUS_ANGSTROM**2
    grid = np.asarray(grid_energies, dtype=np.float64)
    out = resample(omega, y, grid)
    if extrapolate:
        low, high = grid < omega[0], grid > omega[-1]
        slope_low = (y[1] - y[0]) / (omega[1] - omega[0])
        slope_high = (y[-1] - y[-2]) / (omega[-1] - omega[-2])
        out[low] = y[0] + slope_low * (grid[low] - omega[0])
        out[high] = y[-1] + slope_high * (grid[high] - omega[-1])
    return out
