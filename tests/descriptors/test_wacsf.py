"""wACSF: reference vectors, invariances, periodic images, backend agreement, configuration."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from helpers import BACKENDS, EXAMPLES, TEST_DATA, read_xanesnet_xyz

from xanesnet import WACSF
from xanesnet.descriptors.reference import wacsf_numpy

VARIANTS = {
    "newcastlerse_defaults_rmin1_rmax6_g2_16_g4_32": (WACSF(rjk_cutoff="raw"), 1e-10),
    "conexs_defaults_rmin1_rmax6_g2_16_g4_32": (WACSF(), 1e-10),
    "rankine2025_xanesnet_2021_yaml_rmin0_rmax6_g2_32_g4_64_zeta_1_2_4_8_rawZ": (
        WACSF(r_min=0.0, n_g2=32, n_g4=64, zetas=(1, 2, 4, 8), weight_scale=1.0),
        1e-5,
    ),
}

REFERENCE = json.loads((TEST_DATA / "wacsf" / "wacsf_reference_values.json").read_text())
CASES = [(name, key) for name in sorted(REFERENCE) for key in sorted(REFERENCE[name])]


@pytest.mark.parametrize(("name", "variant"), CASES)
def test_reproduces_upstream_reference_vectors(backend, name, variant):
    config, rtol = VARIANTS[variant]
    atoms = read_xanesnet_xyz(EXAMPLES / f"{name}.xyz")
    features, index = config.compute(atoms, absorber=0, backend=backend)
    expected = np.asarray(REFERENCE[name][variant])
    assert features.shape == (1, expected.size) == (1, config.n_features)
    assert index.tolist() == [[0, 0]]
    np.testing.assert_allclose(features[0], expected, rtol=rtol, atol=0)


#: Settings the upstream vectors do not cover: shifted G4 centres (the kernels keep r_j, r_k,
#: r_jk per pair instead of their sum of squares) and element channels with extra G2 grids.
EXTRA_VARIANTS = {
    "shifted_g4_raw_cutoff": WACSF(g4_parameterisation="shifted", rjk_cutoff="raw", n_g4=24),
    "element_channels": WACSF(
        r_min=0.0,
        n_g2=32,
        zetas=(1, 2, 4, 8),
        g2_element_groups=("H", "C", "N", "O", "other"),
        g2_extra_grids=((1.0, 3.5, 24),),
    ),
}


@pytest.mark.parametrize("variant", sorted(VARIANTS) + sorted(EXTRA_VARIANTS))
def test_numpy_reference_matches_kernel(backend, variant, example_structures):
    config = VARIANTS[variant][0] if variant in VARIANTS else EXTRA_VARIANTS[variant]
    structures = example_structures[:10]
    features, _ = config.compute(structures, backend=backend)
    for row, atoms in zip(features, structures):
        expected = wacsf_numpy(config, atoms.positions, atoms.numbers)
        np.testing.assert_allclose(row, expected, rtol=1e-12, atol=1e-300)


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] *= -1
    return q


def test_invariant_under_rotation_translation_permutation(backend, example_structures):
    rng = np.random.default_rng(7)
    config = WACSF()
    for atoms in example_structures[:8]:
        reference, _ = config.compute(atoms, backend=backend)
        moved = atoms.copy()
        moved.positions = atoms.positions @ _random_rotation(rng).T + rng.normal(size=3) * 10
        order = np.concatenate([[0], 1 + rng.permutation(len(atoms) - 1)])
        moved = moved[order]
        features, _ = config.compute(moved, backend=backend)
        np.testing.assert_allclose(features, reference, rtol=1e-10, atol=1e-14)


def _cluster_around(periodic: Atoms, centre: int, radius: float) -> Atoms:
    """The environment of one atom cut from a supercell large enough to hold `radius`."""
    cell = periodic.cell.array
    heights = abs(np.linalg.det(cell)) / np.linalg.norm(
        np.cross(cell[[1, 2, 0]], cell[[2, 0, 1]]), axis=1
    )
    reps = [int(np.ceil(radius / h)) * 2 + 3 if p else 1 for h, p in zip(heights, periodic.pbc)]
    wrapped = periodic.copy()
    wrapped.wrap()
    big = wrapped.repeat(reps)
    middle = np.array([(r // 2) if p else 0 for r, p in zip(reps, periodic.pbc)])
    origin = wrapped.positions[centre] + middle @ cell
    d = np.linalg.norm(big.positions - origin, axis=1)
    keep = np.nonzero(d < radius)[0]
    first = keep[np.argmin(d[keep])]
    keep = np.concatenate([[first], keep[keep != first]])
    cluster = Atoms(numbers=big.numbers[keep], positions=big.positions[keep])
    return cluster


@pytest.mark.parametrize("rjk_cutoff", ["zero", "raw"])
def test_periodic_cell_equals_cluster_cut_from_supercell(backend, rjk_cutoff):
    rng = np.random.default_rng(3)
    # A small triclinic cell: the 6 Å sphere holds many images of every atom, the absorber's too.
    cell = np.array([[3.1, 0.0, 0.0], [0.9, 2.8, 0.0], [0.4, 0.7, 3.3]])
    frac = rng.uniform(size=(4, 3))
    periodic = Atoms(numbers=[26, 8, 6, 1], scaled_positions=frac, cell=cell, pbc=True)
    periodic.positions[2:] += cell[0] * 2  # unwrapped positions must not matter
    config = WACSF(rjk_cutoff=rjk_cutoff)
    features, _ = config.compute(periodic, backend=backend)
    cluster = _cluster_around(periodic, 0, config.r_max + 0.5)
    expected, _ = config.compute(cluster, backend=backend)
    np.testing.assert_allclose(features, expected, rtol=1e-9, atol=1e-12)


def test_partially_periodic_slab_equals_cluster(backend):
    slab = bulk("Fe", "bcc", a=2.87, cubic=True).repeat((1, 1, 3))
    slab.pbc = (True, True, False)
    slab.numbers[1::2] = 8
    config = WACSF()
    features, _ = config.compute(slab, absorber=0, backend=backend)
    expected, _ = config.compute(_cluster_around(slab, 0, config.r_max + 0.5), backend=backend)
    np.testing.assert_allclose(features, expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(
    "config",
    [
        # ζ out of order and repeated: the compiled kernel carries powers over from one ζ to the
        # next and must restart where ζ falls
        WACSF(r_min=0.0, n_g2=4, n_g4=16, zetas=(2, 1, 8, 3)),
        WACSF(r_min=0.0, n_g2=4, n_g4=12, zetas=(1.5, 4, 0.5)),  # non-integer ζ
        WACSF(n_g2=4, n_g4=0),  # no G4: the pairs only serve the close-atom check
    ],
    ids=["unordered_zetas", "fractional_zetas", "no_g4"],
)
def test_backends_agree_on_zeta_orders_and_without_g4(config, example_structures):
    cpp, _ = config.compute(example_structures[:20], backend="cpp", n_threads=2)
    numba, _ = config.compute(example_structures[:20], backend="numba", n_threads=2)
    assert np.all(np.isfinite(cpp)) and np.abs(cpp).max() > 0
    np.testing.assert_allclose(numba, cpp, rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_backends_agree_on_example_set(variant, example_structures):
    config, _ = VARIANTS[variant]
    cpp, cpp_index = config.compute(example_structures, backend="cpp", n_threads=2)
    numba, numba_index = config.compute(example_structures, backend="numba", n_threads=2)
    assert cpp.shape == (100, config.n_features)
    np.testing.assert_array_equal(cpp_index, numba_index)
    np.testing.assert_allclose(numba, cpp, rtol=1e-12, atol=1e-300)


def test_backends_agree_on_periodic_multi_site_structures():
    rng = np.random.default_rng(11)
    structures = []
    for n_atoms, pbc in ((12, (True, True, True)), (9, (True, False, True)), (20, (False,) * 3)):
        cell = np.diag(rng.uniform(3.0, 7.0, size=3)) + rng.uniform(-1, 1, size=(3, 3))
        numbers = rng.choice([1, 6, 8, 26], size=n_atoms)
        numbers[:2] = 26
        atoms = Atoms(numbers=numbers, cell=cell, pbc=pbc)
        # well separated random points: jitter a grid
        grid = np.stack(np.meshgrid(*[np.arange(3)] * 3), -1).reshape(-1, 3)[:n_atoms]
        atoms.set_scaled_positions(grid / 3 + rng.uniform(-0.05, 0.05, size=(n_atoms, 3)))
        structures.append(atoms)
    config = WACSF(zetas=(1, 2), n_g4=32)
    cpp, index = config.compute(structures, absorber="Fe", backend="cpp")
    numba, _ = config.compute(structures, absorber="Fe", backend="numba")
    assert len(index) == sum(int((a.numbers == 26).sum()) for a in structures)
    np.testing.assert_allclose(numba, cpp, rtol=1e-12, atol=1e-300)


def test_thread_count_does_not_change_results(backend, example_structures):
    config = WACSF()
    one, _ = config.compute(example_structures, backend=backend, n_threads=1)
    two, _ = config.compute(example_structures, backend=backend, n_threads=2)
    np.testing.assert_array_equal(one, two)


def test_absorber_selection_forms(backend, example_structures):
    config = WACSF()
    structures = example_structures[:3]
    by_symbol, index = config.compute(structures, absorber="Fe", backend=backend)
    by_index, _ = config.compute(structures, absorber=0, backend=backend)
    np.testing.assert_array_equal(by_symbol, by_index)
    assert index.tolist() == [[0, 0], [1, 0], [2, 0]]
    lists, index = config.compute(structures, absorber=[[0, 1], [2], [0]], backend=backend)
    assert index.tolist() == [[0, 0], [0, 1], [1, 2], [2, 0]]
    np.testing.assert_array_equal(lists[0], by_index[0])
    assert not np.array_equal(lists[1], lists[0])


def test_isolated_atom_gives_zero_vector(backend):
    atoms = Atoms("FeO", positions=[[0, 0, 0], [0, 0, 7.0]])
    features, _ = WACSF().compute(atoms, backend=backend)
    np.testing.assert_array_equal(features, np.zeros((1, 49)))


def test_spin_and_charge_extras(backend, example_structures):
    atoms = example_structures[0].copy()
    atoms.info.update(spin=2.0, charge=-1.0)
    config = WACSF(use_spin=True, use_charge=True)
    features, _ = config.compute(atoms, backend=backend)
    assert features.shape == (1, 51)
    assert features[0, -2:].tolist() == [2.0, -1.0]
    assert config.feature_names[-2:] == ["S", "q"]
    del atoms.info["charge"]
    with pytest.raises(ValueError, match=r"needs the charge in atoms.info\['charge'\]"):
        config.compute(atoms, backend=backend)


def test_config_json_round_trip_and_names():
    config = WACSF(r_min=0.0, n_g2=32, n_g4=64, zetas=(1, 2, 4, 8), weight_scale=1.0)
    assert WACSF.from_json(config.to_json()) == config
    assert WACSF.from_dict(config.to_dict()) == config
    assert config.n_features == 97 == len(config.feature_names)
    names = WACSF().feature_names
    assert names[0] == "G1"
    assert names[1].startswith("G2[mu=1.50")
    assert names[17] == "G4[mu=0.00,eta=0.125,lambda=+1,zeta=1]"
    np.testing.assert_allclose(WACSF().g4_eta, 1 / (2 * np.linspace(2.0, 5.5, 32)[:16] ** 2))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_g4": 30, "zetas": (1, 2)}, "n_g4: 30 is not a multiple"),
        ({"r_max": -1.0}, "r_max"),
        ({"r_min": 7.0}, "r_min"),
        ({"zetas": (0,)}, "zetas"),
        ({"lambdas": (2.0,)}, "lambdas"),
        ({"g2_parameterisation": "odd"}, "parameterisation"),
        ({"rjk_cutoff": "none"}, "rjk_cutoff"),
        ({"min_distance": 0.0}, "min_distance"),
        ({"min_distance": 6.0}, "min_distance"),
        ({"min_distance": float("nan")}, "min_distance"),
    ],
)
def test_bad_configuration(kwargs, message):
    with pytest.raises(ValueError, match=message):
        WACSF(**kwargs)


def test_min_distance_is_part_of_the_configuration():
    config = WACSF(min_distance=0.25)
    data = json.loads(config.to_json())
    assert data["min_distance"] == 0.25
    assert WACSF.from_json(config.to_json()) == config != WACSF()
    # JSON written before the field existed still loads, with the former fixed value
    del data["min_distance"]
    assert WACSF.from_dict(data).min_distance == 0.1 == WACSF().min_distance
    # it decides which sites fail, on every backend, and the message says which distance
    atoms = Atoms("FeO", positions=[[0, 0, 0], [0.2, 0, 0]])
    for backend in BACKENDS:
        WACSF().compute(atoms, backend=backend)
        with pytest.raises(ValueError, match=r"0.2000 Å apart \(closer than 0.25 Å"):
            config.compute(atoms, backend=backend)
    assert config.kernel_params()["min_distance"] == 0.25


def test_packed_fast_path_only_without_structure_metadata():
    assert WACSF().packed_fast_path
    assert not WACSF(use_spin=True).packed_fast_path
    assert not WACSF(use_charge=True).packed_fast_path


def test_from_dict_rejects_unknown_keys():
    data = WACSF().to_dict()
    data["sigma"] = 1
    with pytest.raises(ValueError, match="unknown keys"):
        WACSF.from_dict(data)


GROUPS = ("H", "C", "N", "O", "P,S,Se", "F,Cl,Br,I", "other")


def test_element_channels_match_reference_and_backends(example_structures):
    config = WACSF(r_min=0.0, n_g2=8, n_g4=16, zetas=(1, 2), g2_element_groups=GROUPS)
    assert config.n_features == 1 + 8 + 16 + 7 * 8
    structures = example_structures[:12]
    cpp, _ = config.compute(structures, backend="cpp")
    numba, _ = config.compute(structures, backend="numba")
    np.testing.assert_allclose(numba, cpp, rtol=1e-12, atol=1e-300)
    for row, atoms in zip(cpp, structures, strict=True):
        expected = wacsf_numpy(config, atoms.positions, atoms.numbers)
        np.testing.assert_allclose(row, expected, rtol=1e-12, atol=1e-300)
    # the channels partition the neighbours: with weights 1 they add up to the plain G2 of Z = 1
    channels = cpp[:, 25:].reshape(len(structures), 7, 8).sum(axis=1)
    unweighted, _ = WACSF(r_min=0.0, n_g2=8, n_g4=16, zetas=(1, 2), weight_scale=1.0).compute(
        structures
    )
    assert not np.allclose(channels, unweighted[:, 1:9])  # Z-weighted differs...
    ones = np.ones(119)
    ones[0] = 0
    assert np.allclose(config.group_weights.sum(axis=0)[1:], ones[1:])  # ...the groups cover all


def test_element_channel_names_and_errors():
    config = WACSF(n_g2=2, g2_element_groups=("O", "other"))
    assert config.feature_names[-4:] == [
        "G2[O;mu=1.50,eta=0.03125]",
        "G2[O;mu=5.50,eta=0.03125]",
        "G2[other;mu=1.50,eta=0.03125]",
        "G2[other;mu=5.50,eta=0.03125]",
    ]
    assert WACSF.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="unknown element symbol 'Xq'"):
        WACSF(g2_element_groups=("O,Xq",))
    with pytest.raises(ValueError, match="'other' may appear once"):
        WACSF(g2_element_groups=("other", "other"))


def test_extra_g2_grids_match_reference_and_backends(example_structures):
    config = WACSF(
        r_min=0.0,
        n_g2=8,
        n_g4=16,
        zetas=(1, 2),
        g2_element_groups=GROUPS,
        g2_extra_grids=((1.0, 3.5, 6),),
    )
    assert config.n_g2_total == 14 and config.n_features == 1 + 14 + 16 + 7 * 14
    np.testing.assert_allclose(config.g2_mu[8:], np.linspace(1.5, 3.0, 6))
    np.testing.assert_allclose(config.g2_eta[8:], 1 / (2 * 0.3**2))
    assert config.feature_names[9] == "G2[mu=1.50,eta=5.556]"
    assert WACSF.from_json(config.to_json()) == config
    structures = example_structures[:12]
    cpp, _ = config.compute(structures, backend="cpp")
    numba, _ = config.compute(structures, backend="numba")
    np.testing.assert_allclose(numba, cpp, rtol=1e-12, atol=1e-300)
    for row, atoms in zip(cpp, structures, strict=True):
        expected = wacsf_numpy(config, atoms.positions, atoms.numbers)
        np.testing.assert_allclose(row, expected, rtol=1e-12, atol=1e-300)
    # the main-grid features are unchanged by the extra grid
    plain, _ = WACSF(r_min=0.0, n_g2=8, n_g4=16, zetas=(1, 2), g2_element_groups=GROUPS).compute(
        structures
    )
    np.testing.assert_array_equal(cpp[:, :9], plain[:, :9])
    np.testing.assert_array_equal(cpp[:, 15:31], plain[:, 9:25])


@pytest.mark.parametrize(
    ("grids", "message"),
    [
        (((1.0, 7.0, 4),), "beyond r_max"),
        (((3.0, 1.0, 4),), "r_lo < r_hi"),
        (((1.0, 3.0, 0),), "positive integer"),
        (((1.0, 3.0),), "triples"),
    ],
)
def test_bad_extra_grids(grids, message):
    with pytest.raises(ValueError, match=message):
        WACSF(g2_extra_grids=grids)
