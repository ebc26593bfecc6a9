"""Spectrum networks: architecture, training, model files (:mod:`.files`) and the runtime model
(:mod:`.runtime`)."""

from __future__ import annotations

from xanesnet.model.files import load_model, save_model, update_model_metadata
from xanesnet.model.kernel import KernelConfig, KernelRidge, fit_kernel_ridge
from xanesnet.model.network import NetworkConfig, SpectrumEnsemble, SpectrumMLP
from xanesnet.model.runtime import Prediction, XanesModel
from xanesnet.model.train import TrainConfig, cross_validate, train_ensemble, train_member

__all__ = [
    "KernelConfig",
    "KernelRidge",
    "NetworkConfig",
    "Prediction",
    "SpectrumEnsemble",
    "SpectrumMLP",
    "TrainConfig",
    "XanesModel",
    "cross_validate",
    "fit_kernel_ridge",
    "load_model",
    "save_model",
    "train_ensemble",
    "train_member",
    "update_model_metadata",
]
