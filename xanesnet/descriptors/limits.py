"""Physical bounds on the neighbour search, and the per-site status codes of both backends.

A descriptor kernel must never abort or freeze on input that is not a physical structure (a
0.3 Å periodic cube, a lattice vector of 1e-3 Å, a nearly singular cell, coordinates of 1e20 Å).
Both backends (C++ ``csrc/core``, Numba ``_numba*.py``) check these bounds before they allocate
anything that depends on the input, and report a status per site instead of raising:

- **Atoms within the cutoff sphere.** No matter packs atoms more densely than about
  0.18 atoms/Å³ (diamond: 0.176; close-packed metals: 0.05–0.12). A site with more than
  ``MAX_ATOM_DENSITY`` (1 atom/Å³, over five times that) times the sphere's volume atoms
  within ``r_max`` is refused; at least ``MIN_NEIGHBOURS_LIMIT`` are always accepted, so tiny
  cutoffs never refuse a real structure. The count is also held below what fits
  ``MAX_PAIR_BYTES`` of neighbour-pair arrays per thread (48 bytes per pair in the C++ kernel),
  which only matters for cutoffs above ~9 Å. With the default ``r_max`` = 6 Å: 905 atoms.
- **Periodic images.** A search crosses about ``prod(1 + 2 r_max / h_a)`` images of the cell
  (``h_a``: the cell's height across periodic axis ``a``). Every image holds at least one atom,
  and for any cell that is not degenerate a fair share of those images lies within the sphere,
  so a structure needing more than ``IMAGES_PER_NEIGHBOUR`` × the neighbour limit is either
  denser than matter or so skewed that its lattice vectors should be reduced first. It is
  refused as a whole before any atom is binned.
- **Lengths.** A coordinate or a lattice vector component beyond ``MAX_LENGTH`` (1e6 Å, 0.1 mm)
  is not an atomistic structure; an atom more than ``MAX_CELLS_AWAY`` cells from the origin
  along a periodic axis would overflow the int32 image shifts. Both refuse the structure.

Two atoms of a site's sphere closer than the configuration's ``min_distance`` (0.1 Å by
default) fail the site as before.
"""

from __future__ import annotations

import math

__all__ = [
    "IMAGES_PER_NEIGHBOUR",
    "MAX_ATOM_DENSITY",
    "MAX_CELLS_AWAY",
    "MAX_LENGTH",
    "MAX_PAIR_BYTES",
    "MIN_NEIGHBOURS_LIMIT",
    "SITE_ATOMS_TOO_CLOSE",
    "SITE_OK",
    "SITE_TOO_FAR",
    "SITE_TOO_MANY_IMAGES",
    "SITE_TOO_MANY_NEIGHBOURS",
    "densest_neighbours",
    "max_images",
    "max_neighbours",
    "search_limits",
]

#: Atoms per Å³ that no matter reaches (diamond, the densest ordinary solid: 0.176).
MAX_ATOM_DENSITY = 1.0
#: The neighbour limit never falls below this, whatever the cutoff.
MIN_NEIGHBOURS_LIMIT = 64
#: Bytes of neighbour-pair arrays one thread may hold for one site (C++: 48 bytes per pair).
MAX_PAIR_BYTES = 256 * 2**20
_BYTES_PER_PAIR = 48
#: Periodic images a search may cross, per atom of the neighbour limit.
IMAGES_PER_NEIGHBOUR = 8
#: Largest |coordinate| or |lattice vector component| accepted, Å.
MAX_LENGTH = 1e6
#: Largest number of cells an atom may lie from the origin along a periodic axis (C++:
#: kMaxCellsAway in csrc/include/xanesnet/neighbours.hpp).
MAX_CELLS_AWAY = 1e9

# Per-site status codes (C++: SiteStatus in csrc/include/xanesnet/neighbours.hpp).
SITE_OK = 0
SITE_ATOMS_TOO_CLOSE = 1
SITE_TOO_MANY_NEIGHBOURS = 2
SITE_TOO_MANY_IMAGES = 3
SITE_TOO_FAR = 4


def densest_neighbours(r_max: float) -> int:
    """Most atoms matter can hold within ``r_max`` Å of a point (at least
    ``MIN_NEIGHBOURS_LIMIT``): the bound of a plain neighbour list, which holds no pairs."""
    return max(MIN_NEIGHBOURS_LIMIT, math.ceil(MAX_ATOM_DENSITY * 4.0 / 3.0 * math.pi * r_max**3))


def max_neighbours(r_max: float) -> int:
    """Most atoms a descriptor kernel accepts within ``r_max`` Å of a site: the density bound,
    held below what fits ``MAX_PAIR_BYTES`` of pair arrays (see the module docstring)."""
    by_memory = math.isqrt(2 * MAX_PAIR_BYTES // _BYTES_PER_PAIR)
    return max(MIN_NEIGHBOURS_LIMIT, min(densest_neighbours(r_max), by_memory))


def max_images(r_max: float) -> float:
    """Most periodic images a search with cutoff ``r_max`` Å may cross."""
    return float(IMAGES_PER_NEIGHBOUR * max_neighbours(r_max))


def search_limits(r_max: float) -> dict[str, float | int]:
    """The limits as the kernels take them: max_neighbours, max_images, max_length."""
    return {
        "max_neighbours": max_neighbours(r_max),
        "max_images": max_images(r_max),
        "max_length": MAX_LENGTH,
    }
