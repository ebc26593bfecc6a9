"""Focused tests of the Numba wACSF kernel (``xanesnet.descriptors._numba_batch.wacsf_batch``).

Periodic cases are checked against a brute-force NumPy loop over a generous range of images;
errors against the messages of the C++ backend (and against the C++ backend itself when it is
built). No data from ../shared is needed.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from ase import Atoms

numba = pytest.importorskip("numba")

from xanesnet.descriptors import _numba_batch, _numba_neighbours  # noqa: E402
from xanesnet.descriptors.packing import pack_structures  # noqa: E402
from xanesnet.descriptors.reference import wacsf_numpy  # noqa: E402
from xanesnet.descriptors.wacsf import WACSF  # noqa: E402

try:
    from xanesnet import _core
except ImportError:  # the compiled core is optional here
    _core = None


def kernel_args(config: WACSF, batch, n_threads: int = 1, **params) -> dict:
    """Keyword arguments of either backend's wacsf_batch; ``params`` override kernel_params."""
    return dict(
        positions=batch.positions,
        numbers=batch.numbers,
        atom_offsets=batch.atom_offsets,
        cells=batch.cells,
        pbc=batch.pbc,
        site_structures=batch.site_structures,
        site_atoms=batch.site_atoms,
        params={**config.kernel_params(), **params},
        n_threads=n_threads,
    )


def brute_force(config: WACSF, atoms: Atoms, centre: int, images: int = 5) -> np.ndarray:
    """wACSF of one site from every image within ``images`` shifts on each periodic axis."""
    pos = atoms.get_positions()
    cell = np.asarray(atoms.get_cell())
    ranges = [range(-images, images + 1) if p else range(1) for p in atoms.get_pbc()]
    vectors, numbers = [], []
    for shift in itertools.product(*ranges):
        v = pos + np.asarray(shift, dtype=float) @ cell - pos[centre]
        d = np.linalg.norm(v, axis=1)
        for j in np.nonzero(d < config.r_max)[0]:
            if j == centre and not any(shift):
                continue
            vectors.append(v[j])
            numbers.append(atoms.numbers[j])
    out = np.zeros(config.n_descriptor_features)
    if not vectors:
        return out
    v = np.array(vectors)
    r = np.linalg.norm(v, axis=1)
    w = config.weight_scale * np.array(numbers, dtype=float)
    r_max = config.r_max
    fc = 0.5 * (np.cos(np.pi * r / r_max) + 1.0)
    out[0] = fc.sum()
    for m, (eta, mu) in enumerate(zip(config.g2_eta, config.g2_mu, strict=True)):
        out[1 + m] = np.sum(w * np.exp(-eta * (r - mu) ** 2) * fc)
    col = 1 + config.n_g2
    n = len(r)
    for eta, mu in zip(config.g4_eta, config.g4_mu, strict=True):
        for lam in config.lambdas:
            for zeta in config.zetas:
                total = 0.0
                for j in range(n):
                    for k in range(j + 1, n):
                        rjk = np.linalg.norm(v[k] - v[j])
                        fcjk = 0.5 * (np.cos(np.pi * rjk / r_max) + 1.0)
                        if config.rjk_cutoff == "zero" and rjk >= r_max:
                            fcjk = 0.0
                        cos_t = v[j] @ v[k] / (r[j] * r[k])
                        ang = max(1.0 + lam * cos_t, 0.0) ** zeta
                        radial = np.exp(-eta * ((r[j] - mu) ** 2 + (r[k] - mu) ** 2))
                        radial *= np.exp(-eta * (rjk - mu) ** 2)
                        total += w[j] * w[k] * fc[j] * fc[k] * fcjk * ang * radial
                out[col] = 2.0 ** (1.0 - zeta) * total
                col += 1
    return out


SMALL = WACSF(n_g2=4, n_g4=8)
SMALL_ZETAS = WACSF(r_min=0.0, r_max=4.5, n_g2=3, n_g4=12, zetas=(1.0, 2.5, 4.0))


