"""Distance of a site to the nearest training structure in a network's own representation.

The activations that enter a member network's output layer are what the network made of the
descriptor; sites whose activations lie far from every training structure's are predicted
less well than their members' spread alone says (``docs/calibration.md``: on held-out Fe
complexes this distance ranks the errors at Spearman 0.82, the spread at 0.77). The
calibration's predicted Δμ (:mod:`.calibration`) combines the two.

:class:`LatentDistance` holds, for one member, the centre and the leading principal axes of the
training structures' activations and the training structures projected on them; the distance
of a site is the Euclidean distance from its projection to the nearest training projection,
divided by the median of the same distance between training structures (each to its nearest
other), so a site as close to the training set as training structures are to each other
scores about 1. The numbers travel as the ``"latent_distance"`` entry of a model file's
metadata (training projections as base64 float16: 3264 × 128 values, about 1.1 MB of text).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from xanesnet.model.entries import MetadataEntry, decode_array, encode_array
from xanesnet.model.precision import MemberNetwork

__all__ = ["LATENT_SCHEMA", "LatentDistance", "fit_latent_distance", "member_activations"]

LATENT_SCHEMA = "xanesnet.latent_distance/1"

#: sites per block of the distance computation: the (block, n_training) products stay in
#: cache (4096-site blocks were 1.8x slower per site, measured on 3264 training structures)
_BLOCK = 256


@dataclass(frozen=True)
class LatentDistance(MetadataEntry):
    """Nearest-training-structure distance in one member network's last hidden layer.

    Attributes:
        member: index of the member network whose activations are used.
        centre: (n_hidden,) mean activation of the training structures.
        axes: (n_hidden, n_components) leading principal axes of those activations.
        training: (n_training, n_components) the training structures' projections (as
            stored: float16 values).
        normaliser: median distance of a training structure to its nearest other one.
        source: how the fit was made (free text).
        fit_figures: figures of the fit, for the record.
    """

    member: int
    centre: np.ndarray
    axes: np.ndarray
    training: np.ndarray
    normaliser: float
    source: str = ""
    fit_figures: dict[str, float] = field(default_factory=dict)
    # float32 copies for the distance products (filled in __post_init__)
    _axes32: torch.Tensor = field(init=False, repr=False, compare=False)
    _training32: np.ndarray = field(init=False, repr=False, compare=False)
    _search: torch.Tensor = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        training = np.asarray(self.training, dtype=np.float32)
        # one product gives |t|² − 2 p·t for every training projection t: [p, 1] times
        # [−2 tᵀ; |t|²] (× −2 is exact)
        search = np.empty((training.shape[1] + 1, len(training)), dtype=np.float32)
        search[:-1] = training.T * np.float32(-2.0)
        search[-1] = np.einsum("ij,ij->i", training, training)
        object.__setattr__(self, "_axes32", torch.from_numpy(np.asarray(self.axes, np.float32)))
        object.__setattr__(self, "_training32", training)
        object.__setattr__(self, "_search", torch.from_numpy(search))

    @property
    def n_hidden(self) -> int:
        return len(self.centre)

    def project(self, hidden: np.ndarray | torch.Tensor) -> np.ndarray:
        """(n_sites, n_components) float32 projections of (n_sites, n_hidden) activations."""
        h = torch.as_tensor(hidden, dtype=torch.float32)
        if h.ndim != 2 or h.shape[1] != self.n_hidden:
            raise ValueError(
                f"hidden: expected shape (n_sites, {self.n_hidden}), got {tuple(h.shape)}"
            )
        centred = h - torch.from_numpy(np.asarray(self.centre, dtype=np.float32))
        # through torch, like the networks: its float32 GEMM gives the same bits whatever the
        # thread count
        return centred.mm(self._axes32).numpy()

    def distance(self, hidden: np.ndarray | torch.Tensor) -> np.ndarray:
        """(n_sites,) float64 normalised distance of each site to the nearest training
        structure (≈ 1 for sites as close as training structures are to each other)."""
        return self._nearest(self.project(hidden), exclude_self=False) / self.normaliser

    def _nearest(self, points: np.ndarray, exclude_self: bool) -> np.ndarray:
        """(n,) float64 distance of float32 projections to the nearest training projection
        (``exclude_self``: points are the training projections, each skips itself)."""
        out = np.empty(len(points))
        augmented = np.ones((min(len(points), _BLOCK), points.shape[1] + 1), dtype=np.float32)
        for start in range(0, len(points), _BLOCK):
            p = points[start : start + _BLOCK]
            block = augmented[: len(p)]
            block[:, :-1] = p
            # the nearest by |t|² − 2 p·t in float32 (cancellation: its values carry errors
            # of ~1e-7 |p|², and depend on how the library blocks rows), then its distance
            # measured directly in float64
            d2 = torch.from_numpy(block).mm(self._search).numpy()
            rows = np.arange(len(p))
            if exclude_self:
                d2[rows, start + rows] = np.inf
            diff = self._training32[d2.argmin(axis=1)].astype(np.float64) - p.astype(np.float64)
            out[start : start + len(p)] = np.sqrt(np.einsum("ij,ij->i", diff, diff))
        return out

    def to_metadata(self) -> dict[str, Any]:
        """JSON-ready dict (the model file's ``"latent_distance"`` entry)."""
        return {
            "schema": LATENT_SCHEMA,
            "distance": "Euclidean distance from (h - centre) @ axes to the nearest training "
            "projection / normaliser; h = the activations entering member's output layer",
            "member": int(self.member),
            "centre": encode_array(self.centre, "float32"),
            "axes": encode_array(self.axes, "float32"),
            "training": encode_array(self.training, "float16"),
            "normaliser": float(self.normaliser),
            "source": self.source,
            "fit_figures": dict(self.fit_figures),
        }

    KEY = "latent_distance"
    SCHEMA = LATENT_SCHEMA

    @classmethod
    def from_entry(cls, data: dict[str, Any]) -> LatentDistance:
        """Rebuild from a latent-distance entry (see :meth:`MetadataEntry.from_metadata`: a
        ValueError also for inconsistent arrays)."""
        centre = decode_array(data["centre"], "latent_distance['centre']")
        axes = decode_array(data["axes"], "latent_distance['axes']")
        training = decode_array(data["training"], "latent_distance['training']")
        member, normaliser = int(data["member"]), float(data["normaliser"])
        if (
            centre.ndim != 1
            or axes.ndim != 2
            or axes.shape[0] != len(centre)
            or training.ndim != 2
            or training.shape[1] != axes.shape[1]
            or len(training) == 0
        ):
            raise ValueError(
                f"latent_distance: centre {centre.shape}, axes {axes.shape} and training "
                f"{training.shape} do not agree"
            )
        if not all(np.isfinite(a).all() for a in (centre, axes, training)):
            raise ValueError("latent_distance: non-finite values in centre, axes or training")
        if member < 0 or not (np.isfinite(normaliser) and normaliser > 0):
            raise ValueError(
                f"latent_distance: expected member >= 0 and normaliser > 0, got {member}, "
                f"{normaliser}"
            )
        return cls(
            member=member,
            centre=centre,
            axes=axes,
            training=training,
            normaliser=normaliser,
            source=str(data.get("source", "")),
            fit_figures=dict(data.get("fit_figures") or {}),
        )


def member_activations(member: Any, features: np.ndarray) -> np.ndarray:
    """(n_sites, n_hidden) float32 activations entering the output layer of ``member`` (a
    scripted or eager ``SpectrumMLP``) for raw (n_sites, n_features) descriptors: what a
    latent-distance entry is fitted on."""
    network = MemberNetwork.from_member(member, "latent distance", torch.float32)
    with torch.no_grad():
        return network.last_hidden(torch.as_tensor(features, dtype=torch.float32)).numpy()


def fit_latent_distance(
    hidden: np.ndarray, member: int = 0, n_components: int = 128, source: str = ""
) -> LatentDistance:
    """Fit the entry on the training structures' activations.

    Args:
        hidden: (n_training, n_hidden) activations of member ``member`` on the training
            structures (:meth:`xanesnet.model.precision.MemberNetwork.last_hidden`).
        member: which member they come from.
        n_components: principal axes kept (at most n_hidden and n_training − 1).
        source: description, stored with the entry.

    Returns:
        The entry; its normaliser is computed from the stored (float16) projections, so a
        training structure scores exactly as at prediction time.
    """
    h = np.asarray(hidden, dtype=np.float64)
    if h.ndim != 2 or len(h) < 3:
        raise ValueError(f"hidden: expected (n_training >= 3, n_hidden), got {h.shape}")
    centre = h.mean(axis=0)
    _, singular, vt = np.linalg.svd(h - centre, full_matrices=False)
    q = max(1, min(n_components, h.shape[1], len(h) - 1))
    axes = vt[:q].T
    draft = LatentDistance(member, centre, axes, np.zeros((1, q)), 1.0)
    training = draft.project(h).astype(np.float16).astype(np.float64)
    draft = LatentDistance(member, centre, axes, training, 1.0)
    # each training structure's nearest other one (duplicates count as 0, as they should)
    normaliser = float(np.median(draft._nearest(np.asarray(training, np.float32), True)))
    if not normaliser > 0:
        raise ValueError("fit_latent_distance: training structures are all duplicates")
    variance = singular**2
    figures = {
        "n_training": float(len(h)),
        "n_components": float(q),
        "explained_variance": float(variance[:q].sum() / max(variance.sum(), 1e-300)),
    }
    return LatentDistance(member, centre, axes, training, normaliser, source, figures)
