"""Numba neighbour search for the wACSF fallback backend: periodic images by atom scan or cell
list, and the cell geometry both need. Mirrors ``csrc/core/neighbours.cpp`` (same pairs, same
order, same error messages for bad cells, the same limits of
:mod:`xanesnet.descriptors.limits` checked in the same order before any search)."""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from xanesnet.descriptors.limits import (
    MAX_CELLS_AWAY,
    SITE_OK,
    SITE_TOO_FAR,
    SITE_TOO_MANY_IMAGES,
)

#: Periodic structures with at least this many atoms are searched through a cell list.
CELL_LIST_MIN_ATOMS = 96
_SHIFT_BIAS = 1 << 19  # |shift| bound used to build sort keys of periodic images


# --------------------------------------------------------------------------------------------
# Neighbours of one centre


@njit(cache=True, inline="always")
def _add_if_within(
    positions, a, j, s0, s1, s2, cell, rix, riy, riz, c2, cutoff, idx, vec, dist, keys, n
):
    """Appends atom ``a`` (index ``j`` in its structure) seen through image (s0, s1, s2) when
    it lies within the cutoff of the centre at (rix, riy, riz); grows the buffers as needed.

    Returns the (possibly new) buffers and the new count.
    """
    ox = s0 * cell[0, 0] + s1 * cell[1, 0] + s2 * cell[2, 0]
    oy = s0 * cell[0, 1] + s1 * cell[1, 1] + s2 * cell[2, 1]
    oz = s0 * cell[0, 2] + s1 * cell[1, 2] + s2 * cell[2, 2]
    vx = positions[a, 0] + ox - rix
    vy = positions[a, 1] + oy - riy
    vz = positions[a, 2] + oz - riz
    d2 = vx * vx + vy * vy + vz * vz
    if not d2 < c2:
        return idx, vec, dist, keys, n
    d = math.sqrt(d2)
    if not d < cutoff:
        return idx, vec, dist, keys, n
    if n == idx.shape[0]:
        capacity = 2 * n
        idx2 = np.empty(capacity, dtype=np.int64)
        vec2 = np.empty((capacity, 3))
        dist2 = np.empty(capacity)
        keys2 = np.empty(capacity, dtype=np.int64)
        idx2[:n] = idx[:n]
        vec2[:n] = vec[:n]
        dist2[:n] = dist[:n]
        keys2[:n] = keys[:n]
        idx, vec, dist, keys = idx2, vec2, dist2, keys2
    span = 2 * _SHIFT_BIAS + 1
    idx[n] = j
    vec[n, 0] = vx
    vec[n, 1] = vy
    vec[n, 2] = vz
    dist[n] = d
    keys[n] = ((s0 + _SHIFT_BIAS) * span + (s1 + _SHIFT_BIAS)) * span + (s2 + _SHIFT_BIAS)
    return idx, vec, dist, keys, n + 1


@njit(cache=True)
def neighbours_scan(
    positions, frac, begin, n_atoms, centre, cell, pbc, reach, cutoff, max_neighbours
):
    """Neighbours of atom ``centre`` of the structure starting at ``begin``.

    Returns (atom index within the structure, vector (n, 3), distance, within_limit) ordered
    by image shift (lexicographic), then atom — the order of the C++ search; within_limit is
    False (and the search stopped) when there are more than ``max_neighbours``.
    """
    capacity = 64
    idx = np.empty(capacity, dtype=np.int64)
    vec = np.empty((capacity, 3))
    dist = np.empty(capacity)
    keys = np.empty(capacity, dtype=np.int64)
    n = 0
    i = begin + centre
    rix, riy, riz = positions[i, 0], positions[i, 1], positions[i, 2]
    c2 = cutoff * cutoff
    periodic = pbc[0] != 0 or pbc[1] != 0 or pbc[2] != 0
    lo = np.zeros(3, dtype=np.int64)
    hi = np.zeros(3, dtype=np.int64)
    for j in range(n_atoms):
        a = begin + j
        if periodic:
            # |v · (unit normal of face a)| < cutoff bounds the shift on each periodic axis
            for ax in range(3):
                if pbc[ax] != 0:
                    df = frac[a, ax] - frac[i, ax]
                    lo[ax] = np.int64(math.floor(-reach[ax] - df))
                    hi[ax] = np.int64(math.ceil(reach[ax] - df))
        for s0 in range(lo[0], hi[0] + 1):
            for s1 in range(lo[1], hi[1] + 1):
                for s2 in range(lo[2], hi[2] + 1):
                    zero_shift = s0 == 0 and s1 == 0 and s2 == 0
                    if zero_shift and j == centre:
                        continue
                    idx, vec, dist, keys, n = _add_if_within(
                        positions,
                        a,
                        j,
                        s0,
                        s1,
                        s2,
                        cell,
                        rix,
                        riy,
                        riz,
                        c2,
                        cutoff,
                        idx,
                        vec,
                        dist,
                        keys,
                        n,
                    )
                    if n > max_neighbours:
                        return idx[:n], vec[:n], dist[:n], False
    if not periodic:
        return idx[:n], vec[:n], dist[:n], True
    # atoms were visited outer, shifts inner; a stable sort by shift gives (shift, atom) order
    order = np.argsort(keys[:n], kind="mergesort")
    return idx[order], vec[order], dist[order], True


