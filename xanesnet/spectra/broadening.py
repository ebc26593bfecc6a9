"""Lorentzian broadening of spectra: fixed, arctangent (FDMNES style) and Seah–Dench widths.

Broadening is linear in ``mu``: each configuration (:class:`Broadening`) builds **one** kernel
matrix ``M`` of shape ``(n_out, n_in)`` and a batch of spectra is broadened as ``mu @ M.T``.
Energies are in eV: the inputs absolute, the widths and the auxiliary grid relative to E0.

The fixed-width Lorentzian recipe (:func:`broaden_fixed_lorentzian` with its defaults) is the one
that made the published ``xanesnet_2022_preconv`` Fe K-edge set from the raw FDMNES output
(``xanesnet_2022_default``); it reproduces those files to print precision (relative ≤ 5e-8).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from xanesnet.spectra.grids import EnergyGrid, apply_matrix, grid_relative, interpolation_matrix

__all__ = [
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
]

#: model -> default parameters (eV). ``e_fermi`` is relative to E0.
MODEL_DEFAULTS: dict[str, dict[str, float]] = {
    "fixed": {"gamma": 1.25, "e_fermi": -1.0},
    "arctan": {
        "gamma_hole": 2.0,
        "gamma_max": 15.0,
        "e_cent": 30.0,
        "e_larg": 30.0,
        "e_fermi": -5.0,
    },
    "seah-dench": {"a": 1.0, "gamma_hole": 2.0, "gamma_m": 15.0, "e_fermi": -5.0},
}

_SYMBOLS = {
    "gamma": "Γ",
    "gamma_hole": "Γ_hole",
    "gamma_max": "Γ_max",
    "gamma_m": "Γ_m",
    "e_cent": "E_cent",
    "e_larg": "E_larg",
    "e_fermi": "e_F",
    "a": "A",
}


def arctan_width(
    e: np.ndarray,
    gamma_hole: float = 2.0,
    gamma_max: float = 15.0,
    e_cent: float = 30.0,
    e_larg: float = 30.0,
    e_fermi: float = -5.0,
) -> np.ndarray:
    """FDMNES-style arctangent FWHM Γ(e) (eV) at energies ``e`` relative to E0 (eV).

    ``x = (e − e_F)/E_cent``, ``Γ = Γ_hole + Γ_max (½ + arctan((π/3)(Γ_max/E_larg)(x − 1/x²))/π)``;
    at and below the Fermi level (x ≤ 0) the width is Γ_hole (the limit x → 0⁺).
    """
    e = np.asarray(e, dtype=np.float64)
    x = (e - e_fermi) / e_cent
    above = x > 0
    xs = np.where(above, x, 1.0)
    arg = (math.pi / 3.0) * (gamma_max / e_larg) * (xs - 1.0 / xs**2)
    extra = gamma_max * (0.5 + np.arctan(arg) / math.pi)
    return gamma_hole + np.where(above, extra, 0.0)


def seah_dench_width(
    e: np.ndarray,
    a: float = 1.0,
    gamma_hole: float = 2.0,
    gamma_m: float = 15.0,
    e_fermi: float = -5.0,
) -> np.ndarray:
    """Seah–Dench FWHM Γ(e) = Γ_hole + A Γ_m x / (Γ_m + A x), x = e − e_F (eV, relative to E0).

    Below the Fermi level (x ≤ 0) the width is Γ_hole.
    """
    x = np.maximum(np.asarray(e, dtype=np.float64) - e_fermi, 0.0)
    return gamma_hole + a * gamma_m * x / (gamma_m + a * x)


def lorentzian_kernel(e: np.ndarray, gamma: np.ndarray | float) -> np.ndarray:
    """Unnormalised Lorentzian kernel ``K[i, j] = (Γ_j/2) / ((e_j − e_i)² + (Γ_j/2)²)``.

    Args:
        e: energies (eV), shape ``(n,)``.
        gamma: FWHM (eV), scalar or shape ``(n,)`` — the width at the *source* energy ``e_j``.

    Returns:
        shape ``(n, n)``; ``out = K @ mu`` gives ``out(e_i) = Σ_j K[i, j] μ(e_j)``. No 1/π and no
        step factor: for a fine uniform step ``h`` each column sums to about ``π/h``.
    """
    e = np.asarray(e, dtype=np.float64)
    half = np.broadcast_to(np.asarray(gamma, dtype=np.float64), e.shape) / 2.0
    return half[None, :] / ((e[None, :] - e[:, None]) ** 2 + half[None, :] ** 2)


@dataclass(frozen=True)
class Broadening:
    """Configuration of a broadening: model, its parameters and the auxiliary grid.

    Attributes:
        model: ``"fixed"`` (constant FWHM ``gamma``), ``"arctan"`` (FDMNES style) or
            ``"seah-dench"``; see :data:`MODEL_DEFAULTS` for the parameters (eV).
        params: the model's parameters (missing ones take the defaults; unknown ones are an
            error). ``e_fermi`` is relative to E0: μ is set to zero below it.
        aux_start, aux_stop, aux_step: auxiliary grid (eV, relative to E0) on which the
            convolution is done; μ is held constant beyond the data.
        float32_input: round the input energies and μ to float32 first (as the upstream code
            that made the published set did; needed to reproduce it to print precision).
        normalised: multiply the kernel by ``aux_step/π`` (unit area); the published recipe
            does not (default False).
        fermi_cut: set μ to zero below ``e_fermi`` before the convolution (default True).
            False for spectra that already carry their Fermi cut, such as FEFF's; ``e_fermi``
            then only sets where the arctangent/Seah–Dench widths start to grow.
    """

    model: str = "fixed"
    params: Mapping[str, float] = field(default_factory=dict, hash=False)
    aux_start: float = -50.0
    aux_stop: float = 150.0
    aux_step: float = 0.2
    float32_input: bool = True
    normalised: bool = False
    fermi_cut: bool = True

    def __post_init__(self) -> None:
        if self.model not in MODEL_DEFAULTS:
            raise ValueError(
                f"unknown broadening model {self.model!r}; choose from {sorted(MODEL_DEFAULTS)}"
            )
        defaults = MODEL_DEFAULTS[self.model]
        unknown = set(self.params) - set(defaults)
        if unknown:
            raise ValueError(
                f"{self.model} broadening has no parameter(s) {sorted(unknown)}; "
                f"it takes {sorted(defaults)}"
            )
        params = {key: float(self.params.get(key, value)) for key, value in defaults.items()}
        for key, value in params.items():
            if not math.isfinite(value):
                raise ValueError(f"broadening parameter {key} must be finite")
        positive = {"gamma", "gamma_max", "e_cent", "e_larg", "gamma_m", "a"}
        for key in positive & set(params):
            if params[key] <= 0:
                raise ValueError(f"broadening parameter {key} must be > 0, got {params[key]}")
        if "gamma_hole" in params and params["gamma_hole"] < 0:
            raise ValueError("broadening parameter gamma_hole must be >= 0")
        if not (self.aux_step > 0 and self.aux_stop > self.aux_start):
            raise ValueError("auxiliary grid needs aux_step > 0 and aux_stop > aux_start")
        object.__setattr__(self, "params", params)

    # constructors ---------------------------------------------------------------------------
    @classmethod
    def fixed(cls, gamma: float = 1.25, e_fermi: float = -1.0, **options: Any) -> Broadening:
        """Constant-FWHM Lorentzian (the published Fe recipe with the defaults)."""
        return cls("fixed", {"gamma": gamma, "e_fermi": e_fermi}, **options)

    @classmethod
    def arctan(cls, **params: Any) -> Broadening:
        """Arctangent width; keyword parameters as :func:`arctan_width` (plus grid options)."""
        return cls._with_options("arctan", params)

    @classmethod
    def seah_dench(cls, **params: Any) -> Broadening:
        """Seah–Dench width; keyword parameters as :func:`seah_dench_width` (plus options)."""
        return cls._with_options("seah-dench", params)

    @classmethod
    def _with_options(cls, model: str, params: dict[str, Any]) -> Broadening:
        names = ("aux_start", "aux_stop", "aux_step", "float32_input", "normalised", "fermi_cut")
        options = {key: params.pop(key) for key in names if key in params}
        return cls(model, params, **options)

    # behaviour ------------------------------------------------------------------------------
    @property
    def e_fermi(self) -> float:
        """Fermi level relative to E0 (eV)."""
        return self.params["e_fermi"]

    def width(self, e: np.ndarray) -> np.ndarray:
        """FWHM Γ(e) (eV) at energies ``e`` relative to E0, same shape as ``e``."""
        e = np.asarray(e, dtype=np.float64)
        if self.model == "fixed":
            return np.full(e.shape, self.params["gamma"])
        if self.model == "arctan":
            return arctan_width(e, **self.params)
        return seah_dench_width(e, **self.params)

    def aux_grid(self) -> np.ndarray:
        """Auxiliary grid relative to E0, shape ``(n_aux,)`` (eV)."""
        n = int(round((self.aux_stop - self.aux_start) / self.aux_step)) + 1
        return np.linspace(self.aux_start, self.aux_start + (n - 1) * self.aux_step, n)

    def label(self) -> str:
        """One-line human-readable description, e.g. to print next to a figure."""
        values = ", ".join(f"{_SYMBOLS[k]}={v:g}" for k, v in self.params.items())
        text = f"{self.model} Lorentzian broadening ({values} eV)"
        text += ", normalised kernel" if self.normalised else ""
        return text + ("" if self.fermi_cut else ", no Fermi cut")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (inverse of :meth:`from_dict`)."""
        return {
            "model": self.model,
            "params": dict(self.params),
            "aux_start": float(self.aux_start),
            "aux_stop": float(self.aux_stop),
            "aux_step": float(self.aux_step),
            "float32_input": bool(self.float32_input),
            "normalised": bool(self.normalised),
            "fermi_cut": bool(self.fermi_cut),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Broadening:
        """Build from :meth:`to_dict` output; unknown keys are an error."""
        known = {
            "model",
            "params",
            "aux_start",
            "aux_stop",
            "aux_step",
            "float32_input",
            "normalised",
            "fermi_cut",
        }
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"Broadening.from_dict: unknown keys {sorted(unknown)}")
        return cls(**dict(data))


