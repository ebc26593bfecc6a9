"""wACSF descriptor configuration.

One frozen configuration object describes the descriptor completely. It is used by the C++
backend, the Numba backend (both take :meth:`WACSF.kernel_params`) and, serialised to JSON, by
saved models, so a model file knows its own descriptor. The computation itself lives in
:mod:`xanesnet.descriptors.dispatch`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from xanesnet.descriptors.limits import search_limits

__all__ = ["WACSF"]

Parameterisation = Literal["shifted", "centred"]
RjkCutoff = Literal["zero", "raw"]

_SCHEMA = "xanesnet.wacsf/1"


def _radial_grid(kind: str, r_min: float, r_max: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(eta, mu) of ``n`` Gaussians, in Å⁻² and Å, for a parameterisation name."""
    if kind == "shifted":
        mu = np.linspace(r_min + 0.5, r_max - 0.5, n)
        spacing = mu[1] - mu[0] if n > 1 else (r_max - r_min - 1.0) or 1.0
        eta = np.full(n, 1.0 / (2.0 * spacing**2))
        return eta, mu
    if kind == "centred":
        rho = np.linspace(r_min + 1.0, r_max - 0.5, n)
        return 1.0 / (2.0 * rho**2), np.zeros(n)
    raise ValueError(f"parameterisation: expected 'shifted' or 'centred', got {kind!r}")


def _group_weights(groups: tuple[str, ...]) -> np.ndarray:
    """(len(groups), 119) indicator weights of element groups; see WACSF.g2_element_groups."""
    from ase.data import atomic_numbers

    weights = np.zeros((len(groups), 119))
    claimed = np.zeros(119, dtype=bool)
    other = []
    for g, group in enumerate(groups):
        if group.strip() == "other":
            other.append(g)
            continue
        symbols = [s.strip() for s in group.split(",") if s.strip()]
        if not symbols:
            raise ValueError(f"g2_element_groups: empty group {group!r}")
        for symbol in symbols:
            if symbol not in atomic_numbers or atomic_numbers[symbol] == 0:
                raise ValueError(
                    f"g2_element_groups: unknown element symbol {symbol!r} in group {group!r}"
                )
            z = atomic_numbers[symbol]
            weights[g, z] = 1.0
            claimed[z] = True
    if len(other) > 1:
        raise ValueError("g2_element_groups: 'other' may appear once")
    for g in other:
        weights[g, 1:] = (~claimed[1:]).astype(float)
    return weights


def _extra_grids(grids: Any) -> tuple[tuple[float, float, int], ...]:
    """Validated ``g2_extra_grids``: a sequence of (r_lo Å, r_hi Å, n) triples."""
    out = []
    for grid in grids:
        try:
            r_lo, r_hi, n = grid
        except (TypeError, ValueError):
            raise ValueError(
                f"g2_extra_grids: expected (r_lo, r_hi, n) triples, got {grid!r}"
            ) from None
        if isinstance(n, float) and n.is_integer():
            n = int(n)
        if not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"g2_extra_grids: n must be a positive integer, got {grid!r}")
        r_lo, r_hi = float(r_lo), float(r_hi)
        if not (np.isfinite(r_lo) and np.isfinite(r_hi) and 0 <= r_lo < r_hi):
            raise ValueError(f"g2_extra_grids: expected 0 <= r_lo < r_hi, got {grid!r}")
        out.append((r_lo, r_hi, int(n)))
    return tuple(out)


