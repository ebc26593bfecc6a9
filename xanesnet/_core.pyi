"""Type stubs of the compiled core (csrc/bindings/*.cpp). Arrays are converted to the dtype
named (C order) on the way in; every call releases the GIL while it computes."""

from collections.abc import Sequence
from os import PathLike
from typing import TypedDict

import numpy as np
from numpy.typing import ArrayLike, NDArray

#: whether the core was built with OpenMP
have_openmp: bool

def default_threads() -> int:
    """Threads used when n_threads=0 (all cores, or OMP_NUM_THREADS)."""

class WacsfKernelParams(TypedDict):
    """The ``params`` dict of :func:`wacsf_batch`, as ``WACSF.kernel_params()`` makes it (every
    key required, no other key accepted)."""

    r_max: float
    g2_eta: ArrayLike
    g2_mu: ArrayLike
    g4_eta: ArrayLike
    g4_mu: ArrayLike
    lambdas: ArrayLike
    zetas: ArrayLike
    element_weights: ArrayLike
    channel_weights: ArrayLike
    rjk_raw_cosine: bool
    min_distance: float
    max_neighbours: int
    max_images: float
    max_length: float

def neighbour_list(
    positions: ArrayLike,
    cell: ArrayLike,
    pbc: ArrayLike,
    cutoff: float,
    centres: ArrayLike | None,
    n_threads: int,
    max_neighbours: int,
    max_images: float,
    max_length: float,
) -> tuple[
    NDArray[np.int64],
    NDArray[np.int64],
    NDArray[np.float64],
    NDArray[np.float64],
    NDArray[np.int32],
]:
    """Neighbours within ``cutoff`` (Å) -> (i, j, d, D, S) as ASE's ``neighbor_list("ijdDS")``.

    positions (n_atoms, 3) float64 Å, cell (3, 3) float64 Å, pbc (3,) bool, centres (m,)
    int64 atom indices (None: every atom). Out: i, j (n_pairs,) int64, d (n_pairs,) float64 Å,
    D (n_pairs, 3) float64 Å, S (n_pairs, 3) int32 cell shifts. The limits
    (``xanesnet.descriptors.limits``) refuse with ValueError a structure too far out or with too
    many periodic images, and a centre with more than ``max_neighbours`` neighbours.
    """

def wacsf_batch(
    positions: ArrayLike,
    numbers: ArrayLike,
    atom_offsets: ArrayLike,
    cells: ArrayLike,
    pbc: ArrayLike,
    site_structures: ArrayLike,
    site_atoms: ArrayLike,
    params: WacsfKernelParams,
    n_threads: int,
) -> tuple[NDArray[np.float64], NDArray[np.int32], NDArray[np.int64], NDArray[np.float64]]:
    """wACSF of a packed batch of sites.

    In: positions (n_atoms_total, 3) float64 Å, numbers (n_atoms_total,) int32, atom_offsets
    (n_structures + 1,) int64, cells (n_structures, 3, 3) float64 Å, pbc (n_structures, 3)
    uint8, site_structures / site_atoms (n_sites,) int64 (structure and atom index of each
    site), params (see :class:`WacsfKernelParams`).

    Out: features (n_sites, n_features) float64, status (n_sites,) int32 (0 = computed; else
    a code of ``xanesnet.descriptors.limits``, with a zero row), close_pair (n_sites, 2) int64
    and close_distance (n_sites,) float64 Å of a pair closer than min_distance (-1 and 0 when
    none).
    """

def laplacian_predict(
    z: ArrayLike,
    centres: ArrayLike,
    gamma: float,
    coefficients: ArrayLike,
    y_mean: ArrayLike,
    n_threads: int = 0,
) -> NDArray[np.float32]:
    """``exp(-gamma * cdist(z, centres, p=1)) @ coefficients + y_mean`` -> (n_sites, n_energies)
    float32. z (n_sites, n_features), centres (n_centres, n_features), coefficients
    (n_centres, n_energies), y_mean (n_energies,), all float32."""

def read_whole_files(
    paths: Sequence[str | bytes | PathLike[str] | PathLike[bytes]], max_bytes: int
) -> tuple[NDArray[np.uint8], NDArray[np.int64]]:
    """Whole files end to end -> (bytes (n_bytes,) uint8, offsets (n_files + 1,) int64): file f
    is ``bytes[offsets[f]:offsets[f + 1]]``; a file that cannot be read or holds more than
    ``max_bytes`` gives no bytes."""

def advise_will_need(paths: Sequence[str | bytes | PathLike[str] | PathLike[bytes]]) -> bool:
    """Ask the kernel to read the files into the page cache ahead (posix_fadvise WILLNEED);
    False where that call does not exist."""
