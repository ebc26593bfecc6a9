"""XANES spectra: energy grids, file readers/writers, resampling, broadening, normalisation.

Conventions
-----------
* Energies are in eV. ``energies`` arguments are **absolute** photon energies unless a name says
  ``relative`` (``e = E - E0``, with ``E0`` the edge energy).
* Spectra are arrays ``mu`` of shape ``(n_energies,)`` or ``(n_spectra, n_energies)``; every
  operation here is vectorised over the leading axis and returns the same layout it was given.
* Broadening is linear in ``mu``: each configuration builds **one** kernel matrix
  ``M`` of shape ``(n_out, n_in)`` and a batch of spectra is broadened as ``mu @ M.T``.

The fixed-width Lorentzian recipe (:func:`broaden_fixed_lorentzian` with its defaults) is the one
that made the published ``xanesnet_2022_preconv`` Fe K-edge set from the raw FDMNES output
(``xanesnet_2022_default``); it reproduces those files to print precision (relative ≤ 5e-8).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

__all__ = [
    "K_EDGE_ENERGIES",
    "EnergyGrid",
    "Broadening",
    "read_processed_spectrum",
    "read_fdmnes_spectrum",
    "write_processed_spectrum",
    "format_processed_spectrum",
    "MODEL_DEFAULTS",
    "snap_to_grid",
    "interpolation_matrix",
    "resample",
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


def _grid_relative(grid: EnergyGrid | np.ndarray, e0: float) -> np.ndarray:
    """Positions of ``grid`` relative to ``e0`` (an array argument holds absolute energies)."""
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


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------


def _read_lines(path: str | Path) -> tuple[Path, list[str]]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such spectrum file")
    try:
        text = path.read_text()
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not a text file ({exc})") from None
    lines = text.splitlines()
    if not any(line.strip() for line in lines):
        raise ValueError(f"{path}: empty file")
    return path, lines


def _parse_rows(
    path: Path, lines: list[str], first: int, min_rows: int
) -> tuple[np.ndarray, np.ndarray]:
    """Parse ``energy mu`` rows from ``lines[first:]`` (blank lines ignored).

    Returns ``(energies, mu)`` as float64 arrays; errors name the file and the 1-based line.
    """
    numbers: list[tuple[int, str, str]] = []
    for index in range(first, len(lines)):
        fields = lines[index].split()
        if not fields:
            continue
        if len(fields) < 2:
            raise ValueError(
                f"{path}, line {index + 1}: expected 'energy mu', got {lines[index]!r}"
            )
        numbers.append((index + 1, fields[0], fields[1]))
    if len(numbers) < min_rows:
        raise ValueError(
            f"{path}: too few rows ({len(numbers)} 'energy mu' rows, at least {min_rows} needed)"
        )
    data = np.empty((len(numbers), 2))
    for k, (lineno, e_text, mu_text) in enumerate(numbers):
        try:
            data[k, 0] = float(e_text)
            data[k, 1] = float(mu_text)
        except ValueError:
            raise ValueError(
                f"{path}, line {lineno}: non-numeric value in {lines[lineno - 1].strip()!r}"
            ) from None
    if not np.all(np.isfinite(data)):
        k = int(np.argmax(~np.all(np.isfinite(data), axis=1)))
        raise ValueError(f"{path}, line {numbers[k][0]}: non-finite value")
    steps = np.diff(data[:, 0])
    if np.any(steps <= 0):
        k = int(np.argmax(steps <= 0)) + 1
        raise ValueError(
            f"{path}, line {numbers[k][0]}: energies not strictly increasing "
            f"({data[k - 1, 0]} then {data[k, 0]})"
        )
    return data[:, 0], data[:, 1]


def read_processed_spectrum(path: str | Path, min_rows: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Read a processed spectrum (2 header lines, then ``energy mu`` rows).

    Returns ``(energies, mu)``, each shape ``(n,)`` float64, energies in eV exactly as printed
    (2 decimals; see :func:`snap_to_grid` to recover the exact grid).

    Raises ``FileNotFoundError``, or ``ValueError`` naming the file (and line) for an empty
    file, non-numeric values, fewer than ``min_rows`` rows or non-increasing energies.
    """
    path, lines = _read_lines(path)
    if len(lines) < 2:
        raise ValueError(f"{path}: missing the 2 header lines")
    return _parse_rows(path, lines, 2, min_rows)


