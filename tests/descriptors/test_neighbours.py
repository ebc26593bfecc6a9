"""The compiled cell-list neighbour search against ase.neighborlist.neighbor_list."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, molecule
from ase.neighborlist import neighbor_list as ase_neighbor_list

from xanesnet.descriptors.neighbours import neighbour_list

TOL = 1e-12


def as_pairs(i, j, d, D, S) -> dict[tuple[int, int, int, int, int], tuple[float, np.ndarray]]:
    pairs = {}
    for n in range(len(i)):
        key = (int(i[n]), int(j[n]), *(int(s) for s in S[n]))
        assert key not in pairs, f"duplicate pair {key}"
        pairs[key] = (float(d[n]), np.asarray(D[n]))
    return pairs


def assert_same_as_ase(atoms: Atoms, cutoff: float, **kwargs) -> int:
    # the random structures here are denser than matter: lift the neighbour bound, which
    # test_limits_* check on their own
    kwargs.setdefault("max_neighbours", 10**6)
    ours = neighbour_list(atoms, cutoff, **kwargs)
    i, j, d, D, S = ours
    assert i.dtype == np.int64 and j.dtype == np.int64 and S.dtype == np.int32
    assert d.shape == i.shape == j.shape and D.shape == S.shape == (len(i), 3)
    ref = ase_neighbor_list("ijdDS", atoms, cutoff, self_interaction=False)
    got, want = as_pairs(*ours), as_pairs(*ref)
    assert got.keys() == want.keys(), (
        f"missing {sorted(set(want) - set(got))[:5]}, extra {sorted(set(got) - set(want))[:5]}"
    )
    for key, (dist, vec) in want.items():
        assert abs(got[key][0] - dist) < TOL, key
        np.testing.assert_allclose(got[key][1], vec, rtol=0, atol=TOL)
    # D = r_j + S·cell − r_i and d = |D| by construction
    pos = atoms.positions
    cell = np.asarray(atoms.cell)
    np.testing.assert_allclose(D, pos[j] + S @ cell - pos[i], rtol=0, atol=1e-10)
    np.testing.assert_allclose(d, np.linalg.norm(D, axis=1), rtol=0, atol=TOL)
    # grouped by centre, in order
    assert np.all(np.diff(i) >= 0)
    return len(i)


def random_cell(rng: np.random.Generator, scale: float) -> np.ndarray:
    while True:
        cell = scale * (np.eye(3) + rng.uniform(-0.4, 0.4, (3, 3)))
        if abs(np.linalg.det(cell)) > 0.3 * scale**3:
            return cell


@pytest.mark.parametrize("n_atoms", [2, 30, 129, 400])
@pytest.mark.parametrize("zero_cell", [True, False])
def test_random_molecules(n_atoms: int, zero_cell: bool) -> None:
    rng = np.random.default_rng(n_atoms)
    positions = rng.uniform(-1, 1, (n_atoms, 3)) * n_atoms ** (1 / 3) * 1.5
    cell = None if zero_cell else np.diag([3.0, 4.0, 5.0])  # ignored: pbc is False
    atoms = Atoms("C" * n_atoms, positions=positions, cell=cell, pbc=False)
    for cutoff in (0.5, 2.0, 4.5, 50.0 if n_atoms < 200 else 9.0):
        assert_same_as_ase(atoms, cutoff)


def test_real_molecule() -> None:
    atoms = molecule("C60")
    n = assert_same_as_ase(atoms, 1.6)
    assert n == 60 * 3
    assert_same_as_ase(atoms, 6.0)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("cutoff", [1.0, 3.0, 7.5, 13.0])
def test_random_triclinic(seed: int, cutoff: float) -> None:
    rng = np.random.default_rng(100 + seed)
    n_atoms = int(rng.integers(1, 40))
    cell = random_cell(rng, rng.uniform(3.0, 9.0))
    atoms = Atoms("Si" * n_atoms, cell=cell, pbc=True)
    atoms.set_scaled_positions(rng.uniform(0, 1, (n_atoms, 3)))
    assert_same_as_ase(atoms, cutoff)


def test_cutoff_larger_than_cell_images_of_self() -> None:
    atoms = Atoms("Cu", positions=[[0.1, 0.2, 0.3]], cell=np.diag([2.0, 2.5, 3.0]), pbc=True)
    i, j, d, D, S = neighbour_list(atoms, 5.1)
    assert np.all(i == 0) and np.all(j == 0) and np.all(np.any(S != 0, axis=1))
    assert_same_as_ase(atoms, 5.1)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("cutoff", [2.5, 6.0, 11.0])
def test_unwrapped_positions(seed: int, cutoff: float) -> None:
    rng = np.random.default_rng(200 + seed)
    n_atoms = 25
    cell = random_cell(rng, 5.0)
    frac = rng.uniform(-3.0, 4.0, (n_atoms, 3))  # up to several cells outside
    atoms = Atoms("O" * n_atoms, positions=frac @ cell, cell=cell, pbc=True)
    assert_same_as_ase(atoms, cutoff)


@pytest.mark.parametrize(
    "pbc", [(True, True, False), (False, True, True), (True, False, False), (False, False, True)]
)
@pytest.mark.parametrize("zero_vectors", [True, False])
@pytest.mark.parametrize("cutoff", [2.0, 5.5, 9.0])
def test_partial_pbc(pbc: tuple[bool, bool, bool], zero_vectors: bool, cutoff: float) -> None:
    rng = np.random.default_rng(sum(pbc) + 10 * zero_vectors)
    n_atoms = 60
    cell = random_cell(rng, 6.0)
    # atoms spread beyond the cell along every axis, periodic ones included
    positions = rng.uniform(-1.0, 2.5, (n_atoms, 3)) @ cell
    if zero_vectors:
        cell[~np.array(pbc)] = 0.0
    atoms = Atoms("N" * n_atoms, positions=positions, cell=cell, pbc=pbc)
    assert_same_as_ase(atoms, cutoff)


def test_slab_partial_pbc_real_structure() -> None:
    from ase.build import fcc111

    atoms = fcc111("Pt", size=(3, 3, 4), vacuum=6.0)
    atoms.pbc = (True, True, False)
    atoms.positions[:, 2] += 20.0  # outside the cell along the non-periodic axis
    assert_same_as_ase(atoms, 3.0)
    assert_same_as_ase(atoms, 7.0)


@pytest.mark.parametrize("cutoff", [2.6, 3.9, 6.0])
def test_silicon_supercell(cutoff: float) -> None:
    atoms = bulk("Si", "diamond", a=5.43).repeat((4, 3, 3))
    atoms.rattle(0.05, seed=3)
    n = assert_same_as_ase(atoms, cutoff)
    if cutoff == 2.6:
        assert n == 4 * len(atoms)


def test_simple_cubic_coordination() -> None:
    atoms = Atoms("Po", positions=[[0, 0, 0]], cell=np.eye(3) * 2.0, pbc=True)
    # shells of a simple cubic lattice: 6, 12, 8, 6 neighbours at a·(1, √2, √3, 2)
    for cutoff, count in [(2.1, 6), (2.9, 18), (3.5, 26), (4.1, 32)]:
        i, *_ = neighbour_list(atoms, cutoff)
        assert len(i) == count


def test_centres_subset() -> None:
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(3)
    atoms.rattle(0.1, seed=1)
    full = as_pairs(*neighbour_list(atoms, 4.0))
    i, *_ = neighbour_list(atoms, 4.0, centres=np.array([17, 3, 3, 90, 0]))
    # grouped by centre in the order given; a repeated centre is listed twice
    runs = [int(c) for n, c in enumerate(i) if n == 0 or i[n - 1] != c]
    assert runs == [17, 3, 90, 0]
    assert np.sum(i == 3) == 2 * sum(1 for k in full if k[0] == 3)
    sub = as_pairs(*neighbour_list(atoms, 4.0, centres=[17, 3, 90, 0]))
    assert set(sub) == {k for k in full if k[0] in (17, 3, 90, 0)}
    for key, (dist, vec) in sub.items():
        assert dist == full[key][0]
        np.testing.assert_array_equal(vec, full[key][1])
    empty = neighbour_list(atoms, 4.0, centres=np.array([], dtype=np.int64))
    assert all(len(a) == 0 for a in empty)


@pytest.mark.parametrize("n_threads", [1, 2, 3])
def test_threads_give_identical_lists(n_threads: int) -> None:
    atoms = bulk("Si", "diamond", a=5.43).repeat((6, 6, 6))
    atoms.rattle(0.05, seed=5)
    ref = neighbour_list(atoms, 5.0, n_threads=1)
    got = neighbour_list(atoms, 5.0, n_threads=n_threads)
    for a, b in zip(ref, got, strict=True):
        np.testing.assert_array_equal(a, b)


def test_empty_structure() -> None:
    i, j, d, D, S = neighbour_list(Atoms(), 3.0)
    assert len(i) == 0 and D.shape == (0, 3) and S.shape == (0, 3)


@pytest.mark.parametrize("cutoff", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_cutoff(cutoff: float) -> None:
    with pytest.raises(ValueError, match="cutoff"):
        neighbour_list(molecule("H2O"), cutoff)


def test_singular_cell() -> None:
    atoms = Atoms("H2", positions=[[0, 0, 0], [0.5, 0, 0]], cell=np.eye(3), pbc=True)
    atoms.cell[2] = atoms.cell[0] + atoms.cell[1]
    with pytest.raises(ValueError, match="singular"):
        neighbour_list(atoms, 2.0)
    atoms.cell[2] = 0.0
    with pytest.raises(ValueError):
        neighbour_list(atoms, 2.0)
    atoms.pbc = (True, True, False)  # the zero vector is not periodic: fine
    assert_same_as_ase(atoms, 2.0)


def test_non_finite_positions() -> None:
    atoms = molecule("CH4")
    atoms.positions[2, 1] = np.nan
    with pytest.raises(ValueError, match="finite"):
        neighbour_list(atoms, 2.0)


def test_centre_out_of_range() -> None:
    with pytest.raises(ValueError):
        neighbour_list(molecule("H2O"), 2.0, centres=[3])
    with pytest.raises(ValueError):
        neighbour_list(molecule("H2O"), 2.0, centres=[-1])


# -- limits (xanesnet.descriptors.limits): refused before anything is allocated -----------------

DEGENERATE_CELLS = {
    "short vector": [[1e-3, 0, 0], [0, 10, 0], [0, 0, 10]],
    "0.3 Å cube": np.eye(3) * 0.3,
    "nearly singular": [[10, 0, 0], [9.9999, 0.001, 0], [0, 0, 10]],
}


@pytest.mark.parametrize("name", sorted(DEGENERATE_CELLS))
def test_limits_degenerate_cells_are_refused(name: str) -> None:
    atoms = Atoms("Fe", cell=DEGENERATE_CELLS[name], pbc=True)
    with pytest.raises(ValueError, match="too small or too skewed for the cutoff"):
        neighbour_list(atoms, 6.0)


def test_limits_far_atoms_and_huge_cells_are_refused() -> None:
    far = Atoms("FeO", positions=[[0, 0, 0], [1e20, 0, 0]], cell=np.eye(3) * 20)
    far.pbc = (False, True, False)
    with pytest.raises(ValueError, match="atom 1 lies too far from the origin"):
        neighbour_list(far, 6.0)
    huge = Atoms("Fe", cell=np.eye(3) * 1e300, pbc=True)
    with pytest.raises(ValueError, match="lattice vector component of 1e\\+300"):
        neighbour_list(huge, 6.0)


def test_limits_neighbours_per_centre() -> None:
    atoms = Atoms("Po", positions=[[0, 0, 0]], cell=np.eye(3) * 2.0, pbc=True)
    assert len(neighbour_list(atoms, 3.5, max_neighbours=26)[0]) == 26
    with pytest.raises(ValueError, match="atom 0 has more than 25 neighbours"):
        neighbour_list(atoms, 3.5, max_neighbours=25)
    # default: what matter can hold (1 atom/Å³); a 0.8 Å simple cubic lattice holds ~1770
    dense = Atoms("H", cell=np.eye(3) * 0.8, pbc=True)
    with pytest.raises(ValueError, match="more than 905 neighbours"):
        neighbour_list(dense, 6.0)
