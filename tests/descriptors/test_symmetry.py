"""Symmetry-unique absorbing sites (xanesnet.descriptors.symmetry) on ase-built crystals."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, molecule
from ase.spacegroup import crystal

from xanesnet.descriptors.symmetry import DEFAULT_SYMPREC, unique_sites
from xanesnet.descriptors.wacsf import WACSF

DESCRIPTOR = WACSF(r_max=5.0, n_g2=16, n_g4=16)


def rocksalt_cucl() -> Atoms:
    """Rocksalt CuCl, conventional cubic cell: 4 Cu + 4 Cl, all Cu equivalent (Fm-3m)."""
    atoms = bulk("NaCl", "rocksalt", a=5.42, cubic=True)
    atoms.symbols[atoms.symbols == "Na"] = "Cu"
    return atoms


def spinel_cual2o4() -> Atoms:
    """Normal spinel CuAl2O4 (Fd-3m, origin choice 2): Cu 8a, Al 16d, O 32e; 56 atoms."""
    return crystal(
        ["Cu", "Al", "O"],
        basis=[(0.125, 0.125, 0.125), (0.5, 0.5, 0.5), (0.2624, 0.2624, 0.2624)],
        spacegroup=227,
        setting=2,
        cellpar=[8.08, 8.08, 8.08, 90, 90, 90],
    )


def doped_supercell() -> Atoms:
    """2x2x2 supercell of primitive rocksalt CuCl with one Cl replaced by Br: 8 Cu sites that
    fall into orbits by their distance to the Br."""
    atoms = bulk("NaCl", "rocksalt", a=5.42).repeat((2, 2, 2))
    atoms.symbols[atoms.symbols == "Na"] = "Cu"
    atoms.symbols[int(np.flatnonzero(atoms.symbols == "Cl")[0])] = "Br"
    return atoms


def _descriptors(atoms: Atoms, sites: np.ndarray, backend: str) -> np.ndarray:
    features, _ = DESCRIPTOR.compute([atoms], [sites.tolist()], backend=backend, n_threads=1)
    return features


def _assert_unique_then_expand_equals_every_site(atoms: Atoms, candidates, backend: str):
    sites = unique_sites(atoms, candidates)
    assert sites.symmetry_used
    every = _descriptors(atoms, sites.candidates, backend)
    unique = _descriptors(atoms, sites.indices, backend)
    # Symmetry-generated positions are exact to ~1e-15 A and each feature is a sum of a few
    # hundred terms: equivalent sites agree to float64 rounding, far inside these bounds.
    scale = np.abs(every).max()
    np.testing.assert_allclose(sites.expand(unique), every, rtol=1e-10, atol=1e-12 * scale)
    np.testing.assert_allclose(
        sites.weighted_mean(unique), every.mean(axis=0), rtol=1e-10, atol=1e-12 * scale
    )
    return sites


def test_rocksalt(backend):
    atoms = rocksalt_cucl()
    cu = unique_sites(atoms, "Cu")
    assert cu.spacegroup == "Fm-3m" and cu.symprec == DEFAULT_SYMPREC
    np.testing.assert_array_equal(cu.candidates, [0, 2, 4, 6])
    np.testing.assert_array_equal(cu.indices, [0])
    np.testing.assert_array_equal(cu.multiplicities, [4])
    everything = unique_sites(atoms)
    np.testing.assert_array_equal(everything.indices, [0, 1])
    np.testing.assert_array_equal(everything.multiplicities, [4, 4])
    assert everything.multiplicities.sum() == len(atoms)
    _assert_unique_then_expand_equals_every_site(atoms, None, backend)


def test_spinel(backend):
    atoms = spinel_cual2o4()
    assert len(atoms) == 56
    sites = _assert_unique_then_expand_equals_every_site(atoms, None, backend)
    assert sites.spacegroup == "Fd-3m"
    assert sites.multiplicities.sum() == 56
    counts = {atoms[int(i)].symbol: int(m) for i, m in zip(sites.indices, sites.multiplicities)}
    assert counts == {"Cu": 8, "Al": 16, "O": 32}
    # One Al replaced by Ga lowers the symmetry: more orbits, still 8 Cu sites in all.
    doped = atoms.copy()
    doped.symbols[int(np.flatnonzero(doped.symbols == "Al")[0])] = "Ga"
    cu = _assert_unique_then_expand_equals_every_site(doped, "Cu", backend)
    assert 1 < cu.n_unique < 8 and cu.multiplicities.sum() == 8


def test_supercell(backend):
    pure = bulk("NaCl", "rocksalt", a=5.42).repeat((2, 2, 2))
    pure.symbols[pure.symbols == "Na"] = "Cu"
    assert unique_sites(pure, "Cu").n_unique == 1
    atoms = doped_supercell()
    sites = _assert_unique_then_expand_equals_every_site(atoms, "Cu", backend)
    assert sites.multiplicities.sum() == 8 == np.count_nonzero(atoms.symbols == "Cu")
    # Orbits are shells around the Br: every member at the same distance from it.
    br = int(np.flatnonzero(atoms.symbols == "Br")[0])
    distance = atoms.get_distances(br, sites.candidates, mic=True)
    assert sites.n_unique == np.unique(np.round(distance, 6)).size
    for k in range(sites.n_unique):
        assert np.ptp(distance[sites.orbit == k]) < 1e-9
    everything = unique_sites(atoms)
    assert everything.multiplicities.sum() == len(atoms)


def test_orbit_bookkeeping():
    atoms = doped_supercell()
    order = [14, 1, 3, -1]  # Cu and Cl atoms, one given from the end
    sites = unique_sites(atoms, order)
    np.testing.assert_array_equal(sites.candidates, [14, 1, 3, len(atoms) - 1])
    assert sites.indices[0] == 14  # representatives: first candidate of each orbit
    symbols = atoms.symbols[sites.candidates]
    assert all(symbols[i] == atoms.symbols[sites.indices[k]] for i, k in enumerate(sites.orbit))
    np.testing.assert_array_equal(np.bincount(sites.orbit), sites.multiplicities)
    for k, index in enumerate(sites.indices):
        assert sites.candidates[sites.orbit == k][0] == index
    values = np.arange(sites.n_unique, dtype=float)[:, None] * np.ones((1, 3))
    np.testing.assert_array_equal(sites.expand(values)[:, 0], sites.orbit)
    with pytest.raises(ValueError, match="one per orbit"):
        sites.expand(np.zeros((sites.n_unique + 1, 3)))


def test_tolerance():
    atoms = rocksalt_cucl()
    rng = np.random.default_rng(19)
    atoms.positions += rng.uniform(-1e-4, 1e-4, atoms.positions.shape)
    assert unique_sites(atoms, "Cu", symprec=1e-3).n_unique == 1
    tight = unique_sites(atoms, "Cu", symprec=1e-7)
    assert tight.n_unique > 1 and tight.multiplicities.sum() == 4
    with pytest.raises(ValueError, match="symprec"):
        unique_sites(atoms, "Cu", symprec=0.0)


def test_non_periodic_structures_keep_every_site():
    methane = molecule("CH4")
    sites = unique_sites(methane, "H")
    assert not sites.symmetry_used and sites.spacegroup is None
    np.testing.assert_array_equal(sites.indices, sites.candidates)
    np.testing.assert_array_equal(sites.multiplicities, np.ones(4))
    slab = rocksalt_cucl()
    slab.pbc = (True, True, False)
    assert unique_sites(slab, "Cu").n_unique == 4


def test_candidate_errors():
    atoms = rocksalt_cucl()
    with pytest.raises(ValueError, match="out of range"):
        unique_sites(atoms, [0, 8])
    with pytest.raises(ValueError, match="repeat"):
        unique_sites(atoms, [0, -8])
    empty = unique_sites(atoms, "Fe")
    assert empty.n_unique == 0 and empty.candidates.size == 0
