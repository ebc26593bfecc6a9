"""The spectrum network: standardise descriptors → MLP → spectrum, and ensembles of it.

Input standardisation and output scaling live inside the modules as buffers, so a saved model
maps raw descriptors to spectra on its energy grid with nothing outside it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = [
    "HalfStoredLinear",
    "Int8StoredLinear",
    "NetworkConfig",
    "SpectrumEnsemble",
    "SpectrumMLP",
    "blend_members",
    "fit_scaling",
    "set_input_bounds",
    "standardised_range",
    "store_weights_as_float16",
    "store_weights_as_int8",
]

_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "silu": nn.SiLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "elu": nn.ELU,
}


@dataclass(frozen=True)
class NetworkConfig:
    """Architecture of one MLP.

    Attributes:
        hidden: widths of the hidden layers, e.g. (512, 512).
        activation: one of "relu", "silu", "gelu", "tanh", "elu".
        dropout: dropout probability after each hidden activation (training only).
    """

    hidden: tuple[int, ...] = (512, 512)
    activation: str = "relu"
    dropout: float = 0.1

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        if not self.hidden or any(h < 1 for h in self.hidden):
            raise ValueError(f"hidden: expected positive layer widths, got {self.hidden!r}")
        if self.activation not in _ACTIVATIONS:
            raise ValueError(
                f"activation: expected one of {sorted(_ACTIVATIONS)}, got {self.activation!r}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout: expected a probability in [0, 1), got {self.dropout!r}")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["hidden"] = list(self.hidden)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NetworkConfig:
        return cls(**data)


def fit_scaling(
    features: np.ndarray, spectra: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Standardisation constants from training data.

    Features with (near) zero variance are dropped by giving them an inverse scale of 0.

    Args:
        features: (n_samples, n_features) descriptors.
        spectra: (n_samples, n_energies) target spectra.

    Returns:
        x_mean (n_features,), x_inv_scale (n_features,), y_mean (n_energies,),
        y_scale (n_energies,), all float64.
    """
    x_mean = features.mean(axis=0)
    x_std = features.std(axis=0)
    varying = x_std > 1e-12 * np.maximum(np.abs(x_mean), 1.0)
    x_inv_scale = np.where(varying, 1.0 / np.where(varying, x_std, 1.0), 0.0)
    y_mean = spectra.mean(axis=0)
    y_scale = spectra.std(axis=0)
    y_scale = np.where(y_scale > 0, y_scale, 1.0)
    return x_mean, x_inv_scale, y_mean, y_scale


