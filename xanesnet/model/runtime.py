"""The runtime model: a loaded model file's networks, descriptor and energy grid, and how its
spectra are computed (TorchScript forward, members blended here, the compiled kernel ridge path,
bfloat16 networks).

Model files themselves (format, metadata, checksums) are :mod:`xanesnet.model.files`.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from xanesnet.config import env_setting
from xanesnet.descriptors.wacsf import WACSF
from xanesnet.model.blend_paths import (
    EagerBlend,
    FastEnsemble,
    rebuilt_members,
    scripted_members,
)
from xanesnet.model.precision import (
    check_float32_matmul,
    check_precision,
    cpu_has_native_bfloat16,
)
from xanesnet.model.trust import SiteTrust, TrustModel

__all__ = ["KERNEL_BACKENDS", "KERNEL_BACKEND_ENV", "Prediction", "XanesModel"]


#: How the kernel ridge member of a blended model is evaluated by ``predict_features``: "cpp" is
#: the compiled ``_core.laplacian_predict`` (TorchScript files on the CPU), "torch" the module's
#: own forward (any file, any device). The environment variable ``XANESNET_KERNEL_BACKEND``
#: picks one when the caller does not; by default "cpp" is used wherever it applies.
KERNEL_BACKENDS = ("cpp", "torch")
KERNEL_BACKEND_ENV = "XANESNET_KERNEL_BACKEND"


def _joined(pieces: list[np.ndarray], n_energies: int) -> np.ndarray:
    """(n_sites, n_energies) float64 from float32 pieces (one copy when there is one piece)."""
    if not pieces:
        return np.empty((0, n_energies))
    whole = pieces[0] if len(pieces) == 1 else np.concatenate(pieces)
    return whole.astype(np.float64)


def _compiled_kernel_available() -> bool:
    try:
        from xanesnet import _core
    except ImportError:
        return False
    return hasattr(_core, "laplacian_predict")


@dataclass(frozen=True)
class Prediction:
    """Spectra a model predicted for a set of sites, in memory (a batch output read back from
    disk is :class:`xanesnet.store.StoredPredictions`).

    Attributes:
        energies: (n_energies,) absolute energies, eV.
        spectra: (n_sites, n_energies) predicted μ (ensemble mean; not clipped at 0: see
            ``unphysical``).
        spread: (n_sites, n_energies) ensemble standard deviation, or None for one network.
        index: (n_sites, 2) int64 (structure position in the input, atom index).
        sigma: (n_sites, n_energies) calibrated standard uncertainty of μ (a Gaussian
            reading: ±1σ holds ~68 % of held-out errors); NaN for a model file without an
            uncertainty calibration.
        predicted_delta_mu: (n_sites,) expected Δμ of each spectrum (%, the L1 error of
            ``shared/spec/metrics.md``); NaN without a calibration.
        domain_score: (n_sites,) out-of-domain score (≈ 1 for sites like the training set's,
            larger further away); NaN for a model file without a domain entry.
        outside_domain: (n_sites,) bool, score above the model's threshold: the spectrum is
            an extrapolation, whatever its σ says (False without a domain entry).
        unphysical: (n_sites,) bool, μ < 0 somewhere, or the spectrum leaves the range of
            the training spectra (that part with a calibration only).

    The trust fields default to NaN / False (a Prediction built by hand).
    """

    energies: np.ndarray
    spectra: np.ndarray
    spread: np.ndarray | None
    index: np.ndarray
    sigma: np.ndarray | None = None
    predicted_delta_mu: np.ndarray | None = None
    domain_score: np.ndarray | None = None
    outside_domain: np.ndarray | None = None
    unphysical: np.ndarray | None = None

    def __post_init__(self) -> None:
        unknown = SiteTrust.unknown(*np.shape(self.spectra))
        for name in ("sigma", "predicted_delta_mu", "domain_score", "outside_domain", "unphysical"):
            if getattr(self, name) is None:
                object.__setattr__(self, name, getattr(unknown, name))

    def to_pymatgen(self, structures: Any, edge: str = "K") -> list[Any]:
        """One pymatgen ``XAS`` per site (:func:`xanesnet.io.pymatgen.xas_of_sites`)."""
        from xanesnet.io.pymatgen import xas_of_sites

        return xas_of_sites(self, structures, edge=edge)


class XanesModel:
    """A loaded model file: descriptor + networks + energy grid.

    Use :func:`xanesnet.model.files.load_model` to create one.
    """

    def __init__(self, module: Any, metadata: dict[str, Any], path: Path) -> None:
        self.module = module
        self.metadata = metadata
        self.path = path
        self.descriptor = WACSF.from_dict(metadata["descriptor"])
        self.energies = np.asarray(metadata["energies"], dtype=np.float64)
        self.e0 = float(metadata["e0"])
        self.element = str(metadata["element"])
        self.edge = str(metadata["edge"])
        self.n_members = int(metadata["n_members"])
        self.kernel = metadata.get("kernel")
        #: the file's uncertainty calibration, domain and latent-distance entries
        self.trust_model = TrustModel.from_metadata(
            metadata,
            self.descriptor.n_features,
            len(self.energies),
            path,
            scripted_members(module) if hasattr(module, "members") else None,
        )
        self.device = "cpu"
        # read from the module on first use (see _blend_path)
        self._fast: FastEnsemble | EagerBlend | None = None
        self._fast_matmul = "torch"  # the float32 matrix path _fast was built with
        # (kernel backend, path) of precision="bfloat16", built on first use
        self._bfloat16: tuple[str | None, EagerBlend] | None = None
        self._warmed: set[str] = set()  # precisions whose first call has been made

    @property
    def has_spread(self) -> bool:
        """Whether predictions come with a meaningful spread (several members or a blend)."""
        return self.n_members > 1 or self.kernel is not None

    @property
    def label(self) -> str:
        """How messages name the model, e.g. "the Fe K-edge model Fe_K_edge.pt"."""
        return f"the {self.element} {self.edge}-edge model {self.path.name}"

    def trust(
        self,
        features: np.ndarray,
        spectra: np.ndarray,
        spread: np.ndarray | None,
        *,
        sigma: bool = True,
        distance: np.ndarray | None = None,
    ) -> SiteTrust:
        """Calibrated σ, predicted Δμ, out-of-domain score and flags of predicted sites:
        :meth:`xanesnet.model.trust.TrustModel.assess` of this file's entries, on the
        ``features`` given to :meth:`predict_features` and what it returned (the spread is
        ignored for a model without one, see :attr:`has_spread`); NaN / False where the file
        lacks the calibration or domain entry. ``distance``: the sites' latent distances, if
        known (see :meth:`predict_with_trust`)."""
        spread = spread if self.has_spread else None
        return self.trust_model.assess(features, spectra, spread, sigma=sigma, distance=distance)

    def to(self, device: str) -> XanesModel:
        """Run the network on ``device`` ("cpu" or "cuda"); descriptors stay on the CPU."""
        if device not in ("cpu", "cuda") and not str(device).startswith("cuda:"):
            raise ValueError(f"device: expected 'cpu' or 'cuda', got {device!r}")
        if str(device).startswith("cuda") and not torch.cuda.is_available():
            raise ValueError(f"device: {device!r} requested but torch sees no CUDA device")
        self.module = self.module.to(device)
        self.device = str(device)
        self._fast = None
        self._bfloat16 = None
        self._warmed = set()
        return self

    def _compiled_kernel_unusable(self) -> str | None:
        """Why the compiled kernel path does not apply to this model (None: it does)."""
        module = self.module
        if not isinstance(module, torch.jit.ScriptModule):
            return "the model is not TorchScript"
        if not (hasattr(module, "members") and hasattr(module, "kernel")):
            return "the model is not a xanesnet ensemble"
        if module.kernel is None:
            return "the model has no kernel ridge member"
        kind = (self.kernel or {}).get("kind", "laplacian")
        if kind != "laplacian":
            return f"the compiled kernel is Laplacian, the model's is {kind!r}"
        if self.device != "cpu":
            return f"the model runs on {self.device!r}, the compiled kernel on the CPU"
        if not _compiled_kernel_available():
            return "the compiled core (xanesnet._core.laplacian_predict) is not importable"
        return None

    def resolve_kernel_backend(self, requested: str | None = None) -> str | None:
        """How ``predict_features`` evaluates the kernel ridge member: "cpp" or "torch".

        Args:
            requested: "cpp", "torch", or None for ``$XANESNET_KERNEL_BACKEND`` if set, else
                "cpp" where it applies (TorchScript file, CPU, compiled core) and "torch"
                elsewhere.

        Returns:
            The backend, or None for a model without a kernel member.

        Raises:
            ValueError: unknown backend, or "cpp" requested where it does not apply.
        """
        if self.kernel is None:
            return None
        source = "kernel_backend"
        if requested is None:
            requested = env_setting(KERNEL_BACKEND_ENV)
            source = KERNEL_BACKEND_ENV
        if requested is not None and requested not in KERNEL_BACKENDS:
            raise ValueError(f"{source}: expected one of {KERNEL_BACKENDS}, got {requested!r}")
        if requested == "torch":
            return "torch"
        reason = self._compiled_kernel_unusable()
        if reason is None:
            return "cpp"
        if requested == "cpp":
            raise ValueError(f"{source}='cpp' is not available: {reason}")
        return "torch"

    def _blend_path(
        self, kernel_backend: str | None, matmul: str = "torch"
    ) -> FastEnsemble | EagerBlend | None:
        """The members + blend evaluated outside the file's compiled forward, where that is
        faster (compiled kernel ridge; networks without a kernel, rebuilt as float32
        :class:`MemberNetwork`, bit-identical to the file's forward with ``matmul="torch"``),
        else None."""
        wanted = FastEnsemble if kernel_backend == "cpp" else None
        if (
            wanted is None
            and self.kernel is None
            and isinstance(self.module, torch.jit.ScriptModule)
            and hasattr(self.module, "members")
        ):
            wanted = EagerBlend
        if wanted is None:
            return None
        if type(self._fast) is not wanted or self._fast_matmul != matmul:
            if wanted is FastEnsemble:
                self._fast = FastEnsemble.from_module(self.module, matmul)
            else:
                members, shared = rebuilt_members(
                    self.module, torch.float32, str(self.path), True, matmul
                )
                self._fast = EagerBlend(members, shared_input=shared)
            self._fast_matmul = matmul
        return self._fast

    def _bfloat16_path(self, kernel_backend: str | None) -> EagerBlend:
        """The members rebuilt in bfloat16 (see :mod:`xanesnet.model.precision`), blended with
        the kernel ridge member (compiled or torch, as ``kernel_backend`` says)."""
        if self._bfloat16 is not None and self._bfloat16[0] == kernel_backend:
            return self._bfloat16[1]
        module = self.module
        if not (isinstance(module, torch.jit.ScriptModule) and hasattr(module, "members")):
            raise ValueError(
                f"precision='bfloat16' needs a TorchScript xanesnet model file (.pt); "
                f"{self.path} is not one"
            )
        if self.device == "cpu" and cpu_has_native_bfloat16() is False:
            warnings.warn(
                "precision='bfloat16': this CPU has no bfloat16 matrix instructions "
                "(AMX-BF16 or AVX-512 BF16), so the networks run emulated and slower than "
                "float32",
                RuntimeWarning,
                stacklevel=3,
            )
        members, shared = rebuilt_members(module, torch.bfloat16, str(self.path), fallback=False)
        path: EagerBlend
        if kernel_backend == "cpp":  # the float32 path's kernel arrays, shared, not read again
            path = dataclasses.replace(
                self._blend_path("cpp"), members=members, shared_input=shared
            )
        elif kernel_backend == "torch":
            path = EagerBlend(members, module.kernel, float(module.kernel_weight), shared)
        else:
            path = EagerBlend(members, shared_input=shared)
        self._bfloat16 = (kernel_backend, path)
        return path

    def __repr__(self) -> str:
        return (
            f"XanesModel({self.element} {self.edge}-edge, {self.n_members} member(s)"
            f"{' + kernel ridge' if self.kernel else ''}, "
            f"{self.descriptor.n_features} features -> {len(self.energies)} energies, {self.path})"
        )

    def predict_features(
        self,
        features: np.ndarray,
        *,
        batch_size: int = 65536,
        n_threads: int = 0,
        kernel_backend: str | None = None,
        precision: str = "float32",
        float32_matmul: str = "torch",
    ) -> tuple[np.ndarray, np.ndarray]:
        """Spectra from descriptors.

        Args:
            features: (n_sites, n_features) descriptors of this model's configuration.
            batch_size: rows per forward pass.
            n_threads: threads of the compiled kernel ridge path; 0 = all cores (or
                ``OMP_NUM_THREADS``). The networks run on torch's own thread pool.
            kernel_backend: "cpp", "torch" or None (see :meth:`resolve_kernel_backend`).
            precision: "float32" (the file's own computation) or "bfloat16" (the networks in
                bfloat16: several times faster on CPUs with AMX / AVX-512 BF16 and on GPUs,
                spectra within ~0.03 % Δμ of float32; see :mod:`xanesnet.model.precision`).
            float32_matmul: float32 matrix products by "torch" (the default, the file's own
                computation bit for bit) or "onednn" (oneDNN with the activation fused; last-bit
                differences; measure it with ``benchmarks/bench_stages.py`` where torch's MKL
                path is slow, e.g. AMD CPUs). Applies to networks this method rebuilds.

        Returns:
            mean (n_sites, n_energies) float64 and spread (n_sites, n_energies) float64.
        """
        mean, spread, _ = self._predict(
            features, batch_size, n_threads, kernel_backend, precision, float32_matmul, False
        )
        return mean, spread

    def predict_with_trust(
        self,
        features: np.ndarray,
        *,
        n_threads: int = 0,
        precision: str = "float32",
        sigma: bool = True,
        batch_size: int = 65536,
        kernel_backend: str | None = None,
        float32_matmul: str = "torch",
    ) -> tuple[np.ndarray, np.ndarray, SiteTrust]:
        """:meth:`predict_features` and :meth:`trust` in one call (arguments as theirs).

        The same values as the two calls one after the other; faster for a model whose
        predicted Δμ needs the latent distance, which is then measured in the activations
        of the networks' own call (not computed again; with ``precision="bfloat16"`` they
        are the bfloat16 ones, so the predicted Δμ moves with the spectra's precision).

        Returns:
            mean, spread (n_sites, n_energies) float64 and the :class:`SiteTrust`.
        """
        mean, spread, distance = self._predict(
            features, batch_size, n_threads, kernel_backend, precision, float32_matmul,
            self.trust_model.needs_latent_distance,
        )  # fmt: skip
        return mean, spread, self.trust(features, mean, spread, sigma=sigma, distance=distance)

    def _predict(
        self,
        features: np.ndarray,
        batch_size: int,
        n_threads: int,
        kernel_backend: str | None,
        precision: str,
        float32_matmul: str,
        latent: bool,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """:meth:`predict_features`, and with ``latent`` the latent distances from member 0's
        activations where the path hands them back exactly (else None)."""
        features = np.asarray(features)
        if features.ndim != 2 or features.shape[1] != self.descriptor.n_features:
            raise ValueError(
                f"features: expected shape (n_sites, {self.descriptor.n_features}), "
                f"got {features.shape}"
            )
        if not isinstance(n_threads, (int, np.integer)) or n_threads < 0:
            raise ValueError(
                f"n_threads: expected an integer >= 0 (0 = all cores), got {n_threads!r}"
            )
        check_precision(precision)
        check_float32_matmul(float32_matmul)
        kernel_backend = self.resolve_kernel_backend(kernel_backend)
        fast = (
            self._bfloat16_path(kernel_backend)
            if precision == "bfloat16"
            else self._blend_path(kernel_backend, float32_matmul)
        )

        def forward(
            x: torch.Tensor, hidden: list[torch.Tensor] | None = None
        ) -> tuple[torch.Tensor, torch.Tensor]:
            x = x.to(self.device)
            return fast(x, int(n_threads), hidden) if fast is not None else self.module(x)

        latent_entry = self.trust_model.latent
        hidden: list[torch.Tensor] | None = [] if latent and latent_entry is not None else None
        means, spreads, distances = [], [], []
        with torch.inference_mode():
            warm_key = precision if float32_matmul == "torch" else f"{precision}/{float32_matmul}"
            if warm_key not in self._warmed:
                # The first network call of a process was seen to round a few outputs
                # differently (last bit) from every later call with the same input; one
                # throw-away call makes predictions reproducible run to run (a resumed batch
                # equals an uninterrupted one).
                forward(torch.zeros(2, self.descriptor.n_features))
                self._warmed.add(warm_key)
            for start in range(0, max(len(features), 1), batch_size):
                chunk = torch.as_tensor(features[start : start + batch_size], dtype=torch.float32)
                if chunk.shape[0] == 0:
                    break
                mean, spread = forward(chunk, hidden)
                means.append(mean.cpu().numpy())
                spreads.append(spread.cpu().numpy())
                if hidden:  # this path hands the activations back: measure them now
                    distances.append(latent_entry.distance(hidden.pop().float().cpu()))
                else:  # it does not (another precision or path): the trust step computes them
                    hidden = None
        distance = np.concatenate(distances) if hidden is not None and distances else None
        return (
            _joined(means, len(self.energies)),
            _joined(spreads, len(self.energies)),
            distance,
        )

    def predict(
        self,
        structures: Any,
        absorber: int | str | Sequence[Sequence[int]] | None = None,
        *,
        backend: str | None = None,
        n_threads: int = 0,
        precision: str = "float32",
    ) -> Prediction:
        """Spectra of the absorbing sites of structures, using the model's own descriptor.

        Args:
            structures: one ``ase.Atoms`` (or pymatgen Structure/Molecule) or an iterable.
            absorber: None (default: every site of the model's element), that element's
                symbol, an atom index in every structure, or one index list per structure.
                Sites must be atoms of the model's element.
            backend, n_threads: descriptor backend and threads (see ``WACSF.compute``); the
                threads also serve the kernel ridge member (see :meth:`predict_features`).
            precision: "float32" or "bfloat16" for the networks (see
                :meth:`predict_features`).

        Returns:
            :class:`Prediction` with its trust fields. Structures without a site of the
            model's element give no rows (``index`` names each row's structure).

        Raises:
            ValueError: another element than the model's, an index selecting an atom of
                another element (naming the structure, site and model), no site of the
                element in any structure, or invalid structures.
        """
        from xanesnet.descriptors.absorbers import resolve_absorber, structures_with_sites
        from xanesnet.io.pymatgen import as_atoms_list

        check_precision(precision)
        absorber = resolve_absorber(absorber, self.element, self.label)
        atoms = as_atoms_list(structures)
        kept = structures_with_sites(atoms, absorber, self.element, self.label)
        n_given = len(atoms)
        if len(kept) < n_given:
            atoms = [atoms[s] for s in kept.tolist()]
        features, index = self.descriptor.compute(
            atoms, absorber, backend=backend, n_threads=n_threads
        )
        if len(kept) < n_given:  # rows name the structures as given
            index = np.stack([kept[index[:, 0]], index[:, 1]], axis=1)
        mean, spread, trust = self.predict_with_trust(
            features, n_threads=n_threads, precision=precision
        )
        return Prediction(
            energies=self.energies.copy(),
            spectra=mean,
            spread=spread if self.has_spread else None,
            index=index,
            sigma=trust.sigma,
            predicted_delta_mu=trust.predicted_delta_mu,
            domain_score=trust.domain_score,
            outside_domain=trust.outside_domain,
            unphysical=trust.unphysical,
        )
