"""Distillation: small networks trained to reproduce a larger model (the teacher).

An ensemble blended with kernel ridge regression is accurate, but it
costs three networks and a kernel sum over thousands of training sites per prediction. A
single network (or two) trained on the teacher's predictions instead of the reference spectra gets
most of that accuracy at a fraction of the cost, provided it sees many more inputs than the
few thousand training structures: those come from randomly perturbed copies of the training
structures (every atom displaced by Gaussian noise of a few hundredths of an ångström),
labelled by the teacher. The copies stay close to the training structures, where the teacher
is reliable; copies whose teacher spectrum leaves the range of the training spectra (the
teacher extrapolating) are dropped. Mixed samples, convex combinations of the descriptors of
two random training structures, fill the space between structures, where new structures fall
(on the Fe validation split they took the student from 4.61 to 4.55 % Δμ_avg).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "DistillConfig",
    "check_student_config",
    "distillation_set",
    "perturbed_copies",
    "train_student",
]

_ORIGINALS = ("teacher", "reference")
_MIX_BLOCK = 32768  # mixed samples labelled per teacher call (bounds the float64 scratch)


@dataclass(frozen=True)
class DistillConfig:
    """How to build the student's training set.

    Attributes:
        copies: perturbed copies made of each training structure.
        sigmas: standard deviations of the Gaussian displacement of every Cartesian
            coordinate, Å; copy k uses ``sigmas[k % len(sigmas)]``.
        seed: seed of the displacements.
        originals: labels of the unperturbed training structures: "teacher" (its
            predictions, like every copy) or "reference" (the reference spectra).
        label_margin: a copy (or mixed sample) is dropped when its teacher spectrum goes
            outside the range of the reference training spectra widened by this fraction of
            that range on each side (the teacher extrapolating far from its data).
        mixup: number of mixed samples: λ·x_i + (1 − λ)·x_j for random training structures
            i, j and λ ~ U(0, 1), labelled by the teacher.
    """

    copies: int = 32
    sigmas: tuple[float, ...] = (0.005, 0.01, 0.02, 0.03)
    seed: int = 0
    originals: str = "teacher"
    label_margin: float = 0.2
    mixup: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "sigmas", tuple(float(s) for s in self.sigmas))
        if int(self.copies) < 0:
            raise ValueError(f"copies: expected an integer >= 0, got {self.copies!r}")
        if not self.sigmas or not all(np.isfinite(s) and s >= 0 for s in self.sigmas):
            raise ValueError(f"sigmas: expected displacements >= 0 in Å, got {self.sigmas!r}")
        if self.originals not in _ORIGINALS:
            raise ValueError(f"originals: expected one of {_ORIGINALS}, got {self.originals!r}")
        if int(self.mixup) < 0:
            raise ValueError(f"mixup: expected an integer >= 0, got {self.mixup!r}")
        if not self.label_margin >= 0:
            raise ValueError(f"label_margin: expected a value >= 0, got {self.label_margin!r}")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["sigmas"] = list(self.sigmas)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DistillConfig:
        unknown = sorted(set(data) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"distillation config: unknown keys {unknown}")
        return cls(**data)


def perturbed_copies(
    structures: Sequence[Any], sigma: float, rng: np.random.Generator
) -> list[Any]:
    """Copies of ``structures`` (ase.Atoms) with every position displaced by N(0, sigma²)
    per Cartesian component (Å); cell, numbers and info are kept."""
    copies = []
    for atoms in structures:
        copy = atoms.copy()
        copy.positions = copy.positions + rng.normal(0.0, sigma, copy.positions.shape)
        copies.append(copy)
    return copies


def distillation_set(
    teacher: Any,
    structures: Sequence[Any],
    features: np.ndarray,
    reference: np.ndarray,
    config: DistillConfig,
    *,
    n_threads: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """The student's training set: the training structures and their perturbed copies,
    labelled by the teacher.

    Args:
        teacher: a loaded :class:`~xanesnet.model.runtime.XanesModel`.
        structures: (n,) training structures (ase.Atoms), absorber at index 0.
        features: (n, n_features) the teacher's descriptors of ``structures``.
        reference: (n, n_energies) their reference spectra on the teacher's grid.
        config: copies, displacements and label rules.
        n_threads: descriptor and kernel threads (0 = all cores).
        progress: called with (copies done, copies) after each round of copies.

    Returns:
        features (m, n_features) float32, labels (m, n_energies) float32, and a summary
        (copies and mixed samples made, how many ``label_margin`` dropped, samples).
    """
    features = np.asarray(features)
    reference = np.asarray(reference, dtype=np.float64)
    if len(structures) != len(features) or len(features) != len(reference):
        raise ValueError(
            f"structures, features and reference: expected equal lengths, got "
            f"{len(structures)}, {len(features)}, {len(reference)}"
        )
    low, high = float(reference.min()), float(reference.max())
    margin = config.label_margin * (high - low)
    low, high = low - margin, high + margin
    if config.originals == "teacher":
        original_labels = teacher.predict_features(features, n_threads=n_threads)[0]
    else:
        original_labels = reference
    xs = [features.astype(np.float32)]
    ys = [np.asarray(original_labels, dtype=np.float32)]
    rng = np.random.default_rng(config.seed)
    dropped = 0
    for k in range(config.copies):
        sigma = config.sigmas[k % len(config.sigmas)]
        copies = perturbed_copies(structures, sigma, rng)
        x, _ = teacher.descriptor.compute(copies, 0, n_threads=n_threads)
        y = teacher.predict_features(x, n_threads=n_threads)[0]
        plausible = (y.min(axis=1) >= low) & (y.max(axis=1) <= high)
        dropped += int((~plausible).sum())
        xs.append(x[plausible].astype(np.float32))
        ys.append(y[plausible].astype(np.float32))
        if progress is not None:
            progress(k + 1, config.copies)
    mix_rng = np.random.default_rng([config.seed, 1])
    for start in range(0, config.mixup, _MIX_BLOCK):
        n = min(_MIX_BLOCK, config.mixup - start)
        i, j = mix_rng.integers(0, len(features), (2, n))
        lam = mix_rng.uniform(0.0, 1.0, (n, 1))
        x = lam * features[i] + (1.0 - lam) * features[j]
        y = teacher.predict_features(x, n_threads=n_threads)[0]
        plausible = (y.min(axis=1) >= low) & (y.max(axis=1) <= high)
        dropped += int((~plausible).sum())
        xs.append(x[plausible].astype(np.float32))
        ys.append(y[plausible].astype(np.float32))
    x_all, y_all = np.concatenate(xs), np.concatenate(ys)
    summary = {
        "structures": len(structures),
        "copies": config.copies * len(structures),
        "mixed": int(config.mixup),
        "dropped": dropped,
        "samples": len(x_all),
    }
    return x_all, y_all, summary


def check_student_config(config: Any) -> None:
    """Refuse a student :class:`~xanesnet.model.train.TrainConfig` with a kernel member."""
    if config.kernel is not None:
        raise ValueError(
            "[training.kernel]: a distilled student is networks only (the kernel member is "
            "what it replaces)"
        )


def train_student(
    features: np.ndarray,
    labels: np.ndarray,
    config: Any,
    *,
    workdir: Path | None = None,
    progress: Callable[[int, int, float, float | None], None] | None = None,
) -> tuple[Any, list[Any]]:
    """Train the student (``config``: a :class:`~xanesnet.model.train.TrainConfig` without a
    kernel member) on a distillation set; returns (SpectrumEnsemble, histories) like
    :func:`~xanesnet.model.train.train_ensemble`."""
    from xanesnet.model.train import train_ensemble

    check_student_config(config)
    return train_ensemble(features, labels, None, None, config, workdir=workdir, progress=progress)