def read_fdmnes_spectrum(
    path: str | Path, min_rows: int = 2
) -> tuple[float, np.ndarray, np.ndarray]:
    """Read raw FDMNES output: line 1 starts with E0, line 2 is a header, then ``energy mu``.

    Returns ``(e0, energies, mu)``: E0 in eV and arrays of shape ``(n,)`` (absolute eV, μ).
    Extra columns after the first two are ignored. Errors as :func:`read_processed_spectrum`.
    """
    path, lines = _read_lines(path)
    first = lines[0].split()
    try:
        e0 = float(first[0])
    except (ValueError, IndexError):
        raise ValueError(
            f"{path}, line 1: expected the edge energy first, got {lines[0][:60]!r}"
        ) from None
    if not math.isfinite(e0):
        raise ValueError(f"{path}, line 1: non-finite edge energy")
    if len(lines) < 2:
        raise ValueError(f"{path}: too few rows (no header line 2, no data)")
    energies, mu = _parse_rows(path, lines, 2, min_rows)
    return e0, energies, mu


def format_processed_spectrum(energies: np.ndarray, mu: np.ndarray) -> str:
    """Text of a processed spectrum file (see :func:`write_processed_spectrum`)."""
    energies = np.asarray(energies, dtype=np.float64)
    mu = np.asarray(mu, dtype=np.float64)
    if energies.ndim != 1 or mu.shape != energies.shape:
        raise ValueError(f"energies {energies.shape} and mu {mu.shape} must be equal 1-D shapes")
    rows = [f"{e:10.2f}{m:15.7E}" for e, m in zip(energies.tolist(), mu.tolist())]
    return "\n".join(["    FDMNES", "    energy     <xanes>", *rows]) + "\n"


def write_processed_spectrum(path: str | Path, energies: np.ndarray, mu: np.ndarray) -> None:
    """Write ``energies`` (eV, shape ``(n,)``) and ``mu`` (shape ``(n,)``) in XANESNET's format.

    Layout (byte-compatible with the published files): ``    FDMNES``, ``    energy     <xanes>``,
    then one row per point: energy as ``%10.2f`` and μ as ``%15.7E``.
    """
    Path(path).write_text(format_processed_spectrum(energies, mu))


# --------------------------------------------------------------------------------------------
# Resampling
# --------------------------------------------------------------------------------------------


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


def _apply(matrix: np.ndarray, mu: np.ndarray, n_in: int) -> np.ndarray:
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
    return _apply(matrix, mu, matrix.shape[1])


# --------------------------------------------------------------------------------------------
# Broadening
# --------------------------------------------------------------------------------------------

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
    """

    model: str = "fixed"
    params: Mapping[str, float] = field(default_factory=dict, hash=False)
    aux_start: float = -50.0
    aux_stop: float = 150.0
    aux_step: float = 0.2
    float32_input: bool = True
    normalised: bool = False

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
        names = ("aux_start", "aux_stop", "aux_step", "float32_input", "normalised")
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
        return text + (", normalised kernel" if self.normalised else "")

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
    data), zero below ``e_F``, convolve with the Lorentzian kernel (width at the source energy),
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
    to_aux[aux < broadening.e_fermi] = 0.0
    kernel = lorentzian_kernel(aux, broadening.width(aux))
    if broadening.normalised:
        kernel *= broadening.aux_step / math.pi
    back = interpolation_matrix(aux, rel)
    # Keep the recipe's order: aux grid -> convolution -> raw grid -> output grid.
    matrix = back @ (kernel @ to_aux)
    if grid is not None:
        matrix = interpolation_matrix(rel, _grid_relative(grid, float(e0))) @ matrix
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
    return _apply(matrix, mu, matrix.shape[1])


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


# --------------------------------------------------------------------------------------------
# Normalisation
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# FEFF spectra (xmu.dat: grid uniform in k, so non-uniform in energy)
# --------------------------------------------------------------------------------------------

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
    and core-hole broadening: a further :func:`broaden` should not cut again, e.g.
    ``Broadening.fixed(gamma, e_fermi=-100.0)`` (below the auxiliary grid, so no cut).
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
