"""Training: seeded, resumable, with early stopping, ensembles and k-fold cross-validation.

Determinism: with the same seed, data and thread count, training on the CPU gives the same
weights. All randomness (initialisation, shuffling, dropout, input noise) comes from one
``torch.Generator`` per member plus the global torch RNG state, both saved in checkpoints, so
a killed run resumes to the same result as an uninterrupted one. Checkpoints hold only tensors and
plain Python values and are read with ``torch.load(weights_only=True)``: a file planted in the
work folder cannot run code.
"""

from __future__ import annotations

import csv
import math
import os
import pickle
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from xanesnet.model.kernel import KernelConfig, fit_kernel_ridge
from xanesnet.model.network import (
    NetworkConfig,
    SpectrumEnsemble,
    SpectrumMLP,
    fit_scaling,
    standardised_range,
)

__all__ = ["TrainConfig", "train_member", "train_ensemble", "kfold_indices", "cross_validate"]

_SCHEDULES = ("onecycle", "cosine", "constant")
_LOSSES = ("mse", "l1", "huber")


@dataclass(frozen=True)
class TrainConfig:
    """How to train a spectrum network (or an ensemble of them).

    Attributes:
        network: architecture of each member.
        epochs: maximum number of passes over the training set.
        batch_size: samples per optimiser step.
        learning_rate: peak learning rate of Adam(W).
        weight_decay: decoupled weight decay (AdamW); 0 for plain Adam.
        schedule: "onecycle" (warm-up then cosine decay), "cosine" or "constant".
        warmup_fraction: share of steps spent warming up ("onecycle").
        loss: "mse", "l1" or "huber", on standardised spectra.
        patience: stop when the validation loss has not improved for this many epochs
            (None: run all epochs); the best epoch's weights are kept either way.
        n_members: ensemble size; member i is seeded with ``seed + i``.
        seed: base random seed.
        input_noise: standard deviation of Gaussian noise added to standardised inputs
            during training (augmentation; 0 = off).
        restore_best: end with the weights of the best validation epoch (True), or with the
            last epoch's (False: the validation set then only monitors training, so metrics
            measured on it stay unbiased).
        derivative_weight: weight of a second loss term on the spectra's first differences
            along energy (in units of the training set's standard deviation of those
            differences), which rewards getting peak shapes and positions right; 0 = off.
        kernel: also fit a Laplacian kernel ridge model on the same training data and blend
            it with the networks (see :mod:`xanesnet.model.kernel`); None for networks only.
    """

    network: NetworkConfig = field(default_factory=NetworkConfig)
    epochs: int = 400
    batch_size: int = 32
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    schedule: str = "onecycle"
    warmup_fraction: float = 0.05
    loss: str = "mse"
    patience: int | None = None
    n_members: int = 1
    seed: int = 0
    input_noise: float = 0.0
    restore_best: bool = True
    derivative_weight: float = 0.0
    kernel: KernelConfig | None = None

    def __post_init__(self) -> None:
        if isinstance(self.network, dict):
            object.__setattr__(self, "network", NetworkConfig.from_dict(self.network))
        if isinstance(self.kernel, dict):
            object.__setattr__(self, "kernel", KernelConfig.from_dict(self.kernel))
        for name in ("epochs", "batch_size", "n_members"):
            if int(getattr(self, name)) < 1:
                raise ValueError(
                    f"{name}: expected a positive integer, got {getattr(self, name)!r}"
                )
        if self.schedule not in _SCHEDULES:
            raise ValueError(f"schedule: expected one of {_SCHEDULES}, got {self.schedule!r}")
        if self.loss not in _LOSSES:
            raise ValueError(f"loss: expected one of {_LOSSES}, got {self.loss!r}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate: expected > 0, got {self.learning_rate!r}")
        if not self.derivative_weight >= 0:
            raise ValueError(
                f"derivative_weight: expected a value >= 0, got {self.derivative_weight!r}"
            )
        if self.patience is not None and self.patience < 1:
            raise ValueError(
                f"patience: expected a positive integer or None, got {self.patience!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["network"] = self.network.to_dict()
        data["kernel"] = None if self.kernel is None else self.kernel.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        data = dict(data)
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"training config: unknown keys {unknown}")
        if "network" in data:
            data["network"] = NetworkConfig.from_dict(dict(data["network"]))
        if data.get("kernel") is not None:
            data["kernel"] = KernelConfig.from_dict(dict(data["kernel"]))
        return cls(**data)


