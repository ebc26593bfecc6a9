"""The trust entries of a newly trained model: its domain score and, on request, its σ.

The shipped models' entries were fitted by scripts (``scripts/*/calibrate*.py``); this module
gives ``xanesnet train`` the same two entries for a user's own model:

- :func:`training_domain`: the out-of-domain score of :mod:`.domain`, fitted on the training
  descriptors with the networks' own standardiser (seconds; always worth having);
- :func:`kfold_calibration`: the calibrated σ of :mod:`.calibration`, fitted on out-of-fold
  predictions of stand-ins trained with the same configuration on k − 1 folds of the
  training set (k more trainings, so it is opt-in). The validation split is never used, so
  the validation figures stay independent of σ. With ``latent_components`` the predicted Δμ
  also carries the latent distance (:mod:`.latent`; each stand-in's member 0 measured
  against its own training folds), and :func:`training_latent` gives the model's own entry.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from xanesnet.model.calibration import CalibratedUncertainty
from xanesnet.model.calibration_fit import fit_calibration
from xanesnet.model.domain import DomainScore, fit_domain
from xanesnet.model.latent import LatentDistance, fit_latent_distance, member_activations
from xanesnet.model.network import SpectrumEnsemble
from xanesnet.model.train import TrainConfig, kfold_indices, train_ensemble

__all__ = ["MIN_DOMAIN_SITES", "kfold_calibration", "training_domain", "training_latent"]

#: Fewest training sites :func:`training_domain` fits a score on (its threshold comes from 5
#: held-out folds of them).
MIN_DOMAIN_SITES = 10


def training_domain(
    ensemble: SpectrumEnsemble, features: np.ndarray, *, source: str = ""
) -> DomainScore:
    """The OOD score of ``ensemble``'s training set.

    Args:
        ensemble: the trained networks (their first member's standardiser is used).
        features: (n_train, n_features) raw training descriptors.
        source: description stored with the entry.

    Returns:
        A :class:`~xanesnet.model.domain.DomainScore` (threshold: the 99th percentile of
        5-fold held-out training sites' scores).

    Raises:
        ValueError: fewer than :data:`MIN_DOMAIN_SITES` training sites.
    """
    if len(features) < MIN_DOMAIN_SITES:
        raise ValueError(
            f"the out-of-domain score needs at least {MIN_DOMAIN_SITES} training sites "
            f"(5 held-out folds), got {len(features)}"
        )
    first = ensemble.members[0]
    n_centres = int(min(256, max(2, len(features) // 4)))
    domain, _ = fit_domain(
        np.asarray(features, dtype=np.float64),
        mean=first.x_mean.detach().cpu().numpy().astype(np.float64),
        inv_scale=first.x_inv_scale.detach().cpu().numpy().astype(np.float64),
        n_centres=n_centres,
        source=source
        or f"k-means ({n_centres} centres, k = 1) of the {len(features)} standardised training "
        "descriptors; threshold: 99th percentile of 5-fold held-out training sites",
    )
    return domain


def training_latent(
    ensemble: SpectrumEnsemble, features: np.ndarray, n_components: int = 128
) -> LatentDistance:
    """The latent-distance entry of a trained model: member 0's activations of its
    (n_train, n_features) training descriptors (the entry a calibration fitted with
    ``kfold_calibration(..., latent_components=n_components)`` needs)."""
    return fit_latent_distance(
        member_activations(ensemble.members[0], features),
        0,
        n_components,
        f"member 0's last hidden layer on the {len(features)} training sites, "
        f"{n_components} principal axes",
    )


def kfold_calibration(
    features: np.ndarray,
    spectra: np.ndarray,
    config: TrainConfig,
    folds: int,
    *,
    finish: Callable[[SpectrumEnsemble], SpectrumEnsemble] = lambda ensemble: ensemble,
    progress: Callable[[int, int], None] | None = None,
    seed: int = 0,
    latent_components: int = 0,
) -> CalibratedUncertainty:
    """σ fitted on k-fold out-of-fold predictions of stand-ins of the model.

    Args:
        features: (n_train, n_features) training descriptors.
        spectra: (n_train, n_energies) training spectra.
        config: the model's training configuration (each stand-in is trained with it, without
            a validation split).
        folds: k ≥ 2.
        finish: applied to each trained stand-in before it predicts, as to the model (e.g.
            :func:`~xanesnet.model.network.store_weights_as_float16`).
        progress: called with (fold, folds) before each stand-in is trained.
        seed: fold assignment seed.
        latent_components: > 0: the predicted Δμ also carries the latent distance, measured
            with this many principal axes (the model file then needs
            :func:`training_latent`'s entry); 0: from σ alone.

    Returns:
        The fitted :class:`~xanesnet.model.calibration.CalibratedUncertainty`.

    Raises:
        ValueError: fewer than 2 folds or more folds than training sites.
    """
    n = len(features)
    if not 2 <= folds <= n:
        raise ValueError(
            f"calibration folds: expected 2 <= folds <= {n} (training sites), got {folds}"
        )
    mean = np.empty(spectra.shape, dtype=np.float64)
    spread = np.empty(spectra.shape, dtype=np.float64)
    distance = np.empty(n) if latent_components else None
    for k, (fit_rows, held_rows) in enumerate(kfold_indices(n, folds, seed)):
        if progress is not None:
            progress(k, folds)
        stand_in, _ = train_ensemble(features[fit_rows], spectra[fit_rows], None, None, config)
        stand_in = finish(stand_in)
        with torch.no_grad():
            held_mean, held_spread = stand_in(
                torch.as_tensor(features[held_rows], dtype=torch.float32)
            )
        mean[held_rows] = held_mean.numpy()
        spread[held_rows] = held_spread.numpy()
        if distance is not None:
            first = stand_in.members[0]
            entry = fit_latent_distance(
                member_activations(first, features[fit_rows]), 0, latent_components
            )
            distance[held_rows] = entry.distance(member_activations(first, features[held_rows]))
    return fit_calibration(
        spectra,
        mean,
        spread,
        distance=distance,
        reference_spectra=spectra,
        source=f"{folds}-fold out-of-fold predictions of the {n} training sites by stand-ins "
        "trained with the model's configuration on the other folds",
    )