def _relative_input(energies: np.ndarray, e0: float, float32_input: bool) -> np.ndarray:
    """Input energies relative to E0, shape ``(n,)`` (float64; float32-rounded on request)."""
    energies = np.asarray(energies, dtype=np.float64)
    if energies.ndim != 1 or energies.size < 2:
        raise ValueError("energies must be 1-D with at least 2 points")
    if float32_input:
        rel = (energies.astype(np.float32) - np.float32(e0)).astype(np.float64)
    else:
        rel = energies - float(e0)
    if np.any(np.diff(rel) <= 0):
        raise ValueError("energies must be strictly increasing")
    return rel


def broadening_matrix(
    energies: np.ndarray,
    e0: float,
    broadening: Broadening | None = None,
    grid: EnergyGrid | np.ndarray | None = None,
) -> np.ndarray:
    """The matrix ``M`` (shape ``(n_out, n_in)``) of a whole broadening: ``out = mu @ M.T``.

    Steps (energies relative to E0): interpolate onto the auxiliary grid (constant beyond the
    data), zero below ``e_F`` (unless ``fermi_cut`` is off), convolve with the Lorentzian kernel (width at the source energy),
    interpolate back onto the input energies, then (if ``grid`` is given) linearly onto ``grid``.

    Args:
        energies: input energies, shape ``(n_in,)`` (absolute eV).
        e0: edge energy (eV).
        broadening: configuration (default :meth:`Broadening.fixed`).
        grid: output grid (an :class:`EnergyGrid` or absolute energies, shape ``(n_out,)``);
            ``None`` keeps the input energies.
    """
    broadening = Broadening.fixed() if broadening is None else broadening
    rel = _relative_input(energies, e0, broadening.float32_input)
    aux = broadening.aux_grid()
    to_aux = interpolation_matrix(rel, aux)
    if broadening.fermi_cut:
        to_aux[aux < broadening.e_fermi] = 0.0
    kernel = lorentzian_kernel(aux, broadening.width(aux))
    if broadening.normalised:
        kernel *= broadening.aux_step / math.pi
    back = interpolation_matrix(aux, rel)
    # Keep the recipe's order: aux grid -> convolution -> raw grid -> output grid.
    matrix = back @ (kernel @ to_aux)
    if grid is not None:
        matrix = interpolation_matrix(rel, grid_relative(grid, float(e0))) @ matrix
    return matrix