def _loss_fn(name: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    if name == "mse":
        return nn.functional.mse_loss
    if name == "l1":
        return nn.functional.l1_loss
    return lambda a, b: nn.functional.huber_loss(a, b, delta=1.0)


def _learning_rate(config: TrainConfig, step: int, total: int) -> float:
    if config.schedule == "constant":
        return config.learning_rate
    warmup = int(config.warmup_fraction * total) if config.schedule == "onecycle" else 0
    if step < warmup:
        return config.learning_rate * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return config.learning_rate * 0.5 * (1.0 + math.cos(math.pi * progress))


def _init_weights(model: SpectrumMLP, generator: torch.Generator) -> None:
    for module in model.layers:
        if isinstance(module, nn.Linear):
            bound = math.sqrt(6.0 / module.in_features)  # He-uniform
            with torch.no_grad():
                module.weight.uniform_(-bound, bound, generator=generator)
                module.bias.zero_()


def _atomic_save(obj: Any, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


_CHECKPOINT_KEYS = (
    "model",
    "optimiser",
    "generator",
    "torch_rng",
    "history",
    "best_state",
    "best_val",
    "epoch",
)


def _read_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint written by :func:`train_member`, read without running any pickled code.

    Raises:
        ValueError naming the file when it is not such a checkpoint (including any file that
        needs more than tensors and plain values to load).
    """
    try:
        state = torch.load(path, weights_only=True, map_location="cpu")
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(
            f"{path}: not a training checkpoint that can be loaded safely (tensors and plain "
            f"values only): {first_line}; delete it to train this member from the start"
        ) from exc
    missing = [k for k in _CHECKPOINT_KEYS if not isinstance(state, dict) or k not in state]
    history = state.get("history") if isinstance(state, dict) else None
    if missing or not (
        isinstance(history, dict) and {"train_loss", "val_loss", "best_epoch"} <= history.keys()
    ):
        raise ValueError(
            f"{path}: not a training checkpoint of this version (missing {missing or 'history'}); "
            "delete it to train this member from the start"
        )
    return state


@dataclass
class History:
    """Per-epoch losses (standardised units) of one member."""

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    best_epoch: int = -1


def train_member(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray | None,
    y_val: np.ndarray | None,
    config: TrainConfig,
    *,
    seed: int | None = None,
    checkpoint: Path | None = None,
    log_csv: Path | None = None,
    progress: Callable[[int, float, float | None], None] | None = None,
) -> tuple[SpectrumMLP, History]:
    """Train one network.

    Args:
        x_train: (n_train, n_features) descriptors.
        y_train: (n_train, n_energies) spectra.
        x_val, y_val: validation set for early stopping and model selection (optional).
        config: training settings.
        seed: this member's seed (default ``config.seed``).
        checkpoint: file written after every epoch; if it exists, training resumes from it.
        log_csv: per-epoch log (epoch, train_loss, val_loss, learning_rate, seconds).
        progress: called after each epoch with (epoch, train_loss, val_loss).

    Returns:
        The network with the weights of its best validation epoch (the last epoch when no
        validation set is given), and its loss history.
    """
    seed = config.seed if seed is None else seed
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # dropout draws from the global generator
    x_mean, x_inv_scale, y_mean, y_scale = fit_scaling(x_train, y_train)
    # inputs beyond the training range are clamped to it at prediction time (SpectrumMLP)
    z_min, z_max = standardised_range(x_train, x_mean, x_inv_scale)
    model = SpectrumMLP(
        x_train.shape[1],
        y_train.shape[1],
        config.network,
        x_mean,
        x_inv_scale,
        y_mean,
        y_scale,
        z_min,
        z_max,
    )
    _init_weights(model, generator)
    optimiser = torch.optim.AdamW(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    xt = torch.as_tensor(x_train, dtype=torch.float32)
    yt = (torch.as_tensor(y_train, dtype=torch.float32) - model.y_mean) / model.y_scale
    has_val = x_val is not None and y_val is not None and len(x_val) > 0
    if has_val:
        xv = torch.as_tensor(x_val, dtype=torch.float32)
        yv = (torch.as_tensor(y_val, dtype=torch.float32) - model.y_mean) / model.y_scale
    loss_fn = _loss_fn(config.loss)
    if config.derivative_weight > 0:
        # first differences of the physical spectra, scaled to unit standard deviation
        diff_std = float(np.diff(y_train, axis=1).std()) or 1.0
        slope = model.y_scale / diff_std

        def shape_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            return config.derivative_weight * loss_fn(
                torch.diff(pred * slope, dim=1), torch.diff(target * slope, dim=1)
            )
    else:
        shape_loss = None
    n_train = xt.shape[0]
    steps_per_epoch = math.ceil(n_train / config.batch_size)
    total_steps = config.epochs * steps_per_epoch
    history = History()
    best_state: dict[str, torch.Tensor] | None = None
    best_val = math.inf
    start_epoch = 0

    if checkpoint is not None and Path(checkpoint).exists():
        state = _read_checkpoint(Path(checkpoint))
        try:
            # checkpoints written before the input bounds existed: the bounds follow from
            # x_train alone, as this run computed them
            for saved in (state["model"], state["best_state"] or {}):
                for key in ("z_min", "z_max"):
                    if saved and key not in saved:
                        saved[key] = model.state_dict()[key].clone()
            model.load_state_dict(state["model"])
            optimiser.load_state_dict(state["optimiser"])
            generator.set_state(state["generator"])
            torch.set_rng_state(state["torch_rng"])
            history = History(
                train_loss=[float(v) for v in state["history"]["train_loss"]],
                val_loss=[float(v) for v in state["history"]["val_loss"]],
                best_epoch=int(state["history"]["best_epoch"]),
            )
            best_state = state["best_state"]
            if best_state is not None:
                shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
                if {k: tuple(v.shape) for k, v in best_state.items()} != shapes:
                    raise ValueError("best_state: other tensors than the network's")
            best_val = float(state["best_val"])
            start_epoch = int(state["epoch"]) + 1
        except (RuntimeError, ValueError, TypeError, KeyError, AttributeError) as exc:
            first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ValueError(
                f"{checkpoint}: checkpoint does not fit this training run ({first_line}); "
                "delete it to train this member from the start"
            ) from exc

    log_file = None
    if log_csv is not None:
        new = start_epoch == 0 or not Path(log_csv).exists()
        log_file = open(log_csv, "w" if new else "a", newline="")  # noqa: SIM115
        writer = csv.writer(log_file)
        if new:
            writer.writerow(["epoch", "train_loss", "val_loss", "learning_rate", "seconds"])
    try:
        stale = 0 if best_state is None else len(history.val_loss) - 1 - history.best_epoch
        for epoch in range(start_epoch, config.epochs):
            if config.patience is not None and has_val and stale >= config.patience:
                break
            started = time.perf_counter()
            model.train()
            order = torch.randperm(n_train, generator=generator)
            total = 0.0
            for b in range(steps_per_epoch):
                lr = _learning_rate(config, epoch * steps_per_epoch + b, total_steps)
                for group in optimiser.param_groups:
                    group["lr"] = lr
                batch = order[b * config.batch_size : (b + 1) * config.batch_size]
                z = (xt[batch] - model.x_mean) * model.x_inv_scale
                if config.input_noise > 0:
                    z = z + config.input_noise * torch.randn(z.shape, generator=generator)
                out = model.layers(z)
                loss = loss_fn(out, yt[batch])
                if shape_loss is not None:
                    loss = loss + shape_loss(out, yt[batch])
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                total += float(loss.detach()) * len(batch)
            history.train_loss.append(total / n_train)
            val_loss = None
            if has_val:
                model.eval()
                with torch.no_grad():
                    val_loss = float(loss_fn(model.normalised(xv), yv))
                history.val_loss.append(val_loss)
                if val_loss < best_val:
                    best_val = val_loss
                    history.best_epoch = epoch
                    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                    stale = 0
                else:
                    stale += 1
            if log_file is not None:
                writer.writerow(
                    [
                        epoch,
                        history.train_loss[-1],
                        "" if val_loss is None else val_loss,
                        lr,
                        f"{time.perf_counter() - started:.3f}",
                    ]
                )
                log_file.flush()
            if checkpoint is not None:
                _atomic_save(
                    {
                        "model": model.state_dict(),
                        "optimiser": optimiser.state_dict(),
                        "generator": generator.get_state(),
                        "torch_rng": torch.get_rng_state(),
                        "history": asdict(history),
                        "best_state": best_state,
                        "best_val": best_val,
                        "epoch": epoch,
                    },
                    Path(checkpoint),
                )
            if progress is not None:
                progress(epoch, history.train_loss[-1], val_loss)
    finally:
        if log_file is not None:
            log_file.close()
    if best_state is not None and config.restore_best:
        model.load_state_dict(best_state)
    else:
        history.best_epoch = len(history.train_loss) - 1
    model.eval()
    return model, history


def train_ensemble(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray | None,
    y_val: np.ndarray | None,
    config: TrainConfig,
    *,
    workdir: Path | None = None,
    progress: Callable[[int, int, float, float | None], None] | None = None,
    member_targets: Callable[[int], np.ndarray] | None = None,
    shared_seed: bool = False,
) -> tuple[SpectrumEnsemble, list[History]]:
    """Train ``config.n_members`` members (seeds ``seed + i``) into one ensemble.

    With ``workdir``, member i checkpoints to ``member_i.ckpt`` and logs to ``member_i.csv``
    there, so a killed run resumes where it stopped. With ``config.kernel`` the kernel ridge
    model is fitted last (deterministic, seconds) and blended in. ``member_targets(i)`` gives
    member i its own (n_train, n_energies) targets instead of ``y_train`` (made when that
    member starts, so one copy at a time); ``shared_seed``: every member uses ``seed``.
    """
    members, histories = [], []
    for i in range(config.n_members):
        ckpt = log = None
        if workdir is not None:
            Path(workdir).mkdir(parents=True, exist_ok=True)
            ckpt = Path(workdir) / f"member_{i}.ckpt"
            log = Path(workdir) / f"member_{i}.csv"
        member_progress = None
        if progress is not None:
            member_progress = lambda e, t, v, i=i: progress(i, e, t, v)  # noqa: E731
        model, history = train_member(
            x_train,
            y_train if member_targets is None else member_targets(i),
            x_val,
            y_val,
            config,
            seed=config.seed if shared_seed else config.seed + i,
            checkpoint=ckpt,
            log_csv=log,
            progress=member_progress,
        )
        members.append(model)
        histories.append(history)
    kernel = None
    if config.kernel is not None:
        kernel = fit_kernel_ridge(x_train, y_train, config.kernel)
    weight = 0.0 if config.kernel is None else config.kernel.weight
    return SpectrumEnsemble(members, kernel, weight).eval(), histories


def kfold_indices(n_samples: int, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Seeded k-fold split: a list of (train_indices, test_indices), folds of near-equal size."""
    if not 2 <= k <= n_samples:
        raise ValueError(f"k: expected 2 <= k <= n_samples ({n_samples}), got {k}")
    order = np.random.default_rng(seed).permutation(n_samples)
    folds = np.array_split(order, k)
    return [
        (np.sort(np.concatenate([f for j, f in enumerate(folds) if j != i])), np.sort(folds[i]))
        for i in range(k)
    ]


def cross_validate(
    features: np.ndarray,
    spectra: np.ndarray,
    config: TrainConfig,
    *,
    k: int = 5,
    seed: int = 0,
    evaluate: Callable[[np.ndarray, np.ndarray], dict[str, float]] | None = None,
    progress: Callable[[int, int, int, float, float | None], None] | None = None,
) -> list[dict[str, Any]]:
    """k-fold cross-validation: train on k−1 folds, predict the held-out fold.

    Early stopping (if ``config.patience``) uses a seeded 10 % of each training part, never the
    held-out fold.

    Returns:
        One dict per fold: ``fold``, ``test_indices``, ``prediction`` (n_test, n_energies) and
        the ``evaluate(prediction, target)`` figures when given.
    """
    results = []
    for fold, (train_idx, test_idx) in enumerate(kfold_indices(len(features), k, seed)):
        fit_idx, stop_idx = train_idx, None
        if config.patience is not None:
            shuffled = np.random.default_rng(seed + 1000 + fold).permutation(train_idx)
            n_stop = max(1, len(shuffled) // 10)
            stop_idx, fit_idx = np.sort(shuffled[:n_stop]), np.sort(shuffled[n_stop:])
        fold_progress = None
        if progress is not None:
            fold_progress = lambda m, e, t, v, fold=fold: progress(fold, m, e, t, v)  # noqa: E731
        ensemble, _ = train_ensemble(
            features[fit_idx],
            spectra[fit_idx],
            None if stop_idx is None else features[stop_idx],
            None if stop_idx is None else spectra[stop_idx],
            replace(config, seed=config.seed + 100 * fold),
            progress=fold_progress,
        )
        with torch.no_grad():
            prediction = ensemble(torch.as_tensor(features[test_idx], dtype=torch.float32))[0]
        prediction = prediction.numpy().astype(np.float64)
        entry: dict[str, Any] = {"fold": fold, "test_indices": test_idx, "prediction": prediction}
        if evaluate is not None:
            entry.update(evaluate(prediction, spectra[test_idx]))
        results.append(entry)
    return results
