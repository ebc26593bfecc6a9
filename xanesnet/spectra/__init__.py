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

from xanesnet.spectra import broadening, feff, files, grids, normalise
from xanesnet.spectra.broadening import *  # noqa: F403
from xanesnet.spectra.feff import *  # noqa: F403
from xanesnet.spectra.files import *  # noqa: F403
from xanesnet.spectra.grids import *  # noqa: F403
from xanesnet.spectra.normalise import *  # noqa: F403

# every public name of the modules, each listed once (in its module's __all__); the
# "+= module.__all__" form is the one type checkers follow
__all__: list[str] = []
__all__ += grids.__all__
__all__ += files.__all__
__all__ += broadening.__all__
__all__ += normalise.__all__
__all__ += feff.__all__
