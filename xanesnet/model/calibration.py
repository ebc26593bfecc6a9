"""Calibrated uncertainty: from an ensemble's spread to a σ users can read as a Gaussian band.

A model's raw spread (the standard deviation of its members, or of its network/kernel blend)
ranks errors but is not an error scale: members trained on the same data agree more than
they are right. :class:`CalibratedUncertainty` maps the spread to

    σ(E) = sqrt((a(E) · spread(E))² + (c(E) · mean_spread)² + b(E)²)   (μ units)

per energy point E, where mean_spread is the spectrum's spread averaged over its energies (a
spectrum's errors move together, so its overall spread says more of each point's error than
the spread at that point alone). The scales a(E), c(E) and the floor b(E) are fitted by
Gaussian likelihood on held-out residuals (k-fold out-of-fold predictions of the training set;
see ``scripts/fe_k_edge/calibrate.py``), then multiplied by one common factor that brings the
held-out ±1σ and ±2σ coverage nearest to nominal (held-out errors have heavier tails than a
Gaussian). It also gives a per-spectrum error estimate: the predicted Δμ (``norm="l1"`` of
``shared/spec/metrics.md``, in %), and an upper bound that a chosen share of held-out spectra
stayed under. A calibration fitted with the latent distance d of each site
(:mod:`.latent`) predicts Δμ = f · sqrt((α · g)² + (λ · d)²), where g is the Gaussian
expectation from σ: a spectrum's error from its members' disagreement and from its distance to
the nearest training structure add in quadrature (σ itself stays the spread's). It also holds the per-energy range of the training spectra, against which
:func:`physical_range_flags` flags spectra (any μ < 0 included; spectra are not clipped unless
:func:`clip_negative` is called).

The fitted numbers travel as a JSON-ready dict (:meth:`CalibratedUncertainty.to_metadata`,
:meth:`CalibratedUncertainty.from_metadata`): the ``"uncertainty_calibration"`` entry of a model
file's metadata.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from xanesnet.model.entries import MetadataEntry

__all__ = [
    "CALIBRATION_SCHEMA",
    "NOMINAL_COVERAGE",
    "CalibratedUncertainty",
    "clip_negative",
    "coverage",
    "calibration_from_model_metadata",
    "physical_range_flags",
]

#: written by calibrations with ``distance_weights``; the others keep version 1 (older readers
#: then refuse only the entries they cannot evaluate)
CALIBRATION_SCHEMA = "xanesnet.uncertainty_calibration/2"
_CALIBRATION_SCHEMA_1 = "xanesnet.uncertainty_calibration/1"

#: share of a Gaussian within ±kσ, k = 1, 2, 3
NOMINAL_COVERAGE = {k: math.erf(k / math.sqrt(2.0)) for k in (1, 2, 3)}

# E|x| = sqrt(2/π)·σ for x ~ N(0, σ²): the expected absolute error of a calibrated point
_MEAN_ABS_PER_SIGMA = math.sqrt(2.0 / math.pi)
_SIGMA_BLOCK = 1024  # sites per block of predicted_delta_mu


def coverage(
    y_true: np.ndarray, y_pred: np.ndarray, sigma: np.ndarray, ks: Sequence[float] = (1, 2, 3)
) -> dict[str, float]:
    """Share of points whose error lies within ±k·σ.

    Args:
        y_true: (n_sites, n_energies) reference μ.
        y_pred: (n_sites, n_energies) predicted μ.
        sigma: (n_sites, n_energies) standard uncertainty of ``y_pred`` (μ units, ≥ 0).
        ks: multiples of σ.

    Returns:
        ``{"within_1sigma": share, ...}`` (shares in [0, 1], all points pooled); keys use
        ``f"within_{k:g}sigma"``.

    Raises:
        ValueError: shapes differ, or σ is negative or not finite.
    """
    y_true, y_pred, sigma = (np.asarray(a, dtype=np.float64) for a in (y_true, y_pred, sigma))
    if not (y_true.shape == y_pred.shape == sigma.shape):
        raise ValueError(
            f"coverage: y_true, y_pred and sigma must have one shape, got "
            f"{y_true.shape}, {y_pred.shape}, {sigma.shape}"
        )
    if not (np.all(np.isfinite(sigma)) and np.all(sigma >= 0)):
        raise ValueError("coverage: sigma must be finite and >= 0")
    error = np.abs(y_pred - y_true)
    return {f"within_{k:g}sigma": float(np.mean(error <= k * sigma)) for k in ks}


def _vector(data: dict[str, Any], key: str, n: int | None) -> np.ndarray:
    values = np.asarray(data[key], dtype=np.float64)
    if values.ndim != 1 or (n is not None and len(values) != n) or not np.all(np.isfinite(values)):
        expected = "a finite 1-D list" + ("" if n is None else f" of {n} values")
        raise ValueError(f"uncertainty_calibration[{key!r}]: expected {expected}")
    return values


@dataclass(frozen=True)
class CalibratedUncertainty(MetadataEntry):
    """A fitted map from a model's spread to a calibrated σ and a per-spectrum Δμ estimate.

    Attributes:
        scale: (n_energies,) a(E), dimensionless (multiplies the spread at E).
        mean_scale: (n_energies,) c(E), dimensionless (multiplies the spectrum's mean spread).
        floor: (n_energies,) b(E), μ units (the error left where the members agree).
        delta_mu_factor: c in ``predicted Δμ = c · 100 · sqrt(2/π) · Σσ / Σ|μ̂|`` (the Gaussian
            expectation of Δμ, corrected by the held-out mean ratio).
        delta_mu_ratio_quantiles: quantile level (str, e.g. "0.9") → that quantile of
            actual / predicted Δμ on the held-out fit data (the bound factors).
        spectra_low, spectra_high: (n_energies,) range of the training spectra per energy.
        range_margin: a spectrum is flagged when it leaves that range widened by this share
            of its width (see :func:`physical_range_flags`).
        reference_sum: mean Σ|μ| of the training spectra (the Δμ denominator used when
            :meth:`predicted_delta_mu` is not given the predicted spectra).
        source: how the fit was made (free text).
        fit_figures: figures on the fit data (coverage, Spearman...), for the record.
        distance_weights: (α, λ) of the predicted Δμ's latent-distance term (λ in % per unit
            of distance), or None: the predicted Δμ from σ alone.
    """

    scale: np.ndarray
    mean_scale: np.ndarray
    floor: np.ndarray
    delta_mu_factor: float
    delta_mu_ratio_quantiles: dict[str, float]
    spectra_low: np.ndarray
    spectra_high: np.ndarray
    range_margin: float = 0.2
    reference_sum: float = 0.0
    source: str = ""
    fit_figures: dict[str, float] | None = None
    distance_weights: tuple[float, float] | None = None

    @property
    def needs_distance(self) -> bool:
        """Whether the predicted Δμ needs each site's latent distance."""
        return self.distance_weights is not None

    @property
    def n_energies(self) -> int:
        return len(self.scale)

    def _check(self, name: str, array: Any) -> np.ndarray:
        array = np.asarray(array, dtype=np.float64)
        if array.ndim != 2 or array.shape[1] != self.n_energies:
            raise ValueError(
                f"{name}: expected shape (n_sites, {self.n_energies}), got {array.shape}"
            )
        return array

    def sigma(self, spread: np.ndarray | None, n_sites: int | None = None) -> np.ndarray:
        """Calibrated standard uncertainty per site and energy.

        Args:
            spread: (n_sites, n_energies) the model's raw spread, or None for a model without
                one (then σ = b(E), and ``n_sites`` is required).
            n_sites: number of sites when ``spread`` is None.

        Returns:
            σ (n_sites, n_energies), μ units, float64.
        """
        if spread is None:
            if n_sites is None:
                raise ValueError("sigma: pass n_sites when the model has no spread")
            return np.broadcast_to(self.floor, (n_sites, self.n_energies)).copy()
        spread = self._check("spread", spread)
        mean_spread = spread.mean(axis=1, keepdims=True)
        # sqrt((a·s)² + (c·s̄)² + b²), evaluated in place in that order (same bits, no
        # temporaries of the full (n_sites, n_energies) size: this runs on every batch chunk)
        out = np.multiply(spread, self.scale)
        np.multiply(out, out, out=out)
        out += (self.mean_scale * mean_spread) ** 2
        out += self.floor**2
        return np.sqrt(out, out=out)

    def predicted_delta_mu(
        self,
        spread: np.ndarray | None,
        spectra: np.ndarray | None = None,
        distance: np.ndarray | None = None,
    ) -> np.ndarray:
        """Expected Δμ (%, ``norm="l1"``) of each predicted spectrum.

        Args:
            spread: (n_sites, n_energies) raw spread (None: no spread, see :meth:`sigma`).
            spectra: (n_sites, n_energies) the predicted μ (the denominator Σ|μ̂|); None uses
                the training spectra's mean Σ|μ| (``reference_sum``).
            distance: (n_sites,) latent distance of each site (:mod:`.latent`); required
                when :attr:`needs_distance`, ignored otherwise.

        Returns:
            (n_sites,) predicted Δμ in %.

        Raises:
            ValueError: shapes that do not fit, or no ``distance`` where one is needed.
        """
        n_sites = None if spectra is None else np.asarray(spectra).shape[0]
        if spread is None:
            sigma_sum = self.sigma(None, n_sites).sum(axis=1)
        else:
            spread = self._check("spread", spread)
            # σ summed block by block: the same values, with the (block, n_energies) scratch
            # in cache instead of a full-size array (this runs on every batch chunk)
            sigma_sum = np.concatenate(
                [
                    self.sigma(spread[start : start + _SIGMA_BLOCK]).sum(axis=1)
                    for start in range(0, len(spread), _SIGMA_BLOCK)
                ]
                or [np.zeros(0)]
            )
        if spectra is None:
            denominator = np.full(len(sigma_sum), self.reference_sum)
        else:
            spectra = self._check("spectra", spectra)
            if len(spectra) != len(sigma_sum):
                raise ValueError("predicted_delta_mu: spread and spectra differ in n_sites")
            denominator = np.maximum(np.abs(spectra).sum(axis=1), 1e-12)
        raw = 100.0 * _MEAN_ABS_PER_SIGMA * sigma_sum / denominator
        if self.distance_weights is not None:
            if distance is None:
                raise ValueError(
                    "predicted_delta_mu: this calibration needs the latent distance of each "
                    "site (the model file's latent_distance entry)"
                )
            distance = np.asarray(distance, dtype=np.float64).reshape(-1)
            if len(distance) != len(raw):
                raise ValueError(
                    f"distance: expected {len(raw)} values (one per site), got {len(distance)}"
                )
            spread_weight, distance_weight = self.distance_weights
            raw = np.hypot(spread_weight * raw, distance_weight * distance)
        return self.delta_mu_factor * raw

    def delta_mu_bound(
        self,
        spread: np.ndarray | None,
        spectra: np.ndarray | None = None,
        level: float = 0.9,
        distance: np.ndarray | None = None,
    ) -> np.ndarray:
        """Per-spectrum Δμ bound (%): on the held-out fit data a share ``level`` of spectra had
        an actual Δμ below it. ``level`` must be one of ``delta_mu_ratio_quantiles``;
        ``distance`` as in :meth:`predicted_delta_mu`."""
        key = f"{level:g}"
        if key not in self.delta_mu_ratio_quantiles:
            raise ValueError(
                f"level: expected one of {sorted(self.delta_mu_ratio_quantiles)}, got {level!r}"
            )
        return self.delta_mu_ratio_quantiles[key] * self.predicted_delta_mu(
            spread, spectra, distance
        )

    def to_metadata(self) -> dict[str, Any]:
        """JSON-ready dict (the model file's ``"uncertainty_calibration"`` entry)."""
        weights = (
            {}
            if self.distance_weights is None
            else {"distance_weights": [float(v) for v in self.distance_weights]}
        )
        return {
            "schema": _CALIBRATION_SCHEMA_1
            if self.distance_weights is None
            else CALIBRATION_SCHEMA,
            "model": "sigma = sqrt((scale * spread)^2 + (mean_scale * mean_spread)^2 + "
            "floor^2) per energy point; mean_spread = the spectrum's spread averaged over "
            "energies",
            "scale": [float(v) for v in self.scale],
            "mean_scale": [float(v) for v in self.mean_scale],
            "floor": [float(v) for v in self.floor],
            "delta_mu_factor": float(self.delta_mu_factor),
            "delta_mu_ratio_quantiles": {
                k: float(v) for k, v in self.delta_mu_ratio_quantiles.items()
            },
            "spectra_low": [float(v) for v in self.spectra_low],
            "spectra_high": [float(v) for v in self.spectra_high],
            "range_margin": float(self.range_margin),
            "reference_sum": float(self.reference_sum),
            "source": self.source,
            "fit_figures": dict(self.fit_figures or {}),
            **weights,
        }

    KEY = "uncertainty_calibration"
    SCHEMA = CALIBRATION_SCHEMA
    OLDER_SCHEMAS = (_CALIBRATION_SCHEMA_1,)

    @classmethod
    def from_entry(cls, data: dict[str, Any]) -> CalibratedUncertainty:
        """Rebuild from a calibration entry (see :meth:`MetadataEntry.from_metadata`: a
        ValueError also for inconsistent lengths)."""
        scale = _vector(data, "scale", None)
        n = len(scale)
        quantiles = {str(k): float(v) for k, v in data["delta_mu_ratio_quantiles"].items()}
        weights = None
        if data["schema"] == CALIBRATION_SCHEMA:
            try:
                weights = tuple(float(v) for v in data["distance_weights"])
            except (TypeError, ValueError):
                weights = ()
            if len(weights) != 2 or not all(math.isfinite(v) and v >= 0 for v in weights):
                raise ValueError(
                    f"uncertainty_calibration: distance_weights: expected two finite values "
                    f">= 0, got {data['distance_weights']!r}"
                )
        return cls(
            scale=scale,
            mean_scale=_vector(data, "mean_scale", n),
            floor=_vector(data, "floor", n),
            delta_mu_factor=float(data["delta_mu_factor"]),
            delta_mu_ratio_quantiles=quantiles,
            spectra_low=_vector(data, "spectra_low", n),
            spectra_high=_vector(data, "spectra_high", n),
            range_margin=float(data.get("range_margin", 0.2)),
            # entries written before this key: the sum of the range midpoints
            reference_sum=float(
                data.get(
                    "reference_sum",
                    np.abs(0.5 * (np.asarray(data["spectra_low"]) + data["spectra_high"])).sum(),
                )
            ),
            source=str(data.get("source", "")),
            fit_figures=dict(data.get("fit_figures") or {}),
            distance_weights=weights,
        )