def broaden(
    energies: np.ndarray,
    mu: np.ndarray,
    e0: float,
    broadening: Broadening | None = None,
    grid: EnergyGrid | np.ndarray | None = None,
) -> np.ndarray:
    """Broaden spectra ``mu`` (shape ``(n_in,)`` or ``(n_spectra, n_in)``) measured at
    ``energies`` (absolute eV) around the edge ``e0`` (eV); see :func:`broadening_matrix`.

    Returns spectra on ``grid`` (or on ``energies`` if ``grid`` is None), same leading shape.
    """
    broadening = Broadening.fixed() if broadening is None else broadening
    matrix = broadening_matrix(energies, e0, broadening, grid)
    mu = np.asarray(mu, dtype=np.float64)
    if broadening.float32_input:
        mu = mu.astype(np.float32).astype(np.float64)
    return apply_matrix(matrix, mu, matrix.shape[1])


def broaden_fixed_lorentzian(
    energies: np.ndarray,
    mu: np.ndarray,
    e0: float,
    gamma: float = 1.25,
    e_fermi: float = -1.0,
    grid: EnergyGrid | np.ndarray | None = None,
    **options: Any,
) -> np.ndarray:
    """Fixed-FWHM unnormalised Lorentzian broadening (the recipe of the published Fe set).

    With the defaults and ``grid=EnergyGrid.standard(7112)``, turns the raw FDMNES Fe spectra
    (``xanesnet_2022_default``) into the processed ones (``xanesnet_2022_preconv``).
    ``options`` go to :class:`Broadening` (``aux_start``, ``float32_input``, ...).
    """
    return broaden(energies, mu, e0, Broadening.fixed(gamma, e_fermi, **options), grid)


def broaden_arctan(
    energies: np.ndarray,
    mu: np.ndarray,
    e0: float,
    grid: EnergyGrid | np.ndarray | None = None,
    **params: Any,
) -> np.ndarray:
    """Arctangent (FDMNES-style) energy-dependent broadening; ``params`` as
    :func:`arctan_width` plus :class:`Broadening` options."""
    return broaden(energies, mu, e0, Broadening.arctan(**params), grid)


def broaden_seah_dench(
    energies: np.ndarray,
    mu: np.ndarray,
    e0: float,
    grid: EnergyGrid | np.ndarray | None = None,
    **params: Any,
) -> np.ndarray:
    """Seah–Dench energy-dependent broadening; ``params`` as :func:`seah_dench_width` plus
    :class:`Broadening` options."""
    return broaden(energies, mu, e0, Broadening.seah_dench(**params), grid)
