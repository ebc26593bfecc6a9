"""How a model file's spectra are computed outside its compiled forward: the member networks
rebuilt as :class:`~xanesnet.model.precision.MemberNetwork` (float32 bit for bit, or bfloat16)
and blended here (:class:`EagerBlend`), with the kernel ridge member in C++ where the file has
one (:class:`FastEnsemble`). :class:`xanesnet.model.runtime.XanesModel` picks the path.

Both paths can also hand back member 0's last hidden activations of each call (the latent
distance of :mod:`.latent` is measured in them), where they are exactly what a float32
:meth:`~xanesnet.model.precision.MemberNetwork.last_hidden` would compute.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from xanesnet.model.network import blend_members
from xanesnet.model.precision import MemberNetwork

__all__ = ["EagerBlend", "FastEnsemble", "rebuilt_members", "scripted_members"]


def scripted_members(module: Any) -> list[Any]:
    """The member networks of a loaded TorchScript ensemble, in order."""
    # a loaded TorchScript ModuleList cannot be iterated; its children are named 0, 1, ...
    children = dict(module.members.named_children())
    return [children[str(i)] for i in range(len(children))]


def rebuilt_members(
    module: Any, dtype: torch.dtype, where: str, fallback: bool, matmul: str = "torch"
) -> tuple[list[Any], bool]:
    """The members of a TorchScript ensemble rebuilt as :class:`MemberNetwork` in ``dtype``, and
    whether they all standardise their input alike (then once per call serves all).

    With ``fallback``, members that cannot be rebuilt are returned as the scripted modules
    (same results, slower); without it their ValueError propagates.
    """
    scripted = scripted_members(module)
    try:
        members = [MemberNetwork.from_member(m, where, dtype, matmul) for m in scripted]
    except ValueError:
        if not fallback:
            raise
        return scripted, False
    shared = all(members[0].same_input(m) for m in members[1:])
    return list(members), shared


@dataclass(frozen=True)
class EagerBlend:
    """Members of a TorchScript ensemble, blended by this package's code.

    Files written before the spread formula was made fast carry ``aten::std`` in their
    compiled forward; running their members and blending here gives every file the same speed.
    The members may also be :class:`~xanesnet.model.precision.Bfloat16Member` networks, with
    the file's own kernel ridge member (in torch) blended in.
    """

    members: list[Any]  # MemberNetwork, scripted SpectrumMLP modules, or any x -> (n_sites, n_e)
    kernel: Any = None  # the file's kernel ridge module (torch), or None
    weight: float = 0.0  # the kernel's share of the blend
    shared_input: bool = False  # MemberNetworks that all standardise alike (one standardise())

    def outputs(self, x: torch.Tensor, hidden: list[torch.Tensor] | None = None) -> torch.Tensor:
        """(n_members, n_sites, n_energies) predictions of the member networks.

        Args:
            hidden: a list to which member 0's last hidden activations (n_sites, n_hidden),
                as this path computes them (float32 or bfloat16), are appended; left as it is
                for a member that cannot hand them back (a scripted fallback, or see
                :attr:`~xanesnet.model.precision.MemberNetwork.ends_linear`).
        """
        first = self.members[0]
        keep = hidden if isinstance(first, MemberNetwork) and first.ends_linear else None
        if self.shared_input:
            z = first.standardise(x)
            outputs = [first.from_standardised(z, keep)]
            outputs += [member.from_standardised(z) for member in self.members[1:]]
            return torch.stack(outputs, dim=0)
        outputs = [first.from_standardised(first.standardise(x), keep) if keep is not None
                   else first(x)]  # fmt: skip
        outputs += [member(x) for member in self.members[1:]]
        return torch.stack(outputs, dim=0)

    def __call__(
        self, x: torch.Tensor, n_threads: int, hidden: list[torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Same as the scripted ``forward(x)`` (n_threads unused: torch's own pool;
        ``hidden`` as in :meth:`outputs`)."""
        kernel_out = None if self.kernel is None else self.kernel(x)
        return blend_members(self.outputs(x, hidden), kernel_out, self.weight)


@dataclass(frozen=True, kw_only=True)
class FastEnsemble(EagerBlend):
    """What the compiled path needs of a TorchScript ensemble, read once from its buffers:
    the members (as :class:`EagerBlend`) and the kernel ridge member's arrays."""

    x_mean: torch.Tensor  # (n_features,) float32
    x_inv_scale: torch.Tensor  # (n_features,) float32
    centres: np.ndarray  # (n_centres, n_features) float32, C-contiguous (float16 files upcast)
    coefficients: np.ndarray  # (n_centres, n_outputs) float32, C-contiguous
    y_mean: np.ndarray  # (n_energies,) float32
    basis: torch.Tensor | None  # (n_components, n_energies) float32, or None: outputs = energies
    gamma: float

    @classmethod
    def from_module(cls, module: Any, matmul: str = "torch") -> FastEnsemble:
        kernel = module.kernel
        members, shared = rebuilt_members(module, torch.float32, "model", True, matmul)

        def array(t: torch.Tensor) -> np.ndarray:
            return np.ascontiguousarray(t.detach().cpu().to(torch.float32).numpy())

        n_components = int(getattr(kernel, "n_components", 0))
        return cls(
            members=members,
            shared_input=shared,
            x_mean=kernel.x_mean.detach().cpu().to(torch.float32),
            x_inv_scale=kernel.x_inv_scale.detach().cpu().to(torch.float32),
            centres=array(kernel.centres),
            coefficients=array(kernel.coefficients),
            y_mean=array(kernel.y_mean),
            basis=kernel.basis.detach().cpu().to(torch.float32) if n_components else None,
            gamma=float(kernel.gamma),
            weight=float(module.kernel_weight),
        )

    def __call__(
        self, x: torch.Tensor, n_threads: int, hidden: list[torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Same as the scripted ``forward(x)``, with the kernel part in C++ (``hidden`` as in
        :meth:`EagerBlend.outputs`)."""
        from xanesnet import _core

        outputs = self.outputs(x, hidden)
        z = ((x - self.x_mean) * self.x_inv_scale).numpy()
        if self.basis is None:
            kernel_out = torch.from_numpy(
                _core.laplacian_predict(
                    z, self.centres, self.gamma, self.coefficients, self.y_mean, n_threads
                )
            )
        else:
            # components first (no offset), then the same basis product and offset as forward()
            no_offset = np.zeros(self.coefficients.shape[1], dtype=np.float32)
            components = _core.laplacian_predict(
                z, self.centres, self.gamma, self.coefficients, no_offset, n_threads
            )
            kernel_out = torch.from_numpy(components) @ self.basis + torch.from_numpy(self.y_mean)
        return blend_members(outputs, kernel_out, self.weight)
