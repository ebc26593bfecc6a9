"""Numba backend of the wACSF kernel: the fallback when the compiled core is not built.

:func:`wacsf_batch` takes the same arguments, returns the same arrays and raises the same
errors as the C++ ``xanesnet._core.wacsf_batch`` (see ``csrc/core/wacsf.cpp``), and agrees with
it to ~1e-15 relative. Per site:

1. Neighbours: every atom ``j`` and periodic image ``S`` (periodic axes only) with
   ``d = |r_j + S·cell − r_i| < r_max``, excluding the centre itself at ``S = 0``. Positions are
   used as given (not wrapped); for each atom the image range on each periodic axis follows
   from its fractional offset to the centre and the cell's face heights, so any placement and
   any cutoff (also larger than the cell) is handled. Periodic structures with at least
   ``_numba_neighbours.CELL_LIST_MIN_ATOMS`` atoms are searched through a cell list in fractional coordinates
   (bins at least ``r_max`` thick), so large cells cost O(neighbours) per site, not O(atoms).
   Neighbours are ordered as the C++ code orders them (by shift, then atom), so sums run in
   the same order.
2. G1, G2 over neighbours; G4 over neighbour pairs ``j < k`` with the per-neighbour radial
   factor ``a[j, m] = w_j fc(r_ij) exp(−η_m (r_ij − μ_m)²)`` computed once, one exponential per
   pair and radial index, and all (λ, ζ) combinations from the shared ``1 + λ cos θ`` terms.
   The innermost loop runs over the radial index (vectorised by LLVM); each accumulator sums
   over ``k`` in the same order as the C++ kernel.
3. The closest pair within the sphere (centre–neighbour and neighbour–neighbour); a site with a
   pair closer than ``min_distance`` gets status 1 and a zero row.

The jitted functions are compiled on the first call (and cached on disk, ``cache=True``);
importing this module compiles nothing. The thread count is set only for the duration of a call.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from llvmlite import ir
from numba import njit, prange
from numba.core import types
from numba.extending import intrinsic

from xanesnet.descriptors._numba_neighbours import (
    _cell_lists,
    _geometry,
    _neighbours,
    _neighbours_binned,
)

__all__ = ["wacsf_batch"]

_SITE_OK = 0
_SITE_ATOMS_TOO_CLOSE = 1


# --------------------------------------------------------------------------------------------
# Scalar helpers (the same formulas as csrc/core/fastmath.hpp, written to vectorise in LLVM)


@intrinsic
def _bits_to_double(typingctx, bits):  # noqa: ARG001 - numba intrinsic signature
    """Reinterpret an int64 bit pattern as a float64 (no conversion)."""
    if not isinstance(bits, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(types.int64), codegen


@njit(cache=True, inline="always")
def _exp_neg(x: float) -> float:
    """exp(x) for x <= 0; 0 below -708. Branch-free, a few ulp (fastmath::exp_neg)."""
    shifter = 6755399441055744.0  # 1.5 * 2^52
    log2e = 1.4426950408889634
    ln2_hi = 6.93147180369123816490e-01
    ln2_lo = 1.90821492927058770002e-10
    underflow = x < -708.0
    x = -708.0 if underflow else x
    t = x * log2e + shifter
    n = t - shifter
    r = (x - n * ln2_hi) - n * ln2_lo
    p = 1.0 / 6227020800.0
    p = p * r + 1.0 / 479001600.0
    p = p * r + 1.0 / 39916800.0
    p = p * r + 1.0 / 3628800.0
    p = p * r + 1.0 / 362880.0
    p = p * r + 1.0 / 40320.0
    p = p * r + 1.0 / 5040.0
    p = p * r + 1.0 / 720.0
    p = p * r + 1.0 / 120.0
    p = p * r + 1.0 / 24.0
    p = p * r + 1.0 / 6.0
    p = p * r + 0.5
    p = p * r + 1.0
    p = p * r + 1.0
    scale = _bits_to_double((np.int64(n) + 1023) << 52)  # 2^n, n in [-1022, 0]
    return 0.0 if underflow else p * scale


@njit(cache=True, inline="always")
def _cosine_cutoff(r: float, half_pi_over_rmax: float, zero_beyond: bool, r_max: float) -> float:
    """½(cos(π r / r_max) + 1) as cos²(π r / (2 r_max)) (fastmath::cosine_cutoff)."""
    half_pi = 1.5707963267948966
    pi = 3.141592653589793
    phi = r * half_pi_over_rmax
    u = phi if phi <= half_pi else pi - phi
    u = 0.0 if u < 0.0 else u
    u2 = u * u
    p = 1.0 / 2432902008176640000.0
    p = p * u2 - 1.0 / 6402373705728000.0
    p = p * u2 + 1.0 / 20922789888000.0
    p = p * u2 - 1.0 / 87178291200.0
    p = p * u2 + 1.0 / 479001600.0
    p = p * u2 - 1.0 / 3628800.0
    p = p * u2 + 1.0 / 40320.0
    p = p * u2 - 1.0 / 720.0
    p = p * u2 + 1.0 / 24.0
    p = p * u2 - 0.5
    p = p * u2 + 1.0
    fc = p * p
    return 0.0 if (zero_beyond and r >= r_max) else fc


# --------------------------------------------------------------------------------------------
# One site


@njit(cache=True, fastmath={"contract"})
def _one_site(
    idx,
    vec,
    dist,
    numbers,
    begin,
    centre,
    element_weights,
    channel_weights,
    r_max,
    g2_eta,
    g2_mu,
    g4_eta,
    g4_mu,
    lambdas,
    zetas,
    integer_zetas,
    int_zetas,
    prefactor,
    rjk_raw_cosine,
    min_distance,
    out,
    close_pair,
):
    """Fills ``out`` (zeroed by the caller) for one site; returns (status, close distance)."""
    n = idx.shape[0]
    if n == 0:
        return _SITE_OK, 0.0
    n_g2 = g2_eta.shape[0]
    n_radial = g4_eta.shape[0]
    n_lambdas = lambdas.shape[0]
    n_zetas = zetas.shape[0]
    n_combos = n_lambdas * n_zetas
    n_elements = element_weights.shape[0]
    half_pi_over_rmax = 1.5707963267948966 / r_max
    zero_beyond = not rjk_raw_cosine

    w = np.empty(n)
    fc = np.empty(n)
    min_found = 1e300
    min_j = 0
    min_k = 0
    min_with_centre = False
    for q in range(n):
        z = numbers[begin + idx[q]]
        w[q] = element_weights[z] if (z >= 0 and z < n_elements) else 0.0
        fc[q] = 0.5 * (math.cos(3.141592653589793 * dist[q] / r_max) + 1.0)
        if dist[q] < min_found:
            min_found = dist[q]
            min_j = q
            min_with_centre = True

    # G1 and G2
    g1 = 0.0
    for q in range(n):
        g1 += fc[q]
    out[0] = g1
    for m in range(n_g2):
        eta = g2_eta[m]
        mu = g2_mu[m]
        s = 0.0
        for q in range(n):
            t = dist[q] - mu
            s += w[q] * math.exp(-eta * t * t) * fc[q]
        out[1 + m] = s

    # G4: radial factor per neighbour, a[q, m] (radial index innermost)
    a = np.empty((n, n_radial))
    for q in range(n):
        for m in range(n_radial):
            t = dist[q] - g4_mu[m]
            a[q, m] = w[q] * fc[q] * math.exp(-g4_eta[m] * t * t)
    neg_eta = -g4_eta
    g4 = np.zeros((n_combos, n_radial))
    s_acc = np.empty((n_combos, n_radial))
    e = np.empty(n_radial)
    ang = np.empty(n_combos)
    for j in range(n - 1):
        xj, yj, zj, rj = vec[j, 0], vec[j, 1], vec[j, 2], dist[j]
        s_acc[:, :] = 0.0
        for k in range(j + 1, n):
            dx = vec[k, 0] - xj
            dy = vec[k, 1] - yj
            dz = vec[k, 2] - zj
            d = math.sqrt(dx * dx + dy * dy + dz * dz)
            if d < min_found:
                min_found = d
                min_j = j
                min_k = k
                min_with_centre = False
            fcjk = _cosine_cutoff(d, half_pi_over_rmax, zero_beyond, r_max)
            if fcjk == 0.0:  # r_jk beyond the cutoff: the pair adds exactly nothing
                continue
            cos_t = (vec[k, 0] * xj + vec[k, 1] * yj + vec[k, 2] * zj) / (dist[k] * rj)
            for li in range(n_lambdas):
                b = 1.0 + lambdas[li] * cos_t
                b = 0.0 if b < 0.0 else b
                for zi in range(n_zetas):
                    if integer_zetas:
                        p = b
                        for _ in range(1, int_zetas[zi]):
                            p *= b
                    else:
                        p = b ** zetas[zi]
                    ang[li * n_zetas + zi] = p * fcjk
            ak = a[k]
            for m in range(n_radial):
                t = d - g4_mu[m]
                e[m] = ak[m] * _exp_neg(neg_eta[m] * t * t)
            for c in range(n_combos):
                angc = ang[c]
                sc = s_acc[c]
                for m in range(n_radial):
                    sc[m] += e[m] * angc
        aj = a[j]
        for c in range(n_combos):
            for m in range(n_radial):
                g4[c, m] += aj[m] * s_acc[c, m]

    if min_found < min_distance:
        out[:] = 0.0
        if min_with_centre:
            close_pair[0] = centre
            close_pair[1] = idx[min_j]
        else:
            close_pair[0] = idx[min_j]
            close_pair[1] = idx[min_k]
        return _SITE_ATOMS_TOO_CLOSE, min_found
    base = 1 + n_g2
    for m in range(n_radial):
        for c in range(n_combos):
            out[base + m * n_combos + c] = prefactor[c % n_zetas] * g4[c, m]
    base += n_radial * n_combos
    n_el = channel_weights.shape[1]
    for ch in range(channel_weights.shape[0]):
        for m in range(n_g2):
            s = 0.0
            for q in range(n):
                z = numbers[begin + idx[q]]
                wq = channel_weights[ch, z] if 0 <= z < n_el else 0.0
                t = dist[q] - g2_mu[m]
                s += wq * math.exp(-g2_eta[m] * t * t) * fc[q]
            out[base + ch * n_g2 + m] = s
    return _SITE_OK, 0.0


@njit(cache=True, parallel=True)
def _batch(
    positions,
    numbers,
    atom_offsets,
    cells,
    pbc,
    frac,
    reach,
    use_bins,
    nb,
    lower,
    width,
    bin_offsets,
    bin_starts,
    bin_order,
    image_offset,
    site_structures,
    site_atoms,
    element_weights,
    channel_weights,
    r_max,
    g2_eta,
    g2_mu,
    g4_eta,
    g4_mu,
    lambdas,
    zetas,
    integer_zetas,
    int_zetas,
    prefactor,
    rjk_raw_cosine,
    min_distance,
    features,
    status,
    close_pair,
    close_distance,
):
    n_sites = site_atoms.shape[0]
    for s in prange(n_sites):
        st = site_structures[s]
        begin = atom_offsets[st]
        n_atoms = atom_offsets[st + 1] - begin
        centre = site_atoms[s]
        if use_bins[st]:
            first = bin_offsets[st]
            n_bins = nb[st, 0] * nb[st, 1] * nb[st, 2]
            idx, vec, dist = _neighbours_binned(
                positions, frac, begin, centre, cells[st], pbc[st], reach[st], r_max, nb[st],
                lower[st], width[st], bin_starts[first : first + n_bins + 1],
                bin_order[begin : begin + n_atoms], image_offset[begin : begin + n_atoms],
            )  # fmt: skip
        else:
            idx, vec, dist = _neighbours(
                positions, frac, begin, n_atoms, centre, cells[st], pbc[st], reach[st], r_max
            )
        code, distance = _one_site(
            idx,
            vec,
            dist,
            numbers,
            begin,
            centre,
            element_weights,
            channel_weights,
            r_max,
            g2_eta,
            g2_mu,
            g4_eta,
            g4_mu,
            lambdas,
            zetas,
            integer_zetas,
            int_zetas,
            prefactor,
            rjk_raw_cosine,
            min_distance,
            features[s],
            close_pair[s],
        )
        status[s] = code
        close_distance[s] = distance


# --------------------------------------------------------------------------------------------
# Python entry point: the argument checks of csrc/bindings/bind_wacsf.cpp and the kernel


def _array(value: object, dtype: type) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(value, dtype=dtype))


def _require_shape(a: np.ndarray, name: str, shape: tuple[int, ...]) -> None:
    if a.ndim != len(shape):
        raise ValueError(f"{name}: wrong number of dimensions")
    for actual, expected in zip(a.shape, shape, strict=True):
        if expected >= 0 and actual != expected:
            raise ValueError(f"{name}: wrong shape")


def wacsf_batch(
    positions: np.ndarray,
    numbers: np.ndarray,
    atom_offsets: np.ndarray,
    cells: np.ndarray,
    pbc: np.ndarray,
    site_structures: np.ndarray,
    site_atoms: np.ndarray,
    element_weights: np.ndarray,
    r_max: float,
    g2_eta: np.ndarray,
    g2_mu: np.ndarray,
    g4_eta: np.ndarray,
    g4_mu: np.ndarray,
    lambdas: np.ndarray,
    zetas: np.ndarray,
    rjk_raw_cosine: bool,
    min_distance: float,
    n_threads: int,
    channel_weights: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """wACSF of a packed batch of sites (the Numba twin of ``xanesnet._core.wacsf_batch``).

    Args:
        positions: (n_atoms_total, 3) float64, Å.
        numbers: (n_atoms_total,) int32 atomic numbers.
        atom_offsets: (n_structures + 1,) int64; structure s owns atoms
            ``atom_offsets[s]:atom_offsets[s + 1]``.
        cells: (n_structures, 3, 3) float64, rows are lattice vectors, Å.
        pbc: (n_structures, 3) uint8 periodicity flags.
        site_structures: (n_sites,) int64 structure of each site.
        site_atoms: (n_sites,) int64 atom index of each site within its structure.
        element_weights: (n_elements,) weight by atomic number (0 beyond its end).
        r_max: cutoff radius, Å.
        g2_eta, g2_mu: (n_g2,) G2 widths (Å⁻²) and centres (Å).
        g4_eta, g4_mu: (n_g4_radial,) G4 widths and centres.
        lambdas: (n_lambdas,) angular signs.
        zetas: (n_zetas,) angular exponents, > 0.
        rjk_raw_cosine: apply the cosine cutoff to r_jk without zeroing it beyond r_max.
        min_distance: atoms of a site's sphere closer than this (Å) fail the site.
        n_threads: threads to use; 0 = all (``numba.config.NUMBA_NUM_THREADS``).
        channel_weights: (n_channels, n_elements) weights of extra G2-only channels (their
            n_channels·n_g2 values follow G4); None or empty for none.

    Returns:
        features (n_sites, 1 + n_g2 + n_g4_radial·n_lambdas·n_zetas + n_channels·n_g2) float64,
        status (n_sites,)
        int32 (0 ok, 1 atoms too close; its row is zero), close_pair (n_sites, 2) int64 (the
        closest pair's atom indices within the structure, centre first when it is one of them;
        -1 for sites that are ok), close_distance (n_sites,) float64 (0 for sites that are ok).

    Raises:
        ValueError: malformed arrays, indices out of range, r_max <= 0, zetas <= 0, a singular
            periodic cell, n_threads < 0 — with the messages of the C++ backend.
    """
    positions = _array(positions, np.float64)
    numbers = _array(numbers, np.int32)
    atom_offsets = _array(atom_offsets, np.int64)
    cells = _array(cells, np.float64)
    pbc = _array(pbc, np.uint8)
    site_structures = _array(site_structures, np.int64)
    site_atoms = _array(site_atoms, np.int64)
    element_weights = _array(element_weights, np.float64).reshape(-1)
    g2_eta, g2_mu, g4_eta, g4_mu, lambdas, zetas = (
        _array(v, np.float64) for v in (g2_eta, g2_mu, g4_eta, g4_mu, lambdas, zetas)
    )
    r_max = float(r_max)
    min_distance = float(min_distance)
    rjk_raw_cosine = bool(rjk_raw_cosine)
    n_threads = int(n_threads)

    # -- the binding's checks, in its order
    n_structures = atom_offsets.size - 1
    if n_structures < 0:
        raise ValueError("atom_offsets: must not be empty")
    _require_shape(positions, "positions", (-1, 3))
    _require_shape(numbers, "numbers", (positions.shape[0],))
    _require_shape(cells, "cells", (n_structures, 3, 3))
    _require_shape(pbc, "pbc", (n_structures, 3))
    _require_shape(site_atoms, "site_atoms", (site_structures.size,))
    _require_shape(g2_mu, "g2_mu", (g2_eta.size,))
    _require_shape(g4_mu, "g4_mu", (g4_eta.size,))
    if channel_weights is None or np.size(channel_weights) == 0:
        channel_weights = np.zeros((0, element_weights.size))
    channel_weights = _array(channel_weights, np.float64)
    _require_shape(channel_weights, "channel_weights", (-1, element_weights.size))
    offsets = atom_offsets.reshape(-1)
    if offsets[0] != 0 or offsets[n_structures] != positions.shape[0]:
        raise ValueError("atom_offsets: must start at 0 and end at n_atoms")
    if np.any(np.diff(offsets) < 0):
        raise ValueError("atom_offsets: must not decrease")
    if n_threads < 0:
        raise ValueError(f"n_threads: expected an integer >= 0 (0 = all cores), got {n_threads}")

    # -- the kernel's checks
    if not r_max > 0.0:
        raise ValueError("r_max must be positive")
    g2_eta, g2_mu, g4_eta, g4_mu, lambdas, zetas = (
        v.reshape(-1) for v in (g2_eta, g2_mu, g4_eta, g4_mu, lambdas, zetas)
    )
    prefactor = np.empty(zetas.size)
    int_zetas = np.zeros(zetas.size, dtype=np.int64)
    integer_zetas = True
    for zi, zeta in enumerate(zetas.tolist()):
        if not zeta > 0.0:
            raise ValueError("zetas must be positive")
        prefactor[zi] = math.pow(2.0, 1.0 - zeta)
        is_int = zeta == math.floor(zeta) and zeta <= 64.0
        integer_zetas = integer_zetas and is_int
        int_zetas[zi] = int(zeta) if is_int else 0
    site_structures = site_structures.reshape(-1)
    site_atoms = site_atoms.reshape(-1)
    for s in range(site_structures.size):
        st = int(site_structures[s])
        if st < 0 or st >= n_structures:
            raise ValueError(f"site {s}: structure index out of range")
        n_atoms = int(offsets[st + 1] - offsets[st])
        if site_atoms[s] < 0 or site_atoms[s] >= n_atoms:
            raise ValueError(f"site {s}: atom index out of range")
    frac, reach = _geometry(positions, offsets, cells, pbc, site_structures, r_max)
    needed = np.zeros(n_structures, dtype=bool)
    needed[site_structures] = True
    bins = _cell_lists(frac, offsets, pbc, reach, needed)

    n_sites = site_structures.size
    n_features = (
        1
        + g2_eta.size
        + g4_eta.size * lambdas.size * zetas.size
        + channel_weights.shape[0] * g2_eta.size
    )
    features = np.zeros((n_sites, n_features))
    status = np.zeros(n_sites, dtype=np.int32)
    close_pair = np.full((n_sites, 2), -1, dtype=np.int64)
    close_distance = np.zeros(n_sites)
    if n_sites == 0:
        return features, status, close_pair, close_distance

    available = numba.config.NUMBA_NUM_THREADS
    threads = available if n_threads == 0 else min(n_threads, available)
    previous = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        _batch(
            positions,
            numbers,
            offsets,
            cells,
            pbc,
            frac,
            reach,
            *bins,
            site_structures,
            site_atoms,
            element_weights,
            channel_weights,
            r_max,
            g2_eta,
            g2_mu,
            g4_eta,
            g4_mu,
            lambdas,
            zetas,
            integer_zetas,
            int_zetas,
            prefactor,
            rjk_raw_cosine,
            min_distance,
            features,
            status,
            close_pair,
            close_distance,
        )
    finally:
        numba.set_num_threads(previous)
    return features, status, close_pair, close_distance