def periodic_cases() -> list[tuple[str, Atoms]]:
    rng = np.random.default_rng(7)
    tri = np.array([[3.1, 0.0, 0.0], [0.9, 2.8, 0.0], [-0.6, 0.7, 3.3]])
    return [
        # cutoff (6 Å) well beyond the cell: many images of every atom, also of the centre
        ("triclinic_small", Atoms("FeO", scaled_positions=[[0, 0, 0], [0.4, 0.5, 0.45]],
                                  cell=tri, pbc=True)),
        # unwrapped positions, far outside the cell
        ("unwrapped", Atoms("FeNO", scaled_positions=[[2.3, -1.6, 0.2], [-0.8, 0.4, 3.6],
                                                      [0.5, 0.5, 0.5]], cell=tri, pbc=True)),
        ("slab_pbc_xy", Atoms("FeOC", positions=[[0, 0, 0], [1.5, 0.3, 1.1], [0.2, 1.9, -1.3]],
                              cell=[[3.5, 0, 0], [1.0, 3.2, 0], [0, 0, 10.0]],
                              pbc=[True, True, False])),
        ("wire_pbc_z", Atoms("FeS", positions=[[0, 0, 0], [1.2, 0.8, 1.0]],
                             cell=[[8.0, 0, 0], [0, 8.0, 0], [0.5, 0.3, 2.4]],
                             pbc=[False, False, True])),
        ("random_triclinic", Atoms(numbers=[26, 8, 6, 1, 26],
                                   scaled_positions=rng.uniform(-0.5, 1.5, (5, 3)),
                                   cell=tri * 1.4, pbc=True)),
    ]  # fmt: skip


@pytest.mark.parametrize("cell_list", [False, True], ids=["scan", "cell_list"])
@pytest.mark.parametrize("config", [SMALL, SMALL_ZETAS, WACSF(n_g2=2, n_g4=4, rjk_cutoff="raw")])
@pytest.mark.parametrize("case", periodic_cases(), ids=lambda c: c[0])
def test_periodic_images_match_brute_force(case, config, cell_list, monkeypatch):
    _, atoms = case
    monkeypatch.setattr(_numba_neighbours, "CELL_LIST_MIN_ATOMS", 0 if cell_list else 10**9)
    batch = pack_structures([atoms], "Fe")
    features, status, close_pair, close_distance = _numba_batch.wacsf_batch(
        **kernel_args(config, batch)
    )
    assert status.dtype == np.int32 and close_pair.dtype == np.int64
    assert np.all(status == 0)
    assert np.all(close_pair == -1) and np.all(close_distance == 0.0)
    for row, centre in zip(features, batch.site_atoms, strict=True):
        expected = brute_force(config, atoms, int(centre))
        np.testing.assert_allclose(row, expected, rtol=1e-10, atol=1e-300)
    assert features[0, 0] > 0


def test_molecule_matches_reference():
    rng = np.random.default_rng(3)
    pos = rng.uniform(-3.5, 3.5, (25, 3))
    numbers = rng.integers(1, 30, 25)
    atoms = Atoms(numbers=numbers, positions=pos)
    for config in (WACSF(), WACSF(rjk_cutoff="raw"), SMALL_ZETAS):
        batch = pack_structures([atoms], [[0, 4, 9]])
        features, status, _, _ = _numba_batch.wacsf_batch(**kernel_args(config, batch))
        assert np.all(status == 0)
        for row, centre in zip(features, (0, 4, 9), strict=True):
            with np.errstate(invalid="ignore"):  # the reference's unclamped (1 + λ cos θ)^ζ
                expected = wacsf_numpy(config, pos, numbers, centre)
            np.testing.assert_allclose(row, expected, rtol=1e-10, atol=1e-300)


def test_isolated_atom_and_empty_sphere_give_zeros():
    atoms = Atoms("FeO", positions=[[0, 0, 0], [7.0, 0, 0]])
    batch = pack_structures([atoms], [[0, 1]])
    features, status, _, _ = _numba_batch.wacsf_batch(**kernel_args(SMALL, batch))
    assert features.shape == (2, SMALL.n_descriptor_features)
    assert np.all(features == 0.0) and np.all(status == 0)


def test_close_pairs_reported():
    # site 0: neighbour 1 at 0.05 Å from the centre; site 1 (centre 3): neighbours 4 and 5 are
    # 0.06 Å apart (closer than any centre distance)
    mol_a = Atoms("FeOC", positions=[[0, 0, 0], [0.05, 0, 0], [1.5, 0, 0]])
    mol_b = Atoms("CFeNN", positions=[[5, 5, 5], [0, 0, 0], [1.0, 1.0, 0], [1.0, 1.06, 0]])
    ok = Atoms("FeO", positions=[[0, 0, 0], [1.8, 0, 0]])
    batch = pack_structures([mol_a, mol_b, ok], [[0], [1], [0]])
    features, status, close_pair, close_distance = _numba_batch.wacsf_batch(
        **kernel_args(SMALL, batch)
    )
    assert status.tolist() == [1, 1, 0]
    assert close_pair.tolist() == [[0, 1], [2, 3], [-1, -1]]
    np.testing.assert_allclose(close_distance[:2], [0.05, 0.06], rtol=1e-12)
    assert close_distance[2] == 0.0
    assert np.all(features[:2] == 0.0) and np.any(features[2] != 0.0)
    # the centre's own periodic image too close: a tiny periodic cell
    tiny = Atoms("Fe", positions=[[0, 0, 0]], cell=np.diag([0.08, 5.0, 5.0]), pbc=True)
    batch = pack_structures([tiny], 0)
    _, status, close_pair, close_distance = _numba_batch.wacsf_batch(**kernel_args(SMALL, batch))
    assert status.tolist() == [1] and close_pair.tolist() == [[0, 0]]
    np.testing.assert_allclose(close_distance, [0.08], rtol=1e-12)


