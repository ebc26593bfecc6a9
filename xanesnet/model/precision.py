"""Network precision at prediction time: float32 (the default) or bfloat16.

A model file keeps its weights as written (float32, or float16 for the shipped models) and its
forward computes in float32. With ``precision="bfloat16"`` the member networks are rebuilt,
once per loaded model, from the file's own weights: the standardised input, the weights and the
activations are bfloat16 (sums accumulate in float32 inside the matrix product), and the output
scaling is float32 again. On CPUs with AMX or AVX-512 BF16 instructions (Intel Sapphire Rapids
and later, AMD Zen 4 and later) and on CUDA GPUs the matrix products run several times faster.

What it costs: on the Fe K-edge validation split (815 sites, shipped model) the bfloat16 spectra
differ from the float32 ones by Δμ 0.03 % on average (0.07 % at most) and Δμ_avg against the
targets moves from 4.4479 % to 4.4481 %: two orders of magnitude below the model's own error.
Results are deterministic for a given machine, thread count and batch, but a row may round
differently (last bfloat16 bit) when the batch around it changes; ``xanesnet-batch`` keeps its
chunks fixed, so a resumed or Dask run still equals an uninterrupted one.

float32 members are rebuilt the same way (:class:`MemberNetwork`), with the file's own
computation bit for bit: float16-stored weights are converted once instead of at every call,
and activations run in place. ``float32_matmul="onednn"`` (opt-in, ``predict_features``) sends
their float32 matrix products through oneDNN with the activation fused, instead of torch's own
linear (MKL's sgemm in torch's x86 builds, reported slow on AMD CPUs): the spectra then differ
from the default in the last float32 bits, as they do between thread counts.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = [
    "FLOAT32_MATMULS",
    "NATIVE_BFLOAT16_FLAGS",
    "PRECISIONS",
    "MemberNetwork",
    "check_float32_matmul",
    "check_precision",
    "cpu_has_native_bfloat16",
    "native_bfloat16_from_cpuinfo",
]

#: Accepted values of ``precision``.
PRECISIONS = ("float32", "bfloat16")

#: float32 matrix paths of :class:`MemberNetwork`: "torch" (the default: torch's linear, the
#: file's own computation bit for bit) and "onednn" (oneDNN's matmul with the activation fused;
#: last-bit differences).
FLOAT32_MATMULS = ("torch", "onednn")
#: Activations oneDNN fuses into its matmul (module kind -> its post-op name).
_FUSED = {"ReLU": "relu", "SiLU": "swish", "Tanh": "tanh"}


def check_float32_matmul(matmul: Any) -> str:
    """``matmul`` if it is one of :data:`FLOAT32_MATMULS` and usable in this torch.

    Raises:
        ValueError: an unknown value, or "onednn" where this torch has no oneDNN matmul.
    """
    if matmul not in FLOAT32_MATMULS:
        raise ValueError(f"float32_matmul: expected one of {FLOAT32_MATMULS}, got {matmul!r}")
    if matmul == "onednn" and not (
        torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")
    ):
        raise ValueError(
            "float32_matmul='onednn': this torch build has no oneDNN matmul "
            "(torch.ops.mkldnn._linear_pointwise)"
        )
    return str(matmul)


def check_precision(precision: Any, name: str = "precision") -> str:
    """``precision`` if it is one of :data:`PRECISIONS`, else a ValueError naming ``name``."""
    if precision not in PRECISIONS:
        raise ValueError(f"{name}: expected one of {PRECISIONS}, got {precision!r}")
    return str(precision)


#: /proc/cpuinfo flags of bfloat16 matrix instructions: Intel AMX (Sapphire Rapids and later)
#: and AVX-512 BF16 (Intel Cooper Lake and later, AMD Zen 4 and later, which has no AMX).
NATIVE_BFLOAT16_FLAGS = frozenset({"amx_bf16", "avx512_bf16"})


def native_bfloat16_from_cpuinfo(text: str) -> bool | None:
    """Whether the first ``flags`` line of a /proc/cpuinfo text names a bfloat16 matrix
    instruction set (:data:`NATIVE_BFLOAT16_FLAGS`); None without a ``flags`` line (e.g. ARM,
    whose lines are called ``Features``)."""
    for line in text.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            return bool(flags & NATIVE_BFLOAT16_FLAGS)
    return None


@functools.cache
def cpu_has_native_bfloat16() -> bool | None:
    """Whether this CPU multiplies bfloat16 matrices in hardware (AMX-BF16 or AVX-512 BF16).

    Returns:
        True or False from ``/proc/cpuinfo`` on Linux, None where that cannot be read.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    return native_bfloat16_from_cpuinfo(text)


