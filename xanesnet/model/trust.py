"""How far to trust each predicted spectrum: calibrated σ, predicted Δμ, out-of-domain score
and the physical-range flag, computed together from one model call's outputs.

A model file may carry an ``"uncertainty_calibration"`` entry (:mod:`.calibration`), a
``"domain"`` entry (:mod:`.domain`) and a ``"latent_distance"`` entry (:mod:`.latent`, which a
calibration with a distance term needs for its predicted Δμ) in its metadata. :class:`TrustModel` reads both once, at
load, and :meth:`TrustModel.assess` turns the descriptors, the predicted spectra and the
spread of a batch of sites into a :class:`SiteTrust`. A model without an entry (older files,
small test models) gives NaN for what that entry provides and False for its flag, never an
error.

The domain score is computed here in float32 (:class:`Float32Domain`: the same distances as
:meth:`.domain.DomainScore.score_features`, which works in float64, to ~1e-5 relative, at about
half the cost: in a batch it runs on every site beside the networks).

Negative μ: spectra are returned as the networks compute them (not clipped, so that the
numbers stay those of the model file and reproducible); a spectrum with any μ < 0 is flagged
``unphysical``, with or without a calibration. :func:`.calibration.clip_negative` clips on
request.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from xanesnet.model.calibration import CalibratedUncertainty, physical_range_flags
from xanesnet.model.domain import DomainScore
from xanesnet.model.latent import LatentDistance
from xanesnet.model.precision import MemberNetwork

__all__ = ["TRUST_FIELDS", "Float32Domain", "LazyMember", "SiteTrust", "TrustModel"]

#: sites per block of the domain score (bounds the (block, n_centres) distance matrix)
_DOMAIN_BLOCK = 4096


def _fitting_entry(
    entry: Any, parse: Callable[[Any], Any], size: str, expected: int, mismatch: str, path: Any
) -> Any:
    """``parse(entry)`` when its ``size`` attribute is ``expected``; None when ``entry`` is
    None, and None with a :class:`RuntimeWarning` naming ``path`` when it does not parse or
    fit (``mismatch``: the message, formatted with the entry's size and ``expected``)."""
    if entry is None:
        return None
    try:
        value = parse(entry)
        if getattr(value, size) != expected:
            raise ValueError(mismatch.format(getattr(value, size), expected))
    except ValueError as exc:
        # stacklevel: the caller of TrustModel.from_metadata's caller (the model loader)
        warnings.warn(
            f"{path}: metadata entry ignored ({exc}); predictions of this model carry no "
            "calibrated sigma / domain score (NaN)",
            RuntimeWarning,
            stacklevel=4,
        )
        return None
    return value


#: The per-site scalar fields every output carries (name, numpy dtype of the stored column).
TRUST_FIELDS = (
    ("predicted_delta_mu", np.float32),
    ("domain_score", np.float32),
    ("outside_domain", np.bool_),
    ("unphysical", np.bool_),
)


@dataclass(frozen=True)
class SiteTrust:
    """What is known of the reliability of each predicted spectrum.

    Attributes:
        sigma: (n_sites, n_energies) float64 calibrated standard uncertainty of μ (μ units);
            NaN without a calibration; None where it was not asked for (a batch stores the
            spread, from which σ follows).
        predicted_delta_mu: (n_sites,) float64 expected Δμ (%, ``norm="l1"``); NaN without a
            calibration.
        domain_score: (n_sites,) float64 out-of-domain score (≈ 1 for training-like sites);
            NaN without a domain entry.
        outside_domain: (n_sites,) bool, score above the model's threshold (False without a
            domain entry).
        unphysical: (n_sites,) bool, any μ < 0, or the spectrum leaves the (widened) range
            of the training spectra (that part only with a calibration).
    """

    sigma: np.ndarray | None
    predicted_delta_mu: np.ndarray
    domain_score: np.ndarray
    outside_domain: np.ndarray
    unphysical: np.ndarray

    @classmethod
    def unknown(cls, n_sites: int, n_energies: int) -> SiteTrust:
        """NaN / False fields for ``n_sites`` sites (nothing known)."""
        return cls(
            sigma=np.full((n_sites, n_energies), np.nan),
            predicted_delta_mu=np.full(n_sites, np.nan),
            domain_score=np.full(n_sites, np.nan),
            outside_domain=np.zeros(n_sites, dtype=bool),
            unphysical=np.zeros(n_sites, dtype=bool),
        )

    def columns(self) -> dict[str, np.ndarray]:
        """The per-site scalar fields of :data:`TRUST_FIELDS`, by name, as stored."""
        return {name: np.asarray(getattr(self, name), dtype=dtype) for name, dtype in TRUST_FIELDS}


@dataclass(frozen=True)
class Float32Domain:
    """A :class:`~xanesnet.model.domain.DomainScore` evaluated in float32.

    Attributes:
        mean, inv_scale: (n_features,) float32 standardiser.
        minus_two_centres_t: (n_features, n_centres) float32 centres times −2, transposed for
            one product (× −2 is exact: z·(−2c) has the bits of −2·(z·c)).
        centre_norms: (n_centres,) float32 squared norms of the centres.
        k: nearest centres averaged.
        normaliser: the score's divisor.
    """

    mean: np.ndarray
    inv_scale: np.ndarray
    minus_two_centres_t: np.ndarray
    centre_norms: np.ndarray
    k: int
    normaliser: float

    @classmethod
    def from_domain(cls, domain: DomainScore) -> Float32Domain:
        centres = np.asarray(domain.centres, dtype=np.float32)
        return cls(
            mean=np.asarray(domain.mean, dtype=np.float32),
            inv_scale=np.asarray(domain.inv_scale, dtype=np.float32),
            minus_two_centres_t=np.ascontiguousarray(centres.T * np.float32(-2.0)),
            centre_norms=np.einsum("ij,ij->i", centres, centres),
            k=min(int(domain.k), len(centres)),
            normaliser=float(domain.normaliser),
        )

    def score(self, features: np.ndarray) -> np.ndarray:
        """(n_sites,) float64 scores of raw descriptors (n_sites, n_features)."""
        out = np.empty(len(features))
        centres = torch.from_numpy(self.minus_two_centres_t)
        for start in range(0, len(features), _DOMAIN_BLOCK):
            z = np.array(features[start : start + _DOMAIN_BLOCK], dtype=np.float32)
            z -= self.mean  # in place: same bits as (z - mean) * inv_scale
            z *= self.inv_scale
            # |z - c|² = (|c|² - 2 z·c) + |z|², clipped at 0 (rounding). The product goes
            # through torch, like the networks: its float32 GEMM gives the same bits whatever
            # the thread count (numpy's BLAS did not: a Dask worker's single thread and this
            # process's pool disagreed in the last bits)
            d2 = torch.from_numpy(z).mm(centres).numpy()
            d2 += self.centre_norms
            z_norms = np.einsum("ij,ij->i", z, z)
            if self.k == 1:
                # |z|² and the clip after the minimum over centres: x -> fl(x + |z|²) and the
                # clip are monotonic, so this is the minimum of the clipped sums, bit for bit,
                # without two passes over (block, n_centres)
                nearest = d2.min(axis=1) + z_norms
                np.maximum(nearest, 0.0, out=nearest)
                out[start : start + len(z)] = np.sqrt(nearest)
            else:
                d2 += z_norms[:, None]
                np.maximum(d2, 0.0, out=d2)
                nearest = np.sqrt(np.partition(d2, self.k - 1, axis=1)[:, : self.k])
                out[start : start + len(z)] = nearest.mean(axis=1, dtype=np.float64)
        return out / self.normaliser


class LazyMember:
    """A member network rebuilt as a float32 :class:`MemberNetwork` on first use: the batch
    path measures the latent distance in the activations of the networks' own call and never
    needs it, so loading a model does not pay for it."""

    def __init__(self, module: Any, where: str) -> None:
        self._module = module
        self._where = where
        self._built: MemberNetwork | None = None

    def get(self) -> MemberNetwork:
        if self._built is None:  # two threads may both build it: the same network
            self._built = MemberNetwork.from_member(self._module, self._where, torch.float32)
        return self._built


def _output_layer_inputs(member: Any) -> int:
    """Width of the activations entering a (scripted or eager) network's output layer."""
    layers = list(member.layers.named_children()) if hasattr(member, "layers") else []
    for _, child in reversed(layers):
        tensors = {**dict(child.named_parameters()), **dict(child.named_buffers())}
        weight = tensors.get("weight", tensors.get("weight_q"))
        if weight is not None:
            return int(weight.shape[1])
    raise ValueError("the member is not a xanesnet network (no linear output layer)")


def _latent_entry(
    entry: Any, members: list[Any], path: Any
) -> tuple[LatentDistance | None, LazyMember | None]:
    """The latent-distance entry and its member network (float32, built on first use), or
    (None, None) when there is no entry, and with a :class:`RuntimeWarning` naming ``path``
    when it does not parse or fit the model's networks."""
    if entry is None:
        return None, None
    try:
        latent = LatentDistance.from_metadata(entry)
        if latent.member >= len(members):
            raise ValueError(
                f"member {latent.member}, the model has {len(members)} member network(s)"
            )
        width = _output_layer_inputs(members[latent.member])
        if width != latent.n_hidden:
            raise ValueError(f"{latent.n_hidden} activations, the member has {width}")
        member = LazyMember(members[latent.member], str(path))
    except ValueError as exc:
        warnings.warn(
            f"{path}: metadata entry latent_distance ignored ({exc})",
            RuntimeWarning,
            stacklevel=4,
        )
        return None, None
    return latent, member


@dataclass(frozen=True)
class TrustModel:
    """A model file's calibration and domain entries, read once.

    Attributes:
        calibration: the fitted σ map, or None.
        domain: the out-of-domain score, or None.
        n_energies: the model's grid size.
        fast_domain: ``domain`` in float32 (what :meth:`assess` evaluates).
        latent: the latent-distance entry, or None.
        latent_member: the member network it measures in (float32, built on first use), or
            None.
    """

    calibration: CalibratedUncertainty | None
    domain: DomainScore | None
    n_energies: int
    fast_domain: Float32Domain | None = None
    latent: LatentDistance | None = None
    latent_member: LazyMember | None = None

    @classmethod
    def from_metadata(
        cls,
        metadata: dict[str, Any],
        n_features: int,
        n_energies: int,
        path: Any,
        members: list[Any] | None = None,
    ) -> TrustModel:
        """Read the ``"uncertainty_calibration"``, ``"domain"`` and ``"latent_distance"``
        entries (any may be absent).

        An entry that does not parse (another schema version) or does not fit the model's
        energy grid, descriptor length or networks is ignored with a :class:`RuntimeWarning`
        naming ``path``: the model still predicts, with NaN / False for what the entry
        provides. A calibration whose predicted Δμ needs the latent distance is ignored with
        it when the distance cannot be had.

        Args:
            members: the model's member networks (scripted or eager ``SpectrumMLP``), in
                order; the latent distance is measured in one of them (None: no latent
                distance).
        """
        calibration = _fitting_entry(
            metadata.get("uncertainty_calibration"),
            CalibratedUncertainty.from_metadata,
            "n_energies",
            n_energies,
            "uncertainty_calibration: {} energies, the model has {}",
            path,
        )
        domain = _fitting_entry(
            metadata.get("domain"),
            DomainScore.from_metadata,
            "n_features",
            n_features,
            "domain: {} features, the model's descriptor has {}",
            path,
        )
        fast = None if domain is None else Float32Domain.from_domain(domain)
        latent, member = _latent_entry(metadata.get("latent_distance"), members or [], path)
        if calibration is not None and calibration.needs_distance and latent is None:
            warnings.warn(
                f"{path}: metadata entry uncertainty_calibration ignored (its predicted Δμ needs "
                "the latent_distance entry, which is missing or unusable); predictions of this "
                "model carry no calibrated sigma (NaN)",
                RuntimeWarning,
                stacklevel=3,
            )
            calibration = None
        return cls(calibration, domain, n_energies, fast, latent, member)

    @property
    def needs_latent_distance(self) -> bool:
        """Whether :meth:`assess` uses the sites' latent distance (for the predicted Δμ)."""
        return self.calibration is not None and self.calibration.needs_distance

    def assess(
        self,
        features: np.ndarray,
        spectra: np.ndarray,
        spread: np.ndarray | None,
        *,
        sigma: bool = True,
        distance: np.ndarray | None = None,
    ) -> SiteTrust:
        """The trust fields of a batch of sites.

        Args:
            features: (n_sites, n_features) raw descriptors (the networks' input).
            spectra: (n_sites, n_energies) predicted μ.
            spread: (n_sites, n_energies) the model's raw spread, or None for a model
                without one.
            sigma: whether to return σ (False: ``SiteTrust.sigma`` is None; the per-site
                fields are the same).
            distance: (n_sites,) the sites' latent distances where the caller has them
                (:meth:`xanesnet.model.runtime.XanesModel.predict_with_trust`: from the
                networks' own call); None computes them from ``features`` when needed.

        Returns:
            :class:`SiteTrust` (float64 / bool arrays).
        """
        spectra = np.asarray(spectra, dtype=np.float64)
        n_sites = len(spectra)
        # the unknown fields, without the (n_sites, n_energies) NaN σ when none is wanted
        unknown = SiteTrust.unknown(n_sites, self.n_energies if sigma else 0)
        sigmas, delta_mu = unknown.sigma, unknown.predicted_delta_mu
        if self.calibration is not None and n_sites:
            raw = None if spread is None else np.asarray(spread, dtype=np.float64)
            if sigma:
                sigmas = self.calibration.sigma(raw, n_sites)
            if distance is None and self.calibration.needs_distance:
                distance = self.latent_distance(features)
            delta_mu = self.calibration.predicted_delta_mu(raw, spectra, distance)
            unphysical = physical_range_flags(spectra, self.calibration)
        else:
            unphysical = (spectra < 0).any(axis=1) if n_sites else np.zeros(0, dtype=bool)
        score, outside = unknown.domain_score, unknown.outside_domain
        if self.domain is not None and self.fast_domain is not None and n_sites:
            score = self.fast_domain.score(features)
            outside = self.domain.is_outside(score)
        return SiteTrust(sigmas if sigma else None, delta_mu, score, outside, unphysical)

    def latent_distance(self, features: np.ndarray) -> np.ndarray:
        """(n_sites,) float64 latent distance of sites from their raw (n_sites, n_features)
        descriptors; NaN without a latent-distance entry."""
        if self.latent is None or self.latent_member is None:
            return np.full(len(features), np.nan)
        x = torch.from_numpy(np.asarray(features, dtype=np.float32))
        with torch.no_grad():
            return self.latent.distance(self.latent_member.get().last_hidden(x))