def calibration_from_model_metadata(
    metadata: dict[str, Any],
) -> CalibratedUncertainty | None:
    """The calibration a model file carries (its metadata's ``"uncertainty_calibration"``
    entry), or None for a file without one."""
    return CalibratedUncertainty.from_model_metadata(metadata)


def physical_range_flags(spectra: np.ndarray, calib: CalibratedUncertainty) -> np.ndarray:
    """Flag spectra that are unphysical or far outside what the model was trained on.

    A spectrum is flagged when any μ is negative, or when at any energy it leaves the range
    of the training spectra widened on each side by ``calib.range_margin`` times that range's
    width (the model extrapolating; the same rule that dropped implausible labels in
    distillation).

    Args:
        spectra: (n_sites, n_energies) predicted μ, before :func:`clip_negative`.
        calib: the model's calibration (holds the per-energy training range).

    Returns:
        (n_sites,) bool, True = flagged.
    """
    spectra = calib._check("spectra", spectra)  # noqa: SLF001 (same module)
    width = calib.spectra_high - calib.spectra_low
    low = calib.spectra_low - calib.range_margin * width
    high = calib.spectra_high + calib.range_margin * width
    # μ < low or μ < 0 is μ < max(low, 0): two comparisons per point, not three
    outside = spectra < np.maximum(low, 0.0)
    outside |= spectra > high
    return outside.any(axis=1)


def clip_negative(spectra: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """μ clipped at 0 (an absorption coefficient is not negative).

    Returns:
        the clipped spectra (a copy, float64) and (n_sites,) bool: which spectra had μ < 0.
    """
    spectra = np.asarray(spectra, dtype=np.float64)
    negative = (spectra < 0).any(axis=-1)
    return np.maximum(spectra, 0.0), negative
