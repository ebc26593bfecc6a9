"""Numba backend of the wACSF kernel: the jitted per-site computation.

The entry point, with the argument checks of the C++ binding, is
``_numba_batch.wacsf_batch``; together they take the same arguments, return the same arrays and
raise the same errors as the C++ ``xanesnet._core.wacsf_batch`` (see ``csrc/core/wacsf.cpp``),
and agree with it to ~1e-15 relative. Per site:

1. Neighbours: every atom ``j`` and periodic image ``S`` (periodic axes only) with
   ``d = |r_j + S·cell − r_i| < r_max``, excluding the centre itself at ``S = 0``. Positions are
   used as given (not wrapped); for each atom the image range on each periodic axis follows
   from its fractional offset to the centre and the cell's face heights, so any placement and
   any cutoff (also larger than the cell) is handled. Periodic structures with at least
   ``_numba_neighbours.CELL_LIST_MIN_ATOMS`` atoms are searched through a cell list in
   fractional coordinates (bins at least ``r_max`` thick), so large cells cost O(neighbours)
   per site, not O(atoms). Neighbours are ordered as the C++ code orders them (by shift, then
   atom), so sums run in the same order. A site with more than ``max_neighbours`` stops there
   (status 2); structures refused as a whole (status 3, 4) are not searched at all.
2. G1, G2 over neighbours; G4 over neighbour pairs ``j < k`` with the per-neighbour radial
   factor ``a[j, m] = w_j fc(r_ij) exp(−η_m (r_ij − μ_m)²)`` computed once, one exponential per
   pair and radial index, and all (λ, ζ) combinations from the shared ``1 + λ cos θ`` terms.
   The innermost loop runs over the radial index (vectorised by LLVM); each accumulator sums
   over ``k`` in the same order as the C++ kernel.
3. The closest pair within the sphere (centre–neighbour and neighbour–neighbour); a site with a
   pair closer than ``min_distance`` gets status 1 and a zero row.

The jitted functions are compiled on the first call (and cached on disk, ``cache=True``);
importing this module compiles nothing.
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, prange
from numba.core import types
from numba.extending import intrinsic

from xanesnet.descriptors._numba_neighbours import neighbours_binned, neighbours_scan
from xanesnet.descriptors.limits import SITE_ATOMS_TOO_CLOSE, SITE_OK, SITE_TOO_MANY_NEIGHBOURS

__all__ = ["batch_kernel"]


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
        return SITE_OK, 0.0
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
            # a neighbour on the centre (r = 0) fails the site below; no division by zero
            den = dist[k] * rj
            dot = vec[k, 0] * xj + vec[k, 1] * yj + vec[k, 2] * zj
            cos_t = dot / den if den > 0.0 else 0.0
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
        return SITE_ATOMS_TOO_CLOSE, min_found
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
    return SITE_OK, 0.0


@njit(cache=True, parallel=True)
def batch_kernel(
    positions,
    numbers,
    atom_offsets,
    cells,
    pbc,
    structure_status,
    structure_atom,
    structure_value,
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
    max_neighbours,
    features,
    status,
    close_pair,
    close_distance,
):
    """Every site of a packed batch into ``features`` (zeroed) and the per-site report."""
    n_sites = site_atoms.shape[0]
    for s in prange(n_sites):
        st = site_structures[s]
        if structure_status[st] != SITE_OK:  # refused as a whole, before any search
            status[s] = structure_status[st]
            close_pair[s, 0] = structure_atom[st]
            close_distance[s] = structure_value[st]
            continue
        begin = atom_offsets[st]
        n_atoms = atom_offsets[st + 1] - begin
        centre = site_atoms[s]
        if use_bins[st]:
            first = bin_offsets[st]
            n_bins = nb[st, 0] * nb[st, 1] * nb[st, 2]
            idx, vec, dist, within = neighbours_binned(
                positions, frac, begin, centre, cells[st], pbc[st], reach[st], r_max, nb[st],
                lower[st], width[st], bin_starts[first : first + n_bins + 1],
                bin_order[begin : begin + n_atoms], image_offset[begin : begin + n_atoms],
                max_neighbours,
            )  # fmt: skip
        else:
            idx, vec, dist, within = neighbours_scan(
                positions, frac, begin, n_atoms, centre, cells[st], pbc[st], reach[st], r_max,
                max_neighbours,
            )  # fmt: skip
        if not within:
            status[s] = SITE_TOO_MANY_NEIGHBOURS
            close_pair[s, 0] = centre
            continue
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
