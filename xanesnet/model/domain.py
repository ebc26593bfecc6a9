"""Out-of-domain score per site: how far a descriptor lies from the model's training set.

The score of a site is the mean Euclidean distance from its standardised descriptor to the k
nearest of a few hundred k-means centres of the standardised training descriptors, divided by
the median of the same distance for held-out training sites (k-fold: centres fitted without the
fold). So a site like the training structures scores about 1; ``threshold`` is a high quantile
(default 0.99) of the held-out training sites' scores, and a site above it is outside the
training domain: its prediction is an extrapolation, whatever its spread says.

The fitted numbers travel as a JSON-ready dict (:meth:`DomainScore.to_metadata`,
:meth:`DomainScore.from_metadata`): the ``"domain"`` entry of a model file's metadata. The
centres are stored as base64 float16 (256 × 513 features: about 0.35 MB of text).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from xanesnet.model.entries import MetadataEntry, decode_array, encode_array

__all__ = ["DOMAIN_SCHEMA", "DomainScore", "domain_from_model_metadata", "fit_domain", "roc_auc"]

DOMAIN_SCHEMA = "xanesnet.domain/1"


def _squared_distances(points: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """(n_points, n_centres) squared Euclidean distances, clipped at 0 (rounding)."""
    d2 = (
        np.einsum("ij,ij->i", points, points)[:, None]
        - 2.0 * points @ centres.T
        + np.einsum("ij,ij->i", centres, centres)[None, :]
    )
    return np.maximum(d2, 0.0)


def _nearest_mean_distance(points: np.ndarray, centres: np.ndarray, k: int) -> np.ndarray:
    """Mean distance from each point to its k nearest centres (in blocks, bounded memory)."""
    out = np.empty(len(points))
    k = min(k, len(centres))
    for start in range(0, len(points), 4096):
        d2 = _squared_distances(points[start : start + 4096], centres)
        nearest = np.partition(d2, k - 1, axis=1)[:, :k] if k < d2.shape[1] else d2
        out[start : start + 4096] = np.sqrt(nearest).mean(axis=1)
    return out


@dataclass(frozen=True)
class DomainScore(MetadataEntry):
    """Distance of sites to the training set, normalised so training-like sites score ≈ 1.

    Attributes:
        mean: (n_features,) the standardiser's mean (descriptor units).
        inv_scale: (n_features,) its inverse standard deviations (0 for constant features).
        centres: (n_centres, n_features) k-means centres of the standardised training
            descriptors.
        k: number of nearest centres averaged.
        normaliser: median held-out distance of training sites (standardised units).
        threshold: score above which a site is outside the training domain.
        source: how the fit was made (free text).
        fit_figures: figures of the fit (held-out quantiles...), for the record.
    """

    mean: np.ndarray
    inv_scale: np.ndarray
    centres: np.ndarray
    k: int
    normaliser: float
    threshold: float
    source: str = ""
    fit_figures: dict[str, float] = field(default_factory=dict)

    @property
    def n_features(self) -> int:
        return len(self.mean)

    def standardise(self, features: np.ndarray) -> np.ndarray:
        """(n_sites, n_features) raw descriptors → the standardised space of the centres."""
        features = np.asarray(features, dtype=np.float64)
        if features.ndim != 2 or features.shape[1] != self.n_features:
            raise ValueError(
                f"features: expected shape (n_sites, {self.n_features}), got {features.shape}"
            )
        return (features - self.mean) * self.inv_scale

    def score(self, standardised_features: np.ndarray) -> np.ndarray:
        """OOD score of each site from standardised descriptors (see :meth:`standardise`).

        Returns:
            (n_sites,) float64, ≈ 1 for training-like sites, larger further away.
        """
        z = np.asarray(standardised_features, dtype=np.float64)
        if z.ndim != 2 or z.shape[1] != self.n_features:
            raise ValueError(
                f"standardised_features: expected shape (n_sites, {self.n_features}), got {z.shape}"
            )
        return _nearest_mean_distance(z, self.centres, self.k) / self.normaliser

    def score_features(self, features: np.ndarray) -> np.ndarray:
        """OOD score of each site from raw descriptors of the model's configuration."""
        return self.score(self.standardise(features))

    def is_outside(self, score: np.ndarray) -> np.ndarray:
        """(n_sites,) bool: score above the threshold (non-finite scores count as outside)."""
        score = np.asarray(score, dtype=np.float64)
        return ~(score <= self.threshold)

    def to_metadata(self) -> dict[str, Any]:
        """JSON-ready dict (the model file's ``"domain"`` entry)."""
        return {
            "schema": DOMAIN_SCHEMA,
            "score": "mean Euclidean distance to the k nearest centres / normaliser, "
            "in the standardised descriptor space (features - mean) * inv_scale",
            "mean": encode_array(self.mean, "float32"),
            "inv_scale": encode_array(self.inv_scale, "float32"),
            "centres": encode_array(self.centres, "float16"),
            "k": int(self.k),
            "normaliser": float(self.normaliser),
            "threshold": float(self.threshold),
            "source": self.source,
            "fit_figures": dict(self.fit_figures),
        }

    KEY = "domain"
    SCHEMA = DOMAIN_SCHEMA

    @classmethod
    def from_entry(cls, data: dict[str, Any]) -> DomainScore:
        """Rebuild from a domain entry (see :meth:`MetadataEntry.from_metadata`: a ValueError
        also for inconsistent arrays)."""
        mean = decode_array(data["mean"], "domain['mean']")
        inv_scale = decode_array(data["inv_scale"], "domain['inv_scale']")
        centres = decode_array(data["centres"], "domain['centres']")
        k, normaliser, threshold = (
            int(data["k"]),
            float(data["normaliser"]),
            float(data["threshold"]),
        )
        if mean.ndim != 1 or inv_scale.shape != mean.shape or centres.ndim != 2:
            raise ValueError("domain: mean, inv_scale and centres do not fit together")
        if centres.shape[1] != len(mean):
            raise ValueError(
                f"domain: centres have {centres.shape[1]} features, the standardiser {len(mean)}"
            )
        if k < 1 or not normaliser > 0 or not np.isfinite(threshold):
            raise ValueError("domain: expected k >= 1, normaliser > 0 and a finite threshold")
        return cls(
            mean=mean,
            inv_scale=inv_scale,
            centres=centres,
            k=k,
            normaliser=normaliser,
            threshold=threshold,
            source=str(data.get("source", "")),
            fit_figures=dict(data.get("fit_figures") or {}),
        )


