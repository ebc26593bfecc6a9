"""Laplacian kernel ridge regression, the second model family of a blended ensemble.

On a few thousand training spectra, kernel ridge regression with the Laplacian (L1) kernel is
as accurate as a small ensemble of networks, and its errors differ from theirs: averaging the
two is better than either (docs/model.md gives the figures). The fitted model is a plain
``torch.nn.Module`` of buffers, so it is exported in the same TorchScript / ``torch.export`` file
as the networks.

    k(a, b) = exp(−γ · Σ_i |a_i − b_i|)   on standardised descriptors,
    spectrum(x) = Σ_j k(x, c_j) · α_j + y_mean,
    γ = 1 / (length_scale · median L1 distance between training points),
    α = (K + ridge · I)⁻¹ (Y − y_mean), solved in float64.

The centres c_j are the training descriptors, stored as float32 (or float16 with
``centre_dtype="float16"`` to halve the file); α is solved against the stored, rounded centres so
that the saved model reproduces the training spectra exactly as fitted. With ``n_components`` the
spectra are expressed in their leading principal components (from the training spectra), so α
has that many columns instead of one per energy: the prediction is the full one projected on
that basis (on Fe K-edge spectra 64 components change Δμ_avg by < 0.01 points).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from xanesnet.model.network import fit_scaling

__all__ = ["KernelConfig", "KernelRidge", "fit_kernel_ridge", "l1_distances"]

_CENTRE_DTYPES = {"float32": torch.float32, "float16": torch.float16}


@dataclass(frozen=True)
class KernelConfig:
    """Settings of the Laplacian kernel ridge member of an ensemble.

    Attributes:
        weight: share of the kernel model in the blended prediction,
            ``(1 − weight) · mean(networks) + weight · kernel``; 1 with no networks.
        length_scale: kernel length in units of the median L1 distance between training points.
        ridge: regularisation added to the kernel matrix diagonal (the kernel is ≤ 1).
        centre_dtype: storage of the training descriptors in the model file, "float32" or
            "float16" (half the size; α is fitted to the rounded values).
        n_components: number of principal components of the training spectra the model
            predicts (None: every energy point).
    """

    weight: float = 0.5
    length_scale: float = 1.0
    ridge: float = 1e-4
    centre_dtype: str = "float32"
    n_components: int | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= float(self.weight) <= 1.0:
            raise ValueError(f"kernel.weight: expected a value in [0, 1], got {self.weight!r}")
        if not float(self.length_scale) > 0:
            raise ValueError(f"kernel.length_scale: expected > 0, got {self.length_scale!r}")
        if not float(self.ridge) > 0:
            raise ValueError(f"kernel.ridge: expected > 0, got {self.ridge!r}")
        if self.centre_dtype not in _CENTRE_DTYPES:
            raise ValueError(
                f"kernel.centre_dtype: expected one of {sorted(_CENTRE_DTYPES)}, "
                f"got {self.centre_dtype!r}"
            )

        if self.n_components is not None and (
            not isinstance(self.n_components, int) or self.n_components < 1
        ):
            raise ValueError(
                f"kernel.n_components: expected a positive integer or None, "
                f"got {self.n_components!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> KernelConfig:
        unknown = sorted(set(data) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"kernel config: unknown keys {unknown}")
        return cls(**data)


class KernelRidge(nn.Module):
    """Fitted Laplacian kernel ridge model.

    Input (n_sites, n_features) float32 descriptors; output (n_sites, n_energies) spectra.
    ``coefficients`` is (n_centres, n_energies), or (n_centres, n_components) with ``basis``
    (n_components, n_energies) mapping components to energies.
    """

    def __init__(
        self,
        x_mean: np.ndarray,
        x_inv_scale: np.ndarray,
        centres: np.ndarray,
        coefficients: np.ndarray,
        y_mean: np.ndarray,
        gamma: float,
        centre_dtype: str = "float32",
        basis: np.ndarray | None = None,
    ) -> None:
        super().__init__()
        n_centres, n_features = centres.shape
        n_out = coefficients.shape[1] if basis is None else basis.shape[1]
        if (
            coefficients.shape[0] != n_centres
            or y_mean.shape != (n_out,)
            or (basis is not None and basis.shape[0] != coefficients.shape[1])
        ):
            raise ValueError("kernel ridge: centres, coefficients, basis and y_mean do not agree")
        self.n_features = int(n_features)
        self.n_energies = int(n_out)
        self.n_components = 0 if basis is None else int(basis.shape[0])
        self.gamma = float(gamma)

        def tensor(a: np.ndarray, dtype: torch.dtype = torch.float32) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).to(dtype)

        self.register_buffer("x_mean", tensor(x_mean))
        self.register_buffer("x_inv_scale", tensor(x_inv_scale))
        self.register_buffer("centres", tensor(centres, _CENTRE_DTYPES[centre_dtype]))
        self.register_buffer("coefficients", tensor(coefficients))
        self.register_buffer("y_mean", tensor(y_mean))
        # unused without components: one zero row, as torch.export cannot package empty tensors
        self.register_buffer("basis", tensor(np.zeros((1, n_out)) if basis is None else basis))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = (x - self.x_mean) * self.x_inv_scale
        distances = torch.cdist(z, self.centres.to(z.dtype), p=1.0)
        out = torch.exp(distances * -self.gamma) @ self.coefficients
        if self.n_components > 0:
            out = out @ self.basis
        return out + self.y_mean


def l1_distances(a: np.ndarray, b: np.ndarray, block: int = 256) -> np.ndarray:
    """Pairwise L1 distances, float64, shape (len(a), len(b)), computed in row blocks."""
    a64 = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float64))
    b64 = torch.from_numpy(np.ascontiguousarray(b, dtype=np.float64))
    out = np.empty((a64.shape[0], b64.shape[0]))
    for start in range(0, a64.shape[0], block):
        out[start : start + block] = torch.cdist(a64[start : start + block], b64, p=1.0).numpy()
    return out


def fit_kernel_ridge(
    features: np.ndarray, spectra: np.ndarray, config: KernelConfig
) -> KernelRidge:
    """Fit the Laplacian kernel ridge model on training data.

    Args:
        features: (n_samples, n_features) descriptors.
        spectra: (n_samples, n_energies) target spectra.
        config: kernel settings.

    Returns:
        The fitted :class:`KernelRidge` (eval mode). Memory: two (n_samples, n_samples) float64
        matrices (about 170 MB for 3264 samples).
    """
    features = np.asarray(features, dtype=np.float64)
    spectra = np.asarray(spectra, dtype=np.float64)
    if features.ndim != 2 or spectra.ndim != 2 or len(features) != len(spectra):
        raise ValueError(
            f"kernel ridge: expected (n, n_features) features and (n, n_energies) spectra, "
            f"got {features.shape} and {spectra.shape}"
        )
    if len(features) < 2:
        raise ValueError("kernel ridge: needs at least 2 training samples")
    x_mean, x_inv_scale, y_mean, _ = fit_scaling(features, spectra)
    x_mean32 = x_mean.astype(np.float32)
    inv32 = x_inv_scale.astype(np.float32)
    # standardise exactly as forward() will (float32), then round to the stored dtype
    z = (features.astype(np.float32) - x_mean32) * inv32
    stored = torch.from_numpy(z).to(_CENTRE_DTYPES[config.centre_dtype]).to(torch.float64)
    centres = stored.numpy()
    distances = l1_distances(centres, centres)
    off_diagonal = distances[~np.eye(len(distances), dtype=bool)]
    median = float(np.median(off_diagonal))
    if not median > 0:
        raise ValueError("kernel ridge: all training descriptors are identical")
    gamma = 1.0 / (config.length_scale * median)
    kernel = np.exp(-gamma * distances)
    del distances
    kernel[np.diag_indices_from(kernel)] += config.ridge
    y_mean32 = y_mean.astype(np.float32).astype(np.float64)
    chol = torch.linalg.cholesky(torch.from_numpy(kernel))
    del kernel
    targets = spectra - y_mean32
    basis = None
    if config.n_components is not None:
        n_components = min(config.n_components, *targets.shape)
        # the basis as stored (float32), so the projection is the one forward() applies
        basis = np.linalg.svd(targets, full_matrices=False)[2][:n_components]
        basis = basis.astype(np.float32).astype(np.float64)
        targets = targets @ basis.T
    coefficients = torch.cholesky_solve(torch.from_numpy(targets), chol).numpy()
    return KernelRidge(
        x_mean32, inv32, centres, coefficients, y_mean, gamma, config.centre_dtype, basis
    ).eval()