@dataclass(frozen=True)
class WACSF:
    """Weighted atom-centred symmetry functions (G1, G2, G4) around absorbing atoms.

    Features, in order: ``G1``, ``n_g2`` G2 functions, ``n_g4`` G4 functions (radial index
    outermost, then λ, then ζ), then the optional extras ``S`` (total spin) and ``q`` (charge)
    read from ``atoms.info``. See ``shared/spec/wacsf.md`` for the formulas.

    Attributes:
        r_min: lower end of the radial grid, Å.
        r_max: cutoff radius, Å.
        n_g2: number of G2 (radial) functions.
        n_g4: number of G4 (angular) functions; must be a multiple of
            ``len(lambdas) * len(zetas)``.
        lambdas: angular signs λ, each in [-1, 1].
        zetas: angular exponents ζ, each > 0.
        g2_parameterisation: "shifted" (Gaussians spread over r) or "centred" (μ = 0).
        g4_parameterisation: as ``g2_parameterisation``, for G4.
        weight_scale: element weight w = weight_scale · Z (0.1 as XANESNET; 1.0 for raw Z).
        rjk_cutoff: "zero" applies the cosine cutoff to r_jk and zeroes it beyond r_max (the
            physical choice); "raw" applies the bare cosine without zeroing (reproduces the
            NewcastleRSE XANESNET values).
        g2_element_groups: element-resolved radial channels: for each group (a string of
            comma-separated element symbols, e.g. "O" or "P,S,Se", or "other" for every
            element in no other group) another ``n_g2`` G2 functions with weight 1 for the
            group's elements and 0 for the rest. They tell ligand elements apart, which the
            Z-weighted G2 cannot (C, N and O weigh almost the same), and follow G4.
        g2_extra_grids: more G2 radial functions, each ``(r_lo, r_hi, n)`` a grid of ``n``
            Gaussians built like the main one on [r_lo, r_hi] Å (same parameterisation, same
            cutoff ``r_max``). They follow the ``n_g2`` main functions in every G2 channel, the
            Z-weighted one and each element group, e.g. ``((1.0, 3.5, 24),)`` adds a fine grid
            over the first coordination shells.
        use_spin: append the structure's total spin, ``atoms.info["spin"]`` (or "S").
        use_charge: append the structure's charge, ``atoms.info["charge"]`` (or "q").
        min_distance: two atoms of a site's cutoff sphere closer than this (Å) make the site
            invalid (overlapping atoms); must lie in (0, r_max).
    """

    r_min: float = 1.0
    r_max: float = 6.0
    n_g2: int = 16
    n_g4: int = 32
    lambdas: tuple[float, ...] = (1.0, -1.0)
    zetas: tuple[float, ...] = (1.0,)
    g2_parameterisation: Parameterisation = "shifted"
    g4_parameterisation: Parameterisation = "centred"
    weight_scale: float = 0.1
    rjk_cutoff: RjkCutoff = "zero"
    g2_element_groups: tuple[str, ...] = ()
    g2_extra_grids: tuple[tuple[float, float, int], ...] = ()
    use_spin: bool = False
    use_charge: bool = False
    min_distance: float = 0.1
    _derived: dict[str, np.ndarray] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "lambdas", tuple(float(v) for v in self.lambdas))
        object.__setattr__(self, "zetas", tuple(float(v) for v in self.zetas))
        object.__setattr__(self, "g2_element_groups", tuple(str(g) for g in self.g2_element_groups))
        object.__setattr__(self, "g2_extra_grids", _extra_grids(self.g2_extra_grids))
        group_weights = _group_weights(self.g2_element_groups)
        if not (np.isfinite(self.r_max) and self.r_max > 0):
            raise ValueError(f"r_max: expected a positive cutoff in Å, got {self.r_max!r}")
        if not (np.isfinite(self.r_min) and 0 <= self.r_min < self.r_max):
            raise ValueError(f"r_min: expected 0 <= r_min < r_max, got {self.r_min!r}")
        for name in ("n_g2", "n_g4"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value < 0:
                raise ValueError(f"{name}: expected a non-negative integer, got {value!r}")
        if not self.lambdas or any(not -1.0 <= v <= 1.0 for v in self.lambdas):
            raise ValueError(f"lambdas: expected values in [-1, 1], got {self.lambdas!r}")
        if not self.zetas or any(not (np.isfinite(v) and v > 0) for v in self.zetas):
            raise ValueError(f"zetas: expected positive values, got {self.zetas!r}")
        n_angular = len(self.lambdas) * len(self.zetas)
        if self.n_g4 % n_angular:
            raise ValueError(
                f"n_g4: {self.n_g4} is not a multiple of len(lambdas) * len(zetas) = {n_angular}"
            )
        if self.rjk_cutoff not in ("zero", "raw"):
            raise ValueError(f"rjk_cutoff: expected 'zero' or 'raw', got {self.rjk_cutoff!r}")
        if not (
            isinstance(self.min_distance, (int, float, np.floating))
            and np.isfinite(self.min_distance)
            and 0 < self.min_distance < self.r_max
        ):
            raise ValueError(
                f"min_distance: expected a distance in Å with 0 < min_distance < r_max, "
                f"got {self.min_distance!r}"
            )
        object.__setattr__(self, "min_distance", float(self.min_distance))
        if not (np.isfinite(self.weight_scale) and self.weight_scale > 0):
            raise ValueError(f"weight_scale: expected a positive number, got {self.weight_scale!r}")
        g2_eta, g2_mu = _radial_grid(self.g2_parameterisation, self.r_min, self.r_max, self.n_g2)
        for r_lo, r_hi, n in self.g2_extra_grids:
            if not r_hi <= self.r_max:
                raise ValueError(
                    f"g2_extra_grids: grid ({r_lo}, {r_hi}, {n}) reaches beyond r_max {self.r_max}"
                )
            eta, mu = _radial_grid(self.g2_parameterisation, r_lo, r_hi, n)
            g2_eta, g2_mu = np.concatenate([g2_eta, eta]), np.concatenate([g2_mu, mu])
        # Upstream quirk (kept on purpose): the G4 grid is built with n_g4 points and only the
        # first n_g4 / (len(λ)·len(ζ)) radii are used.
        g4_eta, g4_mu = _radial_grid(self.g4_parameterisation, self.r_min, self.r_max, self.n_g4)
        n_radial = self.n_g4 // n_angular
        self._derived.update(
            group_weights=group_weights,
            g2_eta=g2_eta,
            g2_mu=g2_mu,
            g4_eta=np.ascontiguousarray(g4_eta[:n_radial]),
            g4_mu=np.ascontiguousarray(g4_mu[:n_radial]),
        )
        for array in self._derived.values():
            array.flags.writeable = False

    # -- derived parameters ---------------------------------------------------------------
    @property
    def g2_eta(self) -> np.ndarray:
        """(n_g2_total,) Gaussian widths η of G2 (main grid, then extra grids), Å⁻²."""
        return self._derived["g2_eta"]

    @property
    def g2_mu(self) -> np.ndarray:
        """(n_g2_total,) Gaussian centres μ of G2 (main grid, then extra grids), Å."""
        return self._derived["g2_mu"]

    @property
    def g4_eta(self) -> np.ndarray:
        """(n_g4_radial,) Gaussian widths η of G4, Å⁻²."""
        return self._derived["g4_eta"]

    @property
    def g4_mu(self) -> np.ndarray:
        """(n_g4_radial,) Gaussian centres μ of G4, Å."""
        return self._derived["g4_mu"]

    @property
    def n_g4_radial(self) -> int:
        """Number of distinct G4 radial functions."""
        return self.n_g4 // (len(self.lambdas) * len(self.zetas))

    @property
    def n_g2_total(self) -> int:
        """Number of G2 functions per channel: ``n_g2`` plus those of the extra grids."""
        return self.n_g2 + sum(n for _, _, n in self.g2_extra_grids)

    @property
    def n_descriptor_features(self) -> int:
        """Number of G1 + G2 + G4 features (without element channels and extras)."""
        return 1 + self.n_g2_total + self.n_g4

    @property
    def group_weights(self) -> np.ndarray:
        """(n_groups, 119) weight of each element by atomic number in each G2 channel."""
        return self._derived["group_weights"]

    @property
    def n_features(self) -> int:
        """Length of one descriptor vector, extras included."""
        return (
            self.n_descriptor_features
            + len(self.g2_element_groups) * self.n_g2_total
            + int(self.use_spin)
            + int(self.use_charge)
        )

    @property
    def feature_names(self) -> list[str]:
        """Human-readable name of every feature, e.g. ``G2[mu=1.50]``."""
        names = ["G1"]
        names += [f"G2[mu={m:.2f},eta={e:.4g}]" for e, m in zip(self.g2_eta, self.g2_mu)]
        for e, m in zip(self.g4_eta, self.g4_mu):
            for lam in self.lambdas:
                for zeta in self.zetas:
                    names.append(f"G4[mu={m:.2f},eta={e:.4g},lambda={lam:+g},zeta={zeta:g}]")
        for group in self.g2_element_groups:
            names += [
                f"G2[{group};mu={m:.2f},eta={e:.4g}]" for e, m in zip(self.g2_eta, self.g2_mu)
            ]
        if self.use_spin:
            names.append("S")
        if self.use_charge:
            names.append("q")
        return names

    @property
    def packed_fast_path(self) -> bool:
        """Whether the packed-array kernels compute this descriptor completely.

        True when every feature comes from positions, numbers and cells alone; False when it
        also needs per-structure metadata from ``atoms.info`` (spin, charge), which only
        :meth:`compute` on ``ase.Atoms`` reads. Readers that pack structures themselves ask
        this before using :func:`xanesnet.descriptors.dispatch.compute_packed`.
        """
        return type(self) is WACSF and not (self.use_spin or self.use_charge)

    def element_weights(self) -> np.ndarray:
        """(119,) weight of each element by atomic number (index 0 unused)."""
        return self.weight_scale * np.arange(119, dtype=np.float64)

    def kernel_params(self) -> dict[str, Any]:
        """Everything the kernels take about the descriptor, as one dict.

        Both backends' ``wacsf_batch`` take it as ``params`` (the C++ binding converts it once
        into the core's ``WacsfParams``): arrays r_max (Å), g2_eta/g2_mu, g4_eta/g4_mu,
        lambdas, zetas, element_weights (119,), channel_weights (n_groups, 119),
        rjk_raw_cosine, min_distance (Å) and the search limits of
        :func:`xanesnet.descriptors.limits.search_limits`.
        """
        return {
            "r_max": float(self.r_max),
            "g2_eta": self.g2_eta,
            "g2_mu": self.g2_mu,
            "g4_eta": self.g4_eta,
            "g4_mu": self.g4_mu,
            "lambdas": np.asarray(self.lambdas, dtype=np.float64),
            "zetas": np.asarray(self.zetas, dtype=np.float64),
            "element_weights": self.element_weights(),
            "channel_weights": np.ascontiguousarray(self.group_weights),
            "rjk_raw_cosine": self.rjk_cutoff == "raw",
            "min_distance": self.min_distance,
            **search_limits(float(self.r_max)),
        }

    # -- serialisation --------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; ``WACSF.from_dict(c.to_dict()) == c``."""
        data = {k: v for k, v in asdict(self).items() if not k.startswith("_")}
        data["lambdas"] = list(self.lambdas)
        data["zetas"] = list(self.zetas)
        data["g2_element_groups"] = list(self.g2_element_groups)
        data["g2_extra_grids"] = [list(grid) for grid in self.g2_extra_grids]
        return {"schema": _SCHEMA, "kind": "wacsf", **data}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WACSF:
        """Build from :meth:`to_dict` output; unknown keys are an error, missing ones take
        their defaults (files written before a field existed still load)."""
        data = dict(data)
        schema = data.pop("schema", _SCHEMA)
        kind = data.pop("kind", "wacsf")
        if schema != _SCHEMA or kind != "wacsf":
            raise ValueError(f"descriptor config: expected schema {_SCHEMA!r}, got {schema!r}")
        known = {k for k in cls.__dataclass_fields__ if not k.startswith("_")}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"descriptor config: unknown keys {unknown}")
        return cls(**data)

    def to_json(self) -> str:
        """The configuration as a JSON string."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> WACSF:
        """Inverse of :meth:`to_json`."""
        return cls.from_dict(json.loads(text))

    # -- computation ----------------------------------------------------------------------
    def compute(
        self,
        structures: Any,
        absorber: int | str | Sequence[Sequence[int]] = 0,
        *,
        backend: str | None = None,
        n_threads: int = 0,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Descriptors of the absorbing sites of one or many structures.

        Args:
            structures: one ``ase.Atoms`` or an iterable of them.
            absorber: an atom index used in every structure (XANESNET convention: 0), an
                element symbol (every site of that element), or one list of indices per
                structure.
            backend: "cpp" or "numba"; None picks the best available
                (:func:`xanesnet.descriptors.default_backend`).
            n_threads: worker threads; 0 means all cores (or ``OMP_NUM_THREADS``).

        Returns:
            ``(features, index)``: features (n_sites, n_features) float64, and index
            (n_sites, 2) int64 holding (position of the structure in the input, atom index)
            of each row.
        """
        from xanesnet.descriptors.dispatch import compute_wacsf

        return compute_wacsf(self, structures, absorber, backend=backend, n_threads=n_threads)