def standardised_range(
    features: np.ndarray, x_mean: np.ndarray, x_inv_scale: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature minimum and maximum of the standardised training descriptors.

    Computed with the same float32 operations as :meth:`SpectrumMLP.normalised`, so that
    clamping to them leaves every training row unchanged, bit for bit.

    Args:
        features: (n_samples, n_features) training descriptors.
        x_mean, x_inv_scale: (n_features,) standardisation constants of the network.

    Returns:
        z_min, z_max: (n_features,) float32, in standardised units.
    """
    x = torch.as_tensor(np.asarray(features), dtype=torch.float32)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(
            f"features: expected a non-empty (n_samples, n_features) array, got {tuple(x.shape)}"
        )
    mean = torch.as_tensor(np.asarray(x_mean), dtype=torch.float32)
    inv = torch.as_tensor(np.asarray(x_inv_scale), dtype=torch.float32)
    z = (x - mean) * inv
    return z.min(dim=0).values.numpy(), z.max(dim=0).values.numpy()


class SpectrumMLP(nn.Module):
    """One network: ``spectrum = MLP(clamp((x − x_mean) · x_inv_scale)) · y_scale + y_mean``.

    The standardised input is clamped to ``[z_min, z_max]``, the range of the standardised
    training descriptors (no bound by default: ±inf). A descriptor beyond what the network was
    trained on is then read as the nearest training value, instead of being extrapolated along
    a feature whose training spread may be tiny (narrow Gaussians in sparse element channels:
    the Cu K-edge model saw standardised inputs of 14,000, and spectra 10× too high, before
    this; ``docs/model.md``). Training rows are unchanged by construction.

    Input (n_sites, n_features) float32 descriptors; output (n_sites, n_energies) spectra.
    """

    def __init__(
        self,
        n_features: int,
        n_energies: int,
        config: NetworkConfig,
        x_mean: np.ndarray | None = None,
        x_inv_scale: np.ndarray | None = None,
        y_mean: np.ndarray | None = None,
        y_scale: np.ndarray | None = None,
        z_min: np.ndarray | None = None,
        z_max: np.ndarray | None = None,
    ) -> None:
        super().__init__()
        self.n_features = n_features
        self.n_energies = n_energies

        def buffer(values: np.ndarray | None, n: int, fill: float) -> torch.Tensor:
            if values is None:
                return torch.full((n,), fill, dtype=torch.float32)
            values = np.asarray(values, dtype=np.float32).reshape(-1)
            if values.shape != (n,):
                raise ValueError(f"scaling constants: expected {n} values, got {values.shape}")
            return torch.from_numpy(values.copy())

        self.register_buffer("x_mean", buffer(x_mean, n_features, 0.0))
        self.register_buffer("x_inv_scale", buffer(x_inv_scale, n_features, 1.0))
        self.register_buffer("y_mean", buffer(y_mean, n_energies, 0.0))
        self.register_buffer("y_scale", buffer(y_scale, n_energies, 1.0))
        self.register_buffer("z_min", buffer(z_min, n_features, -math.inf))
        self.register_buffer("z_max", buffer(z_max, n_features, math.inf))
        layers: list[nn.Module] = []
        width_in = n_features
        for width in config.hidden:
            linear = nn.Linear(width_in, width)
            layers += [linear, _ACTIVATIONS[config.activation]()]
            if config.dropout > 0:
                layers.append(nn.Dropout(config.dropout))
            width_in = width
        layers.append(nn.Linear(width_in, n_energies))
        self.layers = nn.Sequential(*layers)

    def normalised(self, x: torch.Tensor) -> torch.Tensor:
        """Network output in standardised spectrum units (what the loss is computed on)."""
        z = (x - self.x_mean) * self.x_inv_scale
        return self.layers(torch.minimum(torch.maximum(z, self.z_min), self.z_max))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.normalised(x) * self.y_scale + self.y_mean


class HalfStoredLinear(nn.Module):
    """A linear layer whose weights are stored as float16 and applied in the input's dtype.

    Halves a model file; the computation itself stays float32. Made from a trained
    ``nn.Linear`` by :func:`store_weights_as_float16` (inference only: nothing to train).
    """

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.register_buffer("weight", linear.weight.detach().to(torch.float16).clone())
        bias = linear.bias if linear.bias is not None else torch.zeros(linear.out_features)
        self.register_buffer("bias", bias.detach().to(torch.float16).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x, self.weight.to(x.dtype), self.bias.to(x.dtype))


class Int8StoredLinear(nn.Module):
    """A linear layer stored as int8 weights with one float32 scale per output row.

    ``weight = weight_q · weight_scale[:, None]``, with ``weight_scale`` = the row's largest
    |weight| / 127, so each weight is kept to within half a step (1/254 of its row's largest);
    a quarter of the float32 size, half of float16's. The computation stays in the input's
    dtype. Made from a trained layer by :func:`store_weights_as_int8` (inference only).
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
        super().__init__()
        w = weight.detach().to(torch.float32)
        scale = w.abs().amax(dim=1) / 127.0
        scale = torch.where(scale > 0, scale, torch.ones_like(scale))
        quantised = torch.round(w / scale.unsqueeze(1)).clamp_(-127, 127).to(torch.int8)
        self.register_buffer("weight_q", quantised)
        self.register_buffer("weight_scale", scale)
        bias = torch.zeros(w.shape[0]) if bias is None else bias.detach()
        self.register_buffer("bias", bias.to(torch.float32).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.weight_q.to(x.dtype) * self.weight_scale.to(x.dtype).unsqueeze(1)
        return nn.functional.linear(x, weight, self.bias.to(x.dtype))


def store_weights_as_int8(ensemble: SpectrumEnsemble) -> SpectrumEnsemble:
    """A copy of ``ensemble`` whose networks keep their weights as int8, one scale per row.

    From float32 or float16-stored (:class:`HalfStoredLinear`) weights. Rounding to 255
    levels per row changes predictions more than float16 does: measure a model after this
    step. Scaling buffers and the kernel member are unchanged.
    """
    import copy

    compact = copy.deepcopy(ensemble)
    for member in compact.members:
        layers = member.layers
        for i, layer in enumerate(layers):
            if isinstance(layer, (nn.Linear, HalfStoredLinear)):
                layers[i] = Int8StoredLinear(layer.weight, layer.bias)
    return compact.eval()


def store_weights_as_float16(ensemble: SpectrumEnsemble) -> SpectrumEnsemble:
    """A copy of ``ensemble`` whose networks keep their weights as float16 (half the size).

    The rounding changes predictions slightly (relative ~1e-3 of the weights), so measure a
    model after this step, as ``xanesnet train`` does. Scaling buffers and the kernel member
    are unchanged.
    """
    import copy

    compact = copy.deepcopy(ensemble)
    for member in compact.members:
        layers = member.layers
        for i, layer in enumerate(layers):
            if isinstance(layer, nn.Linear):
                layers[i] = HalfStoredLinear(layer)
    return compact.eval()


def set_input_bounds(ensemble: SpectrumEnsemble, features: np.ndarray) -> SpectrumEnsemble:
    """Clamp every member's standardised input to the range of ``features`` (in place).

    Args:
        ensemble: the networks (their standardisation constants are kept).
        features: (n_samples, n_features) the descriptors the networks were trained on.

    Returns:
        ``ensemble``, whose members now have ``z_min``/``z_max`` set.
    """
    for member in ensemble.members:
        z_min, z_max = standardised_range(
            features, member.x_mean.cpu().numpy(), member.x_inv_scale.cpu().numpy()
        )
        member.z_min.copy_(torch.from_numpy(z_min))
        member.z_max.copy_(torch.from_numpy(z_max))
    return ensemble


def _mean_square(outputs: torch.Tensor, centre: torch.Tensor) -> torch.Tensor:
    """mean_i (outputs[i] − centre)², summed in member order (see :func:`blend_members`)."""
    d = outputs[0] - centre
    total = d * d
    for i in range(1, outputs.shape[0]):
        d = outputs[i] - centre
        total = total + d * d
    return total / outputs.shape[0]


def blend_members(
    outputs: torch.Tensor, kernel_out: torch.Tensor | None, weight: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Ensemble mean and spread from the members' predictions (the one place of the formula).

    Called by :meth:`SpectrumEnsemble.forward` (so it is compiled into TorchScript and
    ``torch.export`` files) and by the compiled fast path of
    :meth:`xanesnet.model.runtime.XanesModel.predict_features`.

    Args:
        outputs: (n_members, n_sites, n_energies) network predictions.
        kernel_out: (n_sites, n_energies) kernel ridge prediction, or None.
        weight: the kernel's share w of the blend (ignored without a kernel).

    Returns:
        mean, spread (n_sites, n_energies). Without a kernel: the networks' average and standard
        deviation (zeros for one network). With one: ``(1 − w) · mean(networks) + w · kernel``
        and the weighted standard deviation of that mixture,
        ``sqrt((1 − w) · mean_i (net_i − blend)² + w · (kernel − blend)²)``.
    """
    # Sums over the few members are written as elementwise additions in member order: the
    # reduction kernels (aten::std, mean over dim 0) are slow on such a short axis (~50x for
    # std) and were seen to round differently from one call to the next.
    n_members = outputs.shape[0]
    total = outputs[0]
    for i in range(1, n_members):
        total = total + outputs[i]
    mean = total / n_members
    if kernel_out is None:
        if n_members > 1:
            spread = (_mean_square(outputs, mean)).sqrt()
        else:
            spread = torch.zeros_like(mean)
        return mean, spread
    blend = (1.0 - weight) * mean + weight * kernel_out
    networks_sq = _mean_square(outputs, blend)
    variance = (1.0 - weight) * networks_sq + weight * (kernel_out - blend) ** 2
    return blend, variance.sqrt()


class SpectrumEnsemble(nn.Module):
    """Networks averaged, optionally blended with a kernel ridge model.

    forward(x (n, n_features)) returns (mean (n, n_e), spread (n, n_e)). Without a kernel the
    mean is the networks' average and the spread their standard deviation (zeros for a single
    network). With a kernel model of weight w the prediction is the weighted mixture
    ``(1 − w) · mean(networks) + w · kernel``, each network carrying weight (1 − w) / n, and
    the spread is the weighted standard deviation of that mixture, so it also grows where the
    two model families disagree.
    """

    def __init__(
        self,
        members: Sequence[SpectrumMLP],
        kernel: nn.Module | None = None,
        kernel_weight: float = 0.0,
    ) -> None:
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one network")
        if kernel is None:
            kernel_weight = 0.0
        if not 0.0 <= kernel_weight < 1.0:
            raise ValueError(f"kernel_weight: expected a value in [0, 1), got {kernel_weight!r}")
        self.members = nn.ModuleList(members)
        self.n_members = len(members)
        self.kernel = kernel
        self.kernel_weight = float(kernel_weight)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        outputs = torch.stack([member(x) for member in self.members], dim=0)
        kernel = self.kernel
        kernel_out = None if kernel is None else kernel(x)
        return blend_members(outputs, kernel_out, self.kernel_weight)