@njit(cache=True)
def build_bins(frac, begin, n_atoms, pbc, reach):
    """Cell list of one structure in fractional coordinates (wrapped on periodic axes).

    Bins are at least ``r_max`` thick. Returns (bins per axis (3,), lower edge (3,), bin width
    (3,), start of each bin in ``order`` (n_bins + 1,), atoms sorted by bin (n_atoms,),
    integer image offset of each atom (n_atoms, 3): frac = wrapped + offset).
    """
    nb = np.ones(3, dtype=np.int64)
    lower = np.zeros(3)
    width = np.ones(3)
    offset = np.zeros((n_atoms, 3), dtype=np.int64)
    wrapped = np.empty((n_atoms, 3))
    for ax in range(3):
        lo = 1e300
        hi = -1e300
        for j in range(n_atoms):
            f = frac[begin + j, ax]
            if pbc[ax] != 0:
                o = math.floor(f)
                offset[j, ax] = np.int64(o)
                f = f - o
            wrapped[j, ax] = f
            lo = min(lo, f)
            hi = max(hi, f)
        extent = 1.0 if pbc[ax] != 0 else hi - lo
        lower[ax] = 0.0 if pbc[ax] != 0 else lo
        count = np.int64(math.floor(extent / reach[ax])) if reach[ax] > 0 else 1
        nb[ax] = max(1, min(count, 1 + 2 * np.int64(round(n_atoms ** (1.0 / 3.0)))))
        width[ax] = extent / nb[ax] if extent > 0 else 1.0
    n_bins = nb[0] * nb[1] * nb[2]
    bin_of = np.empty(n_atoms, dtype=np.int64)
    starts = np.zeros(n_bins + 1, dtype=np.int64)
    for j in range(n_atoms):
        b = 0
        for ax in range(3):
            k = np.int64(math.floor((wrapped[j, ax] - lower[ax]) / width[ax]))
            k = min(max(k, 0), nb[ax] - 1)
            b = b * nb[ax] + k
        bin_of[j] = b
        starts[b + 1] += 1
    for b in range(n_bins):
        starts[b + 1] += starts[b]
    fill = starts[:-1].copy()
    order = np.empty(n_atoms, dtype=np.int64)
    for j in range(n_atoms):
        order[fill[bin_of[j]]] = j
        fill[bin_of[j]] += 1
    return nb, lower, width, starts, order, offset


@njit(cache=True)
def neighbours_binned(
    positions,
    frac,
    begin,
    centre,
    cell,
    pbc,
    reach,
    cutoff,
    nb,
    lower,
    width,
    starts,
    order,
    offset,
    max_neighbours,
):
    """As :func:`neighbours_scan`, searching only the bins within reach of the centre."""
    capacity = 64
    idx = np.empty(capacity, dtype=np.int64)
    vec = np.empty((capacity, 3))
    dist = np.empty(capacity)
    keys = np.empty(capacity, dtype=np.int64)
    n = 0
    i = begin + centre
    rix, riy, riz = positions[i, 0], positions[i, 1], positions[i, 2]
    c2 = cutoff * cutoff
    b_lo = np.zeros(3, dtype=np.int64)
    b_hi = np.zeros(3, dtype=np.int64)
    for ax in range(3):
        f = frac[i, ax] - offset[centre, ax]  # the centre's wrapped coordinate
        b_lo[ax] = np.int64(math.floor((f - reach[ax] - lower[ax]) / width[ax]))
        b_hi[ax] = np.int64(math.floor((f + reach[ax] - lower[ax]) / width[ax]))
        if pbc[ax] == 0:
            b_lo[ax] = max(b_lo[ax], 0)
            b_hi[ax] = min(b_hi[ax], nb[ax] - 1)
    for b0 in range(b_lo[0], b_hi[0] + 1):
        t0 = b0 // nb[0]  # image of the wrapped cell (0 on non-periodic axes)
        for b1 in range(b_lo[1], b_hi[1] + 1):
            t1 = b1 // nb[1]
            for b2 in range(b_lo[2], b_hi[2] + 1):
                t2 = b2 // nb[2]
                b = ((b0 - t0 * nb[0]) * nb[1] + (b1 - t1 * nb[1])) * nb[2] + (b2 - t2 * nb[2])
                for q in range(starts[b], starts[b + 1]):
                    j = order[q]
                    # the image near the wrapped centre, seen from the centre as given
                    s0 = t0 + offset[centre, 0] - offset[j, 0]
                    s1 = t1 + offset[centre, 1] - offset[j, 1]
                    s2 = t2 + offset[centre, 2] - offset[j, 2]
                    if j == centre and s0 == 0 and s1 == 0 and s2 == 0:
                        continue
                    a = begin + j
                    idx, vec, dist, keys, n = _add_if_within(
                        positions,
                        a,
                        j,
                        s0,
                        s1,
                        s2,
                        cell,
                        rix,
                        riy,
                        riz,
                        c2,
                        cutoff,
                        idx,
                        vec,
                        dist,
                        keys,
                        n,
                    )
                    if n > max_neighbours:
                        return idx[:n], vec[:n], dist[:n], False
    # order by (shift, atom) as the C++ search: by atom, then stably by shift
    by_atom = np.argsort(idx[:n], kind="mergesort")
    by_shift = np.argsort(keys[:n][by_atom], kind="mergesort")
    sel = by_atom[by_shift]
    return idx[sel], vec[sel], dist[sel], True


