"""Units and normalisation of predicted spectra, as outputs state them.

Energies are absolute photon energies in eV. μ is on the scale of the spectra the model was
trained on: a model file says which in its optional metadata entry ``"spectrum_units"``
(:data:`SPECTRUM_UNITS_KEYS`); for shipped files written before that entry existed,
:data:`SHIPPED_SPECTRUM_UNITS` gives it by file name. The README's "Units and normalisation"
paragraph says the same for people.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "ENERGY_UNITS",
    "FDMNES_FE_UNNORMALISED",
    "EDGE_STEP_NORMALISED",
    "FEFF_NORMALISED",
    "SHIPPED_SPECTRUM_UNITS",
    "SPECTRUM_UNITS_KEYS",
    "UNKNOWN_SPECTRUM_UNITS",
    "job_spectrum_units",
    "output_attributes",
    "shipped_file_name",
    "spectrum_units",
]

ENERGY_UNITS = "eV"

#: Keys of a ``"spectrum_units"`` metadata entry: ``mu`` (units of μ, a short string),
#: ``edge_step_normalised`` (bool: μ divided by the edge step, so the post-edge is near 1) and
#: ``description`` (one sentence: what the training spectra are and how they were scaled).
SPECTRUM_UNITS_KEYS = ("mu", "edge_step_normalised", "description")

#: The shipped Fe K-edge models: trained on the processed XANESNET 2022 Fe set.
FDMNES_FE_UNNORMALISED: dict[str, Any] = {
    "mu": "arbitrary",
    "edge_step_normalised": False,
    "description": (
        "FDMNES absorption cross-section (Mbarn per absorbing atom) convolved with an "
        "unnormalised 1.25 eV Lorentzian on a 0.2 eV grid (about 15.7 x Mbarn); not edge-step "
        "normalised: mu at E0+60 eV is 0.28-0.68 (mean 0.43) in the 4079 training spectra"
    ),
}

#: Spectra divided by their edge step (the shipped V K-edge model's training data).
EDGE_STEP_NORMALISED: dict[str, Any] = {
    "mu": "normalised",
    "edge_step_normalised": True,
    "description": "FDMNES spectra, arctangent-convolved and edge-step normalised",
}

#: FEFF ``xmu.dat`` ``mu`` (normalised by FEFF at the edge + 50 eV; no broadening after FEFF):
#: the Cu K-edge OmniXAS training spectra.
FEFF_NORMALISED: dict[str, Any] = {
    "mu": "normalised",
    "edge_step_normalised": True,
    "description": "FEFF mu (xmu.dat), normalised by FEFF at the edge + 50 eV, not broadened",
}

#: Used where a model file says nothing of its spectra.
UNKNOWN_SPECTRUM_UNITS: dict[str, Any] = {
    "mu": "arbitrary",
    "edge_step_normalised": False,
    "description": "as the model's training spectra (not recorded in the model file)",
}

#: Shipped model files (by file name) that predate the ``"spectrum_units"`` metadata entry.
SHIPPED_SPECTRUM_UNITS: dict[str, dict[str, Any]] = {
    "Fe_K_edge.pt": FDMNES_FE_UNNORMALISED,
    "Fe_K_edge_ensemble.pt": FDMNES_FE_UNNORMALISED,
    "Fe_K_edge_fast.pt": FDMNES_FE_UNNORMALISED,
    "V_K_edge.pt": EDGE_STEP_NORMALISED,
    "Cu_K_edge.pt": FEFF_NORMALISED,
}


def spectrum_units(
    metadata: Mapping[str, Any] | None, file_name: str | None = None
) -> dict[str, Any]:
    """The units entry of a model: its metadata's ``"spectrum_units"``, else the shipped
    file's (by ``file_name``), else :data:`UNKNOWN_SPECTRUM_UNITS`.

    Returns:
        A dict with the keys of :data:`SPECTRUM_UNITS_KEYS` (missing ones filled from
        :data:`UNKNOWN_SPECTRUM_UNITS`).
    """
    entry = (metadata or {}).get("spectrum_units")
    if not isinstance(entry, Mapping):
        entry = SHIPPED_SPECTRUM_UNITS.get(file_name or "", UNKNOWN_SPECTRUM_UNITS)
    return {key: entry.get(key, UNKNOWN_SPECTRUM_UNITS[key]) for key in SPECTRUM_UNITS_KEYS}


@functools.lru_cache(maxsize=16)
def shipped_file_name(model_sha256: str | None) -> str | None:
    """The name of the shipped model file (of :data:`SHIPPED_SPECTRUM_UNITS`) with this
    SHA-256, or None. Hashes the few shipped files without importing torch."""
    if not model_sha256:
        return None
    from xanesnet.checksums import file_sha256

    folder = Path(__file__).resolve().parents[1] / "model" / "pretrained"
    for name in SHIPPED_SPECTRUM_UNITS:
        path = folder / name
        if path.is_file() and file_sha256(path) == model_sha256:
            return name
    return None


def job_spectrum_units(job: Mapping[str, Any]) -> dict[str, Any]:
    """The units entry of a batch job (a manifest's ``"job"``): the model's own
    ``"spectrum_units"`` where the job records it, else the shipped file's with the job's
    ``model_sha256``, else :data:`UNKNOWN_SPECTRUM_UNITS`."""
    model = job.get("model") or {}
    if isinstance(model.get("spectrum_units"), Mapping):
        return spectrum_units(model)
    return spectrum_units(None, shipped_file_name(job.get("model_sha256")))


def output_attributes(manifest: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Attributes of the arrays of a prediction output, by array name: ``units`` of
    ``energies`` (eV), of ``spectra`` and ``spread`` (μ's units, with ``normalisation`` and
    ``edge_step_normalised``)."""
    units = job_spectrum_units(manifest.get("job") or {})
    mu = {
        "units": str(units["mu"]),
        "edge_step_normalised": bool(units["edge_step_normalised"]),
        "normalisation": str(units["description"]),
    }
    return {"energies": {"units": ENERGY_UNITS}, "spectra": mu, "spread": dict(mu)}
