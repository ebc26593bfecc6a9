"""Latent distances for the Fe default model's calibration (used by ``calibrate.py --latent``).

- :func:`student_distances`: for each fold of ``calibrate_students.py --teacher full``, the
  distance of its held-out structures to the fold's training structures, in the last hidden
  layer of the fold's student 0 (what the shipped default's entry measures, made by a
  stand-in that never saw the held-out fold);
- :func:`shipped_entry`: the shipped default's own ``"latent_distance"`` entry, fitted on its
  member 0's activations of the 3264 training structures.

Method and figures: docs/calibration.md ("Latent distance").
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

import xanesnet
from xanesnet.model.latent import LatentDistance, fit_latent_distance, member_activations
from xanesnet.model.network import NetworkConfig, SpectrumMLP
from xanesnet.model.train import kfold_indices

N_COMPONENTS = 128
MEMBER = 0


hidden = member_activations  # (member, x) -> (n, n_hidden) float32 activations


def student_distances(
    workdir: Path, suffix: str, folds: list[int], x: np.ndarray, n_folds: int, fold_seed: int
) -> np.ndarray:
    """Held-out latent distances of the folds' student 0, concatenated in fold order (the
    order of ``calibrate.student_oof``'s rows)."""
    config = NetworkConfig(hidden=(512, 512), activation="silu", dropout=0.0)
    out = []
    for fold in folds:
        fit, held = kfold_indices(len(x), n_folds, fold_seed)[fold]
        weights = torch.load(workdir / f"students{suffix}_fold_{fold}.students.pt")
        student = SpectrumMLP(x.shape[1], len(weights[MEMBER]["y_mean"]), config)
        student.load_state_dict(weights[MEMBER])
        entry = fit_latent_distance(hidden(student, x[fit]), MEMBER, N_COMPONENTS)
        out.append(entry.distance(hidden(student, x[held])))
    return np.concatenate(out)


def shipped_member() -> torch.nn.Module:
    """The shipped default's member network whose activations the entry measures."""
    module = xanesnet.default_model("Fe", "K").module
    return dict(module.members.named_children())[str(MEMBER)]


def shipped_entry(x: np.ndarray, source: str) -> LatentDistance:
    """The shipped default's entry, fitted on its member 0 and the training descriptors ``x``."""
    return fit_latent_distance(hidden(shipped_member(), x), MEMBER, N_COMPONENTS, source)