# --------------------------------------------------------------------------------------------
# Cell geometry (plain Python, before any jitted code)


_SINGULAR_TOL = 1e-10  # as the C++ CellList


def _effective_cells(cells: np.ndarray, pbc: np.ndarray, check: np.ndarray) -> np.ndarray:
    """Cells whose non-periodic rows are replaced by unit vectors orthogonal to the periodic
    ones (images are only taken along periodic axes, so those rows only set the frame).

    Raises ValueError, with the C++ core's messages, for a zero or dependent set of periodic
    lattice vectors of a structure in ``check``.
    """
    out = np.array(cells, dtype=np.float64, copy=True)
    for st in np.nonzero(check)[0]:
        periodic = np.nonzero(pbc[st])[0]
        vectors = cells[st][periodic]
        norms = np.linalg.norm(vectors, axis=1)
        if not np.all(norms > 0.0):
            raise ValueError(f"structure {int(st)}: periodic lattice vector is zero")
        if len(periodic) == 3:
            ok = abs(_det3(cells[st][None])[0]) > _SINGULAR_TOL * np.prod(norms)
        elif len(periodic) == 2:
            ok = np.linalg.norm(np.cross(vectors[0], vectors[1])) > _SINGULAR_TOL * np.prod(norms)
        else:
            ok = True
        if not ok:
            raise ValueError(f"structure {int(st)}: periodic lattice vectors are singular")
        if len(periodic) < 3:
            # orthonormal complement of the periodic vectors (from the SVD's null space)
            _, _, vt = np.linalg.svd(vectors)
            out[st][np.nonzero(~pbc[st].astype(bool))[0]] = vt[len(periodic) :]
    return out


def _det3(cells: np.ndarray) -> np.ndarray:
    """Determinants of (n, 3, 3) matrices, expanded as in the C++ code."""
    m = cells.reshape(-1, 9)
    return (
        m[:, 0] * (m[:, 4] * m[:, 8] - m[:, 5] * m[:, 7])
        - m[:, 1] * (m[:, 3] * m[:, 8] - m[:, 5] * m[:, 6])
        + m[:, 2] * (m[:, 3] * m[:, 7] - m[:, 4] * m[:, 6])
    )