def _activation(child: Any) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """The function of a (scripted) activation or dropout module, applied in place where torch
    has an in-place form (same kernel, same bits, one tensor fewer); None for an unknown kind.
    The argument is always a tensor the member itself produced (a linear layer's output)."""
    kind = getattr(child, "original_name", type(child).__name__)
    if kind == "ReLU":
        return torch.relu_
    if kind == "SiLU":
        return functools.partial(nn.functional.silu, inplace=True)
    if kind == "Tanh":
        return torch.tanh_
    if kind == "GELU":
        approximate = str(getattr(child, "approximate", "none"))
        return functools.partial(nn.functional.gelu, approximate=approximate)
    if kind == "ELU":
        alpha = float(getattr(child, "alpha", 1.0))
        return functools.partial(nn.functional.elu, alpha=alpha, inplace=True)
    if kind == "Dropout":  # identity at prediction time
        return lambda h: h
    return None


@dataclass(frozen=True)
class MemberNetwork:
    """One member network of a model file, rebuilt once and evaluated outside TorchScript in
    ``dtype`` (a callable: (n_sites, n_features) float32 → (n_sites, n_energies) float32), the
    same computation as ``SpectrumMLP.forward``.

    float32: the file's own computation, bit for bit (float16-stored weights converted once
    instead of at every call; activations in place). bfloat16: the standardised input, the
    weights and the activations in bfloat16, the output scaling in float32.
    """

    dtype: torch.dtype
    x_mean: torch.Tensor  # (n_features,) float32
    x_inv_scale: torch.Tensor  # (n_features,) float32
    y_scale: torch.Tensor  # (n_energies,) float32
    y_mean: torch.Tensor  # (n_energies,) float32
    # per layer: ("linear", weight (out, in), bias (out,)) in dtype, ("onednn", weight, bias,
    # fused activation's post-op name or "none"), or ("act", function)
    steps: tuple[tuple[Any, ...], ...]
    # (n_features,) float32 bounds of the standardised input (SpectrumMLP.z_min / z_max), or
    # None: a file written before the bounds existed, or one without any finite bound
    z_min: torch.Tensor | None = None
    z_max: torch.Tensor | None = None

    @classmethod
    def from_member(
        cls,
        member: Any,
        where: str = "model",
        dtype: torch.dtype = torch.bfloat16,
        matmul: str = "torch",
    ) -> MemberNetwork:
        """Read a (scripted or eager) ``SpectrumMLP``'s buffers and layers.

        Args:
            matmul: float32 matrix path, one of :data:`FLOAT32_MATMULS`; bfloat16 members
                always use torch's linear.

        Raises:
            ValueError: a layer this class cannot evaluate (names ``where`` and the layer).
        """
        buffers = dict(member.named_buffers())
        missing = [k for k in ("x_mean", "x_inv_scale", "y_mean", "y_scale") if k not in buffers]
        if missing or not hasattr(member, "layers"):
            raise ValueError(
                f"{where}: precision={_name(dtype)!r} needs xanesnet networks; a member lacks "
                f"{missing or ['layers']}"
            )
        steps: list[tuple[Any, ...]] = []
        produced = False  # activations run in place only on a linear layer's own output
        for name, child in member.layers.named_children():
            tensors = {**dict(child.named_parameters()), **dict(child.named_buffers())}
            if "weight_q" in tensors:  # Int8StoredLinear: dequantised once, as its forward does
                scale = tensors["weight_scale"].detach().to(torch.float32)
                tensors["weight"] = tensors["weight_q"].detach().to(
                    torch.float32
                ) * scale.unsqueeze(1)
            if "weight" in tensors:
                weight = tensors["weight"].detach()
                bias = tensors.get("bias")
                bias = torch.zeros(weight.shape[0]) if bias is None else bias.detach()
                steps.append(("linear", weight.to(dtype), bias.to(weight.device, dtype)))
                produced = True
                continue
            kind = getattr(child, "original_name", type(child).__name__)
            fusable = matmul == "onednn" and dtype == torch.float32 and steps
            if fusable and steps[-1][0] == "linear" and kind in _FUSED:
                steps[-1] = ("onednn", steps[-1][1], steps[-1][2], _FUSED[kind])
                continue
            function = _activation(child)
            if function is None or not produced:
                kind = getattr(child, "original_name", type(child).__name__)
                raise ValueError(
                    f"{where}: precision={_name(dtype)!r} cannot evaluate layer {name} ({kind})"
                )
            steps.append(("act", function))
        if not produced:
            raise ValueError(f"{where}: a member network has no linear layer")
        if matmul == "onednn" and dtype == torch.float32:  # unfused layers through oneDNN too
            steps = [("onednn", s[1], s[2], "none") if s[0] == "linear" else s for s in steps]

        def f32(t: torch.Tensor) -> torch.Tensor:
            return t.detach().to(torch.float32)

        z_min, z_max = buffers.get("z_min"), buffers.get("z_max")
        bounded = (
            z_min is not None
            and z_max is not None
            and bool(torch.isfinite(z_min).any() or torch.isfinite(z_max).any())
        )
        return cls(
            dtype=dtype,
            x_mean=f32(buffers["x_mean"]),
            x_inv_scale=f32(buffers["x_inv_scale"]),
            y_scale=f32(buffers["y_scale"]),
            y_mean=f32(buffers["y_mean"]),
            steps=tuple(steps),
            z_min=f32(z_min) if bounded else None,
            z_max=f32(z_max) if bounded else None,
        )

    def same_input(self, other: MemberNetwork) -> bool:
        """Whether ``other`` standardises its input exactly as this member does (distilled and
        ensemble members share the training set's constants): one standardisation serves both."""

        def same(a: torch.Tensor | None, b: torch.Tensor | None) -> bool:
            return (a is None and b is None) or (
                a is not None and b is not None and torch.equal(a, b)
            )

        return (
            self.dtype == other.dtype
            and torch.equal(self.x_mean, other.x_mean)
            and torch.equal(self.x_inv_scale, other.x_inv_scale)
            and same(self.z_min, other.z_min)
            and same(self.z_max, other.z_max)
        )

    def standardise(self, x: torch.Tensor) -> torch.Tensor:
        """(n_sites, n_features) standardised input in ``dtype``, clamped to the training range
        where the file has one."""
        # in float32 first (features far from their mean lose nothing), then bfloat16
        z = (x - self.x_mean) * self.x_inv_scale
        if self.z_min is not None and self.z_max is not None:
            z = torch.minimum(torch.maximum(z, self.z_min), self.z_max)
        return z.to(self.dtype)

    @property
    def ends_linear(self) -> bool:
        """Whether the last layer is linear (not fused with an activation): the activations
        entering it can be handed back (:meth:`from_standardised`'s ``hidden``) unchanged."""
        return self.steps[-1][0] == "linear" or (
            self.steps[-1][0] == "onednn" and self.steps[-1][3] == "none"
        )

    def from_standardised(
        self, z: torch.Tensor, hidden: list[torch.Tensor] | None = None
    ) -> torch.Tensor:
        """(n_sites, n_energies) float32 spectra from :meth:`standardise`'s output (not
        modified: the first layer is linear and makes a new tensor). ``hidden``: a list to
        which the activations entering the output layer are appended, in ``dtype`` (float32
        members with torch's products: the values of :meth:`last_hidden`; the output layer
        makes a new tensor, so they stay as computed)."""
        if hidden is None:
            h = _apply_steps(z, self.steps)
        else:
            h = _apply_steps(z, self.steps[:-1])
            hidden.append(h)
            h = _apply_steps(h, self.steps[-1:])
        if h.dtype != torch.float32:
            h = h.to(torch.float32)
        return h.mul_(self.y_scale).add_(self.y_mean)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.from_standardised(self.standardise(x))

    def last_hidden(self, x: torch.Tensor) -> torch.Tensor:
        """(n_sites, n_hidden) float32 activations that enter the output layer, from raw
        (n_sites, n_features) float32 descriptors: the network's own representation of the
        sites (:mod:`xanesnet.model.latent` measures distances in it)."""
        h = _apply_steps(self.standardise(x), self.steps[:-1])
        return h.to(torch.float32)


def _apply_steps(h: torch.Tensor, steps: tuple[tuple[Any, ...], ...]) -> torch.Tensor:
    """The layers of :attr:`MemberNetwork.steps` applied to ``h`` in order."""
    for step in steps:
        if step[0] == "linear":
            h = nn.functional.linear(h, step[1], step[2])
        elif step[0] == "onednn":  # linear + fused activation ("none": linear alone)
            h = torch.ops.mkldnn._linear_pointwise(h, step[1], step[2], step[3], [], "")
        else:
            h = step[1](h)
    return h


def _name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")
