"""XANES spectra: energy grids, spectrum files, resampling, broadening, normalisation, FEFF.

Conventions
-----------
* Energies are in eV. ``energies`` arguments are **absolute** photon energies unless a name says
  ``relative`` (``e = E - E0``, with ``E0`` the edge energy).
* Spectra are arrays ``mu`` of shape ``(n_energies,)`` or ``(n_spectra, n_energies)``; every
  operation here is vectorised over the leading axis and returns the same layout it was given.
* Resampling and broadening are linear in ``mu``: one matrix ``M`` of shape ``(n_out, n_in)``
  per configuration, applied to a batch of spectra as ``mu @ M.T``.

Modules, one job each:

* :mod:`~xanesnet.spectra.grids`: :class:`EnergyGrid`, tabulated K-edge energies, snapping
  printed energies to a grid, linear resampling;
* :mod:`~xanesnet.spectra.files`: processed (XANESNET) and raw FDMNES spectrum files;
* :mod:`~xanesnet.spectra.broadening`: Lorentzian broadening models (:class:`Broadening`);
* :mod:`~xanesnet.spectra.normalise`: edge-step normalisation;
* :mod:`~xanesnet.spectra.feff`: FEFF ``xmu.dat`` spectra on model grids, OmniXAS's target.

Every public name of these modules is importable from :mod:`xanesnet.spectra`.
"""

from __future__ import annotations

from xanesnet.spectra.broadening import (
    MODEL_DEFAULTS,
    Broadening,
    arctan_width,
    broaden,
    broaden_arctan,
    broaden_fixed_lorentzian,
    broaden_seah_dench,
    broadening_matrix,
    lorentzian_kernel,
    seah_dench_width,
)
from xanesnet.spectra.feff import (
    BOHR_RADIUS_ANGSTROM,
    OMNIXAS_CU_GRID,
    FeffSpectrumLike,
    omnixas_target,
    read_feff_spectrum,
    resample_feff,
)
from xanesnet.spectra.files import (
    format_processed_spectrum,
    read_fdmnes_spectrum,
    read_processed_spectrum,
    write_processed_spectrum,
)
from xanesnet.spectra.grids import (
    K_EDGE_ENERGIES,
    SNAP_TOLERANCE,
    EnergyGrid,
    apply_matrix,
    grid_relative,
    interpolation_matrix,
    resample,
    snap_to_grid,
)
from xanesnet.spectra.normalise import edge_step_normalise

__all__ = [
    "K_EDGE_ENERGIES",
    "SNAP_TOLERANCE",
    "EnergyGrid",
    "grid_relative",
    "snap_to_grid",
    "interpolation_matrix",
    "apply_matrix",
    "resample",
    "read_processed_spectrum",
    "read_fdmnes_spectrum",
    "write_processed_spectrum",
    "format_processed_spectrum",
    "MODEL_DEFAULTS",
    "Broadening",
    "arctan_width",
    "seah_dench_width",
    "lorentzian_kernel",
    "broadening_matrix",
    "broaden",
    "broaden_fixed_lorentzian",
    "broaden_arctan",
    "broaden_seah_dench",
    "edge_step_normalise",
    "BOHR_RADIUS_ANGSTROM",
    "OMNIXAS_CU_GRID",
    "FeffSpectrumLike",
    "read_feff_spectrum",
    "resample_feff",
    "omnixas_target",
]