def test_threads_give_same_result_and_setting_is_restored():
    rng = np.random.default_rng(5)
    mols = [Atoms(numbers=rng.integers(1, 30, 20), positions=rng.uniform(-3, 3, (20, 3)))
            for _ in range(12)]  # fmt: skip
    batch = pack_structures(mols, [list(range(4))] * 12)
    before = numba.get_num_threads()
    one = _numba_batch.wacsf_batch(**kernel_args(SMALL, batch, n_threads=1))
    assert numba.get_num_threads() == before
    for n_threads in (0, 2, 1000):
        other = _numba_batch.wacsf_batch(**kernel_args(SMALL, batch, n_threads=n_threads))
        assert numba.get_num_threads() == before
        for a, b in zip(one, other, strict=True):
            np.testing.assert_array_equal(a, b)


def _bad_inputs():
    atoms = Atoms("FeOC", positions=[[0, 0, 0], [1.5, 0, 0], [0, 1.6, 0]])
    batch = pack_structures([atoms, atoms], 0)
    good = kernel_args(SMALL, batch)
    params = good["params"]
    singular = dict(good, pbc=np.array([[1, 0, 0], [0, 0, 0]], dtype=np.uint8))
    cells = np.array(good["cells"])
    cells[1] = np.diag([3.0, 3.0, 3.0])
    cells[1, 2] = cells[1, 0]

    def with_params(**changes):
        return dict(good, params={**params, **changes})

    missing = dict(good, params={k: v for k, v in params.items() if k != "min_distance"})
    return [
        (dict(good, atom_offsets=np.zeros(0, dtype=np.int64)), "atom_offsets: must not be empty"),
        (dict(good, positions=good["positions"][:, :2]),
         "positions: expected shape (n_atoms, 3), got (6, 2)"),
        (dict(good, positions=good["positions"].ravel()),
         "positions: expected shape (n_atoms, 3), got (18,)"),
        (dict(good, numbers=good["numbers"][:-1]), "numbers: expected shape (n_atoms,), got (5,)"),
        (dict(good, cells=good["cells"][:1]),
         "cells: expected shape (n_structures, 3, 3), got (1, 3, 3)"),
        (dict(good, pbc=good["pbc"][:, :2]), "pbc: expected shape (n_structures, 3), got (2, 2)"),
        (dict(good, site_atoms=good["site_atoms"][:1]),
         "site_atoms: expected shape (n_sites,), got (1,)"),
        (with_params(g2_mu=params["g2_mu"][:-1]), "g2_mu: expected shape (n_g2,), got (3,)"),
        (with_params(g4_mu=params["g4_mu"][:-1]),
         "g4_mu: expected shape (n_g4_radial,), got (3,)"),
        (with_params(channel_weights=np.zeros((1, 5))),
         "channel_weights: expected shape (n_channels, n_elements), got (1, 5)"),
        (with_params(extra=1.0), "params: unknown key 'extra'"),
        (missing, "params: missing 'min_distance'"),
        (with_params(max_neighbours=0), "max_neighbours must be >= 1"),
        (dict(good, atom_offsets=np.array([1, 3, 6])),
         "atom_offsets: must start at 0 and end at n_atoms"),
        (dict(good, atom_offsets=np.array([0, 3, 5])),
         "atom_offsets: must start at 0 and end at n_atoms"),
        (dict(good, atom_offsets=np.array([0, 7, 6])),
         "atom_offsets: must not decrease"),
        (dict(good, n_threads=-1), "n_threads: expected an integer >= 0 (0 = all cores), got -1"),
        (dict(good, site_structures=np.array([0, 2])), "site 1: structure index out of range"),
        (dict(good, site_structures=np.array([-1, 0])), "site 0: structure index out of range"),
        (dict(good, site_atoms=np.array([0, 3])), "site 1: atom index out of range"),
        (dict(good, site_atoms=np.array([-1, 0])), "site 0: atom index out of range"),
        (with_params(r_max=0.0), "r_max must be positive"),
        (with_params(r_max=float("nan")), "r_max must be positive"),
        (with_params(min_distance=0.0), "min_distance must be positive and finite"),
        (with_params(max_images=0.5), "limits: max_images must be >= 1 and max_length > 0"),
        (with_params(zetas=np.array([1.0, 0.0])), "zetas must be positive"),
        (singular, "structure 0: periodic lattice vector is zero"),
        (dict(good, cells=cells, pbc=np.array([[0, 0, 0], [1, 1, 1]], dtype=np.uint8)),
         "structure 1: periodic lattice vectors are singular"),
    ]  # fmt: skip