def geometry(
    positions: np.ndarray,
    atom_offsets: np.ndarray,
    cells: np.ndarray,
    pbc: np.ndarray,
    site_structures: np.ndarray,
    r_max: float,
    max_images: float,
    max_length: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-structure status and, for the structures to search, the search geometry.

    The checks of the C++ CellList, in its order, before anything is searched: a periodic
    lattice vector component or a coordinate beyond ``max_length`` (SITE_TOO_FAR), a singular
    cell (ValueError), more than ``max_images`` periodic images within reach (SITE_TOO_MANY_IMAGES),
    an atom ``MAX_CELLS_AWAY`` cells or more from the origin (SITE_TOO_FAR).

    Returns:
        status (n_structures,) int32, status_atom (n_structures,) int64 (the atom a status
        names, -1 for none or a lattice vector), status_value (n_structures,) float64 (its
        largest |coordinate| in Å, or the number of images), fractional coordinates
        (n_atoms, 3) and image reach r_max / face height (n_structures, 3).
    """
    n_structures = cells.shape[0]
    status = np.full(n_structures, SITE_OK, dtype=np.int32)
    status_atom = np.full(n_structures, -1, dtype=np.int64)
    status_value = np.zeros(n_structures)
    needed = np.zeros(n_structures, dtype=bool)
    needed[site_structures] = True
    # lengths, vectorised over the batch: lattice vectors first, then the first far atom
    cell_max = np.max(np.abs(np.where(pbc.astype(bool)[:, :, None], cells, 0.0)), axis=(1, 2))
    largest = np.max(np.abs(positions), axis=1) if positions.size else np.zeros(0)
    far_atoms = np.nonzero(~(largest <= max_length))[0]
    far_owner = np.searchsorted(atom_offsets, far_atoms, side="right") - 1
    first_far = np.full(n_structures, -1, dtype=np.int64)
    owners, first = np.unique(far_owner, return_index=True)  # far_atoms ascend: first = lowest
    first_far[owners] = far_atoms[first]
    too_long = needed & ~(cell_max <= max_length)
    status[too_long], status_value[too_long] = SITE_TOO_FAR, cell_max[too_long]
    far = needed & ~too_long & (first_far >= 0)
    status[far] = SITE_TOO_FAR
    status_atom[far] = first_far[far] - atom_offsets[:-1][far]
    status_value[far] = largest[first_far[far]]
    periodic = pbc.any(axis=1)
    use = periodic & needed & (status == SITE_OK)
    eff = _effective_cells(cells, pbc, use)
    reach = np.zeros((n_structures, 3))
    frac = np.zeros_like(positions)
    if not use.any():
        return status, status_atom, status_value, frac, reach
    # reciprocal rows: recip[a] · cell[b] = δ_ab; face height of axis a = 1 / |recip[a]|
    recip = np.zeros_like(eff)
    recip[use] = np.linalg.inv(eff[use]).transpose(0, 2, 1)
    norms = np.sqrt((recip[..., 0] ** 2 + recip[..., 1] ** 2) + recip[..., 2] ** 2)
    images = np.prod(np.where(pbc.astype(bool), 1.0 + 2.0 * r_max * norms, 1.0), axis=1)
    crowded = use & ~(images <= max_images)
    status[crowded], status_value[crowded] = SITE_TOO_MANY_IMAGES, images[crowded]
    use &= ~crowded
    reach[use] = r_max * norms[use]
    counts = np.diff(atom_offsets)
    owner = np.repeat(np.arange(n_structures), counts)
    mask = use[owner]
    frac[mask] = np.einsum("nd,nad->na", positions[mask], recip[owner[mask]])
    # atoms too many cells away along a periodic axis (their shifts would overflow)
    away = np.any((np.abs(np.floor(frac)) >= MAX_CELLS_AWAY) & pbc.astype(bool)[owner], axis=1)
    for a in np.nonzero(away & mask)[0]:
        st = int(owner[a])
        if status[st] != SITE_OK:
            continue
        status[st], status_atom[st] = SITE_TOO_FAR, a - int(atom_offsets[st])
        status_value[st] = float(np.max(np.abs(positions[a])))
        reach[st] = 0.0
    # margin against rounding of the fractional offsets; the distance test decides
    reach[use & (status == SITE_OK)] += 1e-9
    return status, status_atom, status_value, frac, reach


def cell_lists(
    frac: np.ndarray, atom_offsets: np.ndarray, pbc: np.ndarray, reach: np.ndarray, needed
) -> tuple[np.ndarray, ...]:
    """Cell lists of the periodic structures with at least CELL_LIST_MIN_ATOMS atoms, flat."""
    n_structures = pbc.shape[0]
    n_atoms_total = frac.shape[0]
    counts = np.diff(atom_offsets)
    use = needed & pbc.any(axis=1) & (counts >= CELL_LIST_MIN_ATOMS)
    nb = np.ones((n_structures, 3), dtype=np.int64)
    lower = np.zeros((n_structures, 3))
    width = np.ones((n_structures, 3))
    bin_offsets = np.zeros(n_structures + 1, dtype=np.int64)
    starts, orders = [np.zeros(0, dtype=np.int64)], np.zeros(n_atoms_total, dtype=np.int64)
    image_offset = np.zeros((n_atoms_total, 3), dtype=np.int64)
    total = 0
    for st in range(n_structures):
        bin_offsets[st] = total
        if not use[st]:
            continue
        begin, end = int(atom_offsets[st]), int(atom_offsets[st + 1])
        nb[st], lower[st], width[st], st_starts, order, offset = build_bins(
            frac, begin, end - begin, pbc[st], reach[st]
        )
        starts.append(st_starts)
        total += st_starts.size
        orders[begin:end] = order
        image_offset[begin:end] = offset
    bin_offsets[n_structures] = total
    return use, nb, lower, width, bin_offsets, np.concatenate(starts), orders, image_offset