def domain_from_model_metadata(metadata: dict[str, Any]) -> DomainScore | None:
    """The domain score a model file carries (its metadata's ``"domain"`` entry), or None
    for a file without one."""
    return DomainScore.from_model_metadata(metadata)


def _kmeans(points: np.ndarray, n_centres: int, seed: int, iterations: int = 50) -> np.ndarray:
    """Lloyd's k-means with k-means++ starts (seeded; empty clusters keep their centre)."""
    rng = np.random.default_rng(seed)
    n_centres = min(n_centres, len(points))
    centres = [points[rng.integers(len(points))]]
    nearest = _squared_distances(points, np.asarray(centres))[:, 0]
    for _ in range(1, n_centres):
        total = nearest.sum()
        pick = (
            rng.choice(len(points), p=nearest / total) if total > 0 else rng.integers(len(points))
        )
        centres.append(points[pick])
        nearest = np.minimum(nearest, _squared_distances(points, points[pick : pick + 1])[:, 0])
    centres = np.asarray(centres)
    for _ in range(iterations):
        label = _squared_distances(points, centres).argmin(axis=1)
        counts = np.bincount(label, minlength=n_centres)
        sums = np.zeros_like(centres)
        np.add.at(sums, label, points)
        moved = np.where(counts[:, None] > 0, sums / np.maximum(counts, 1)[:, None], centres)
        if np.allclose(moved, centres):
            break
        centres = moved
    return centres


def fit_domain(
    features: np.ndarray,
    *,
    mean: np.ndarray | None = None,
    inv_scale: np.ndarray | None = None,
    n_centres: int = 256,
    k: int = 1,
    n_folds: int = 5,
    quantile: float = 0.99,
    seed: int = 0,
    source: str = "",
) -> tuple[DomainScore, np.ndarray]:
    """Fit the OOD score on training descriptors, threshold from held-out folds.

    Args:
        features: (n, n_features) raw training descriptors.
        mean, inv_scale: the standardiser (default: the training set's own mean and inverse
            standard deviation, constant features scaled by 0, as the networks do).
        n_centres: k-means centres kept (the file stores them).
        k: nearest centres averaged per score.
        n_folds: folds of the held-out estimate.
        quantile: the threshold is this quantile of the held-out training sites' scores.
        seed: k-means and fold seed.
        source: description stored with the fit.

    Returns:
        The fitted :class:`DomainScore` (centres from all training sites) and the (n,)
        held-out scores of the training sites (each from centres fitted without its fold).
    """
    from xanesnet.model.train import kfold_indices

    features = np.asarray(features, dtype=np.float64)
    if mean is None or inv_scale is None:
        mean = features.mean(axis=0)
        std = features.std(axis=0)
        varying = std > 1e-12 * np.maximum(np.abs(mean), 1.0)
        inv_scale = np.where(varying, 1.0 / np.where(varying, std, 1.0), 0.0)
    # float32 storage: standardise with the values the file will hold
    mean = np.asarray(mean, dtype=np.float32).astype(np.float64)
    inv_scale = np.asarray(inv_scale, dtype=np.float32).astype(np.float64)
    z = (features - mean) * inv_scale
    held_out = np.empty(len(z))
    for fold, (fit, held) in enumerate(kfold_indices(len(z), n_folds, seed)):
        centres = _kmeans(z[fit], n_centres, seed + 1 + fold)
        centres = centres.astype(np.float16).astype(np.float64)
        held_out[held] = _nearest_mean_distance(z[held], centres, k)
    normaliser = float(np.median(held_out))
    scores = held_out / normaliser
    centres = _kmeans(z, n_centres, seed).astype(np.float16).astype(np.float64)
    threshold = float(np.quantile(scores, quantile))
    figures = {f"held_out_q{q:g}": float(np.quantile(scores, q)) for q in (0.5, 0.9, 0.95, 0.99)}
    figures["threshold_quantile"] = float(quantile)
    figures["n_training_sites"] = float(len(z))
    domain = DomainScore(
        mean=mean,
        inv_scale=inv_scale,
        centres=centres,
        k=int(k),
        normaliser=normaliser,
        threshold=threshold,
        source=source,
        fit_figures=figures,
    )
    return domain, scores


def roc_auc(negative: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve of scores separating ``positive`` (expected higher) from
    ``negative``: the probability that a random positive outscores a random negative (ties
    count half)."""
    negative = np.asarray(negative, dtype=np.float64).ravel()
    positive = np.asarray(positive, dtype=np.float64).ravel()
    if len(negative) == 0 or len(positive) == 0:
        raise ValueError("roc_auc: both classes need at least one score")
    from scipy.stats import rankdata

    ranks = rankdata(np.concatenate([negative, positive]))
    positive_ranks = ranks[len(negative) :].sum()
    n_pos = len(positive)
    return float((positive_ranks - n_pos * (n_pos + 1) / 2) / (n_pos * len(negative)))