@pytest.mark.parametrize("args,message", _bad_inputs(), ids=lambda v: str(v)[:40])
def test_kernel_errors(args, message):
    with pytest.raises(ValueError) as info:
        _numba_batch.wacsf_batch(**args)
    assert str(info.value) == message
    if _core is not None:
        with pytest.raises(ValueError) as info_cpp:
            _core.wacsf_batch(**args)
        assert str(info_cpp.value) == message


def test_negative_threads_rejected():
    atoms = Atoms("FeO", positions=[[0, 0, 0], [1.5, 0, 0]])
    args = kernel_args(SMALL, pack_structures([atoms], 0), n_threads=-1)
    with pytest.raises(ValueError, match="n_threads"):
        _numba_batch.wacsf_batch(**args)


def test_no_sites():
    atoms = Atoms("FeO", positions=[[0, 0, 0], [1.5, 0, 0]])
    args = kernel_args(SMALL, pack_structures([atoms], 0))
    args.update(site_structures=np.zeros(0, dtype=np.int64), site_atoms=np.zeros(0, np.int64))
    features, status, close_pair, close_distance = _numba_batch.wacsf_batch(**args)
    assert features.shape == (0, SMALL.n_descriptor_features)
    assert status.shape == (0,) and close_pair.shape == (0, 2) and close_distance.shape == (0,)


@pytest.mark.skipif(_core is None, reason="compiled core not built")
@pytest.mark.parametrize("config", [WACSF(), WACSF(rjk_cutoff="raw"), SMALL_ZETAS])
def test_matches_cpp_on_periodic_and_molecules(config):
    rng = np.random.default_rng(11)
    # "unwrapped" is left out: the C++ placeholder search (csrc/core/neighbours.cpp) scans
    # ceil(r_max / height) + 1 images, which misses images of atoms more than a cell apart
    structures = [atoms for name, atoms in periodic_cases() if name != "unwrapped"]
    structures += [Atoms(numbers=rng.integers(1, 40, 30), positions=rng.uniform(-4, 4, (30, 3)))
                   for _ in range(5)]  # fmt: skip
    batch = pack_structures(structures, [list(range(len(a))) for a in structures])
    args = kernel_args(config, batch)
    got = _numba_batch.wacsf_batch(**args)
    ref = _core.wacsf_batch(**args)
    np.testing.assert_array_equal(got[1], ref[1])
    np.testing.assert_array_equal(got[2], ref[2])
    np.testing.assert_allclose(got[3], ref[3], rtol=1e-14)
    np.testing.assert_allclose(got[0], ref[0], rtol=1e-12, atol=1e-300)


def test_cell_list_equals_scan_on_large_cells(monkeypatch):
    from ase.build import bulk

    rng = np.random.default_rng(2)
    slab = bulk("Fe", "bcc", a=2.87, cubic=True).repeat((6, 5, 4))
    slab.rattle(0.05, seed=3)
    slab.set_pbc([True, False, True])
    skew = bulk("NaCl", "rocksalt", a=5.6).repeat((4, 4, 3))  # triclinic primitive cell
    skew.numbers[::7] = 26
    skew.positions += rng.uniform(-0.1, 0.1, skew.positions.shape)
    skew.positions[::5] += skew.cell[1] * 2  # unwrapped atoms
    batch = pack_structures([slab, skew], "Fe")
    args = kernel_args(SMALL_ZETAS, batch)
    monkeypatch.setattr(_numba_neighbours, "CELL_LIST_MIN_ATOMS", 10**9)
    scan = _numba_batch.wacsf_batch(**args)
    monkeypatch.setattr(_numba_neighbours, "CELL_LIST_MIN_ATOMS", 0)
    binned = _numba_batch.wacsf_batch(**args)
    assert np.all(scan[1] == 0)
    for a, b in zip(scan, binned, strict=True):
        np.testing.assert_array_equal(a, b)
