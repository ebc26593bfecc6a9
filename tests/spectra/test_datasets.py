"""Training pairs from FEFF folders, the FDMNES layout and CSV tables (one abstraction)."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import EXAMPLES, SHARED_DATA, TEST_DATA

from xanesnet.datasets import (
    SpectrumPair,
    detect_spectrum_format,
    fdmnes_pairs,
    feff_pairs,
    load_dataset,
    load_pairs,
    pair_descriptors,
    read_pair_spectrum,
    read_pair_structure,
    table_pairs,
    training_pairs,
)
from xanesnet.descriptors.wacsf import WACSF
from xanesnet.io.feff import read_xmu
from xanesnet.spectra import omnixas_target, resample_feff

FEFF_DATA = TEST_DATA / "feff"
DESCRIPTOR = WACSF(r_max=5.0, n_g2=8, n_g4=8)
RELATIVE_GRID = np.linspace(-10.0, 60.0, 71)


@pytest.fixture()
def fdmnes_folders(tmp_path):
    xyz, xanes = tmp_path / "xyz", tmp_path / "xanes"
    xyz.mkdir()
    shutil.copytree(TEST_DATA / "spectra" / "processed", xanes)
    for spectrum in xanes.glob("*.txt"):
        shutil.copy(EXAMPLES / f"{spectrum.stem}.xyz", xyz)
    return xyz, xanes


def test_feff_pairs_from_index_and_from_folders_agree():
    indexed = feff_pairs(FEFF_DATA)
    walked = feff_pairs(FEFF_DATA, use_index=False)
    assert [p.name for p in indexed] == [p.name for p in walked]
    assert [p.name for p in indexed] == [
        "mp-1196135_012",
        "mp-1196135_016",
        "mp-1196135_020",
        "mp-1211660_002",
        "mp-1212085_004",
    ]
    for a, b in zip(indexed, walked):
        assert (a.structure, a.spectrum, a.absorber, a.group) == (
            b.structure,
            b.spectrum,
            b.absorber,
            b.group,
        )
        assert a.structure.name == "POSCAR" and a.spectrum_format == "feff"
    assert indexed[3].tags["omnixas_split"] == "val"
    assert [p.name for p in feff_pairs(FEFF_DATA, names=["mp-1211660_002"])] == ["mp-1211660_002"]
    with pytest.raises(ValueError, match="not in the data"):
        feff_pairs(FEFF_DATA, names=["mp-0_000"])


def test_feff_pairs_fall_back_to_the_cluster_without_poscar(tmp_path):
    site = tmp_path / "Cu" / "mp-1211660" / "FEFF-XANES" / "002_Cu"
    shutil.copytree(FEFF_DATA / "Cu" / "mp-1211660" / "FEFF-XANES" / "002_Cu", site)
    (pair,) = feff_pairs(tmp_path)
    assert pair.structure.name == "feff.inp" and pair.absorber == 0
    atoms = read_pair_structure(pair)
    assert atoms.numbers[0] == 29 and not atoms.pbc.any()


def test_crystal_structure_and_absorber():
    for pair in feff_pairs(FEFF_DATA):
        atoms = read_pair_structure(pair)
        assert atoms.pbc.all()
        assert atoms.numbers[pair.absorber] == 29
        assert read_xmu(pair.spectrum).absorber_z == 29


def test_feff_spectra_on_relative_and_absolute_grids():
    pairs = feff_pairs(FEFF_DATA)
    for pair in pairs:
        xmu = read_xmu(pair.spectrum)
        relative = read_pair_spectrum(pair, RELATIVE_GRID, relative=True)
        np.testing.assert_array_equal(relative, resample_feff(xmu, RELATIVE_GRID, relative=True))
        absolute = read_pair_spectrum(pair, xmu.e0 + RELATIVE_GRID)
        np.testing.assert_allclose(absolute, relative, atol=1e-12)
        np.testing.assert_array_equal(
            read_pair_spectrum(pair, np.linspace(8983.173, 9018.173, 141), feff_target="omnixas"),
            omnixas_target(xmu),
        )
    with pytest.raises(ValueError, match="feff_target"):
        read_pair_spectrum(pairs[0], RELATIVE_GRID, feff_target="chi")


def test_load_pairs_feff(tmp_path):
    pairs = feff_pairs(FEFF_DATA)
    data = load_pairs(
        pairs, DESCRIPTOR, RELATIVE_GRID, relative=True, cache_dir=tmp_path, n_threads=1
    )
    assert data.features.shape == (5, DESCRIPTOR.n_features)
    assert data.spectra.shape == (5, RELATIVE_GRID.size)
    assert data.relative and data.absorbers == (12, 16, 20, 2, 4)
    assert data.groups == ("mp-1196135",) * 3 + ("mp-1211660", "mp-1212085")
    # The three sites of one material share one structure read; each row equals the
    # descriptor of that site computed alone.
    for row, pair in enumerate(pairs):
        alone, _ = DESCRIPTOR.compute([read_pair_structure(pair)], [[pair.absorber]], n_threads=1)
        np.testing.assert_array_equal(data.features[row], alone[0])
    # Whole materials go together.
    part = data.group_subset(["mp-1196135"])
    assert part.names == data.names[:3] and part.groups == data.groups[:3]
    np.testing.assert_array_equal(part.spectra, data.spectra[:3])
    # A second load comes from the cache.
    assert len(list(tmp_path.glob("wacsf-pairs-*.npz"))) == 1
    again = load_pairs(pairs, DESCRIPTOR, RELATIVE_GRID, relative=True, cache_dir=tmp_path)
    np.testing.assert_array_equal(again.features, data.features)
    assert len(list(tmp_path.glob("wacsf-pairs-*.npz"))) == 1


def test_fdmnes_layout_through_pairs_equals_load_dataset(fdmnes_folders, tmp_path):
    xyz, xanes = fdmnes_folders
    reference = load_dataset(xyz, xanes, DESCRIPTOR, cache_dir=tmp_path / "a", n_threads=1)
    pairs = fdmnes_pairs(xyz, xanes)
    assert pairs == training_pairs((xyz, xanes))
    data = load_pairs(pairs, DESCRIPTOR, cache_dir=tmp_path / "b", n_threads=1)
    assert data.names == reference.names
    np.testing.assert_array_equal(data.features, reference.features)
    np.testing.assert_array_equal(data.spectra, reference.spectra)
    np.testing.assert_array_equal(data.energies, reference.energies)
    assert not data.relative
    # A subset keeps the extra columns aligned.
    part = data.subset([data.names[2], data.names[0]])
    assert part.absorbers == (0, 0) and part.groups == (data.names[2], data.names[0])


def test_spectrum_format_detection():
    assert detect_spectrum_format(FEFF_DATA / feff_pairs(FEFF_DATA)[0].spectrum) == "feff"
    raw = TEST_DATA / "spectra" / "raw" / "ACNCFE_C16H8FeO4.txt"
    processed = TEST_DATA / "spectra" / "processed" / "ACNCFE_C16H8FeO4.txt"
    assert detect_spectrum_format(raw) == "fdmnes"
    assert detect_spectrum_format(processed) == "processed"


def _write_table(path: Path, rows: list[dict[str, str]]) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_table_of_pairs_mixed_formats(tmp_path):
    shutil.copytree(FEFF_DATA / "Cu", tmp_path / "Cu")
    shutil.copy(TEST_DATA / "spectra" / "raw" / "ACNCFE_C16H8FeO4.txt", tmp_path / "fe_raw.txt")
    shutil.copy(EXAMPLES / "ACNCFE_C16H8FeO4.xyz", tmp_path / "fe.xyz")
    feff = feff_pairs(FEFF_DATA)
    rows = [
        {
            "structure": str(p.structure.relative_to(FEFF_DATA)),
            "spectrum": str(p.spectrum.relative_to(FEFF_DATA)),
            "absorber": str(p.absorber),
            "name": p.name,
            "group": p.group,
            "note": "cu",
        }
        for p in feff
    ]
    rows.append(
        {
            "structure": "fe.xyz",
            "spectrum": "fe_raw.txt",
            "absorber": "",
            "name": "",
            "group": "",
            "note": "",
        }
    )
    pairs = table_pairs(_write_table(tmp_path / "pairs.csv", rows))
    assert training_pairs(tmp_path / "pairs.csv") == pairs
    assert [p.spectrum_format for p in pairs] == ["feff"] * 5 + ["fdmnes"]
    assert pairs[-1].name == "fe" and pairs[-1].absorber == 0 and pairs[0].tags == {"note": "cu"}
    assert pairs[-1].structure == tmp_path / "fe.xyz"
    data = load_pairs(
        pairs, DESCRIPTOR, RELATIVE_GRID, relative=True, cache_dir=tmp_path, n_threads=1
    )
    folders = load_pairs(feff, DESCRIPTOR, RELATIVE_GRID, relative=True, cache_dir=tmp_path)
    np.testing.assert_array_equal(data.features[:5], folders.features)
    np.testing.assert_array_equal(data.spectra[:5], folders.spectra)
    assert data.groups[:5] == folders.groups and data.groups[5] == "fe"
    assert data.spectra[5, 0] < data.spectra[5, -1]  # Fe: pre-edge below post-edge


@pytest.mark.parametrize(
    ("row", "error", "message"),
    [
        ({"structure": "fe.xyz"}, ValueError, "missing column"),
        (
            {"structure": "nope.xyz", "spectrum": "fe.txt"},
            FileNotFoundError,
            "line 2: file not found",
        ),
        (
            {"structure": "fe.xyz", "spectrum": "fe.txt", "absorber": "x"},
            ValueError,
            "line 2: absorber",
        ),
        ({"structure": "fe.xyz", "spectrum": "fe.txt", "absorber": "-1"}, ValueError, "negative"),
        (
            {"structure": "fe.xyz", "spectrum": "fe.txt", "spectrum_format": "xdi"},
            ValueError,
            "spectrum_format",
        ),
    ],
)
def test_table_errors_name_the_line(tmp_path, row, error, message):
    shutil.copy(EXAMPLES / "ACNCFE_C16H8FeO4.xyz", tmp_path / "fe.xyz")
    shutil.copy(TEST_DATA / "spectra" / "processed" / "ACNCFE_C16H8FeO4.txt", tmp_path / "fe.txt")
    table = _write_table(tmp_path / "pairs.csv", [row])
    with pytest.raises(error, match=message) as info:
        table_pairs(table)
    assert str(table) in str(info.value)


def test_table_duplicate_names(tmp_path):
    shutil.copy(EXAMPLES / "ACNCFE_C16H8FeO4.xyz", tmp_path / "fe.xyz")
    shutil.copy(TEST_DATA / "spectra" / "processed" / "ACNCFE_C16H8FeO4.txt", tmp_path / "fe.txt")
    row = {"structure": "fe.xyz", "spectrum": "fe.txt"}
    with pytest.raises(ValueError, match="appears twice"):
        table_pairs(_write_table(tmp_path / "pairs.csv", [row, row]))


def test_bad_pairs_are_reported_and_skipped(tmp_path):
    pairs = feff_pairs(FEFF_DATA)
    out_of_range = SpectrumPair(
        "bad_site", pairs[0].structure, pairs[0].spectrum, 999, "feff", "vasp"
    )
    broken = tmp_path / "xmu.dat"
    broken.write_text("# header only\n")
    no_rows = SpectrumPair("no_rows", pairs[0].structure, broken, 12, "feff", "vasp")
    failures: dict[str, str] = {}
    data = load_pairs(
        [*pairs, out_of_range, no_rows],
        DESCRIPTOR,
        RELATIVE_GRID,
        relative=True,
        cache_dir=tmp_path,
        on_error=lambda pair, error: failures.__setitem__(pair.name, str(error)),
    )
    assert data.names == tuple(p.name for p in pairs)
    assert set(failures) == {"bad_site", "no_rows"}
    assert "absorber index 999 out of range" in failures["bad_site"]
    assert str(broken) in failures["no_rows"]
    with pytest.raises(ValueError, match="out of range"):
        load_pairs([out_of_range], DESCRIPTOR, RELATIVE_GRID, relative=True, cache_dir=tmp_path)


def test_processed_spectra_have_no_edge_energy(fdmnes_folders):
    pair = fdmnes_pairs(*fdmnes_folders)[0]
    with pytest.raises(ValueError, match="no edge energy"):
        read_pair_spectrum(pair, RELATIVE_GRID, relative=True)


def test_pair_descriptors_match_load(tmp_path):
    pairs = feff_pairs(FEFF_DATA)[:3]
    features = pair_descriptors(DESCRIPTOR, pairs, cache_dir=tmp_path, n_threads=1)
    reordered = pair_descriptors(DESCRIPTOR, pairs[::-1], cache_dir=tmp_path, n_threads=1)
    np.testing.assert_array_equal(reordered, features[::-1])


def test_feff_train_export_load_predict_round_trip(tmp_path):
    """FEFF folders -> training set (OmniXAS targets) -> model file -> predictions from the
    POSCAR cells; symmetry-unique prediction + expansion equals predicting every site."""
    from ase.build import bulk

    from xanesnet.descriptors.symmetry import unique_absorbers
    from xanesnet.model import NetworkConfig, TrainConfig, load_model, save_model, train_ensemble
    from xanesnet.spectra import OMNIXAS_CU_GRID

    pairs = feff_pairs(FEFF_DATA)
    data = load_pairs(
        pairs, DESCRIPTOR, OMNIXAS_CU_GRID, feff_target="omnixas", cache_dir=tmp_path, n_threads=1
    )
    config = TrainConfig(network=NetworkConfig(hidden=(8,)), epochs=2, batch_size=2, n_members=2)
    ensemble, _ = train_ensemble(data.features, data.spectra, None, None, config)
    path = tmp_path / "cu.pt"
    save_model(
        ensemble, path, descriptor=DESCRIPTOR, energies=OMNIXAS_CU_GRID, e0=8979.0, element="Cu"
    )
    model = load_model(path)
    np.testing.assert_allclose(model.energies, OMNIXAS_CU_GRID)
    reference = model.predict_features(data.features, n_threads=1)[0]
    # From the structures: one POSCAR per material, its sites as absorber lists.
    materials = list(dict.fromkeys(p.group for p in pairs))
    cells = [read_pair_structure(next(p for p in pairs if p.group == m)) for m in materials]
    absorbers = [[p.absorber for p in pairs if p.group == m] for m in materials]
    predicted = model.predict(cells, absorbers, n_threads=1)
    np.testing.assert_array_equal(predicted.index[:, 1], data.absorbers)
    # Same descriptors, same float32 networks: equal to float32 rounding.
    np.testing.assert_allclose(
        predicted.spectra, reference, rtol=1e-5, atol=1e-6 * np.abs(reference).max()
    )
    # A crystal with equivalent Cu sites: predict the unique ones and expand.
    crystal = bulk("NaCl", "rocksalt", a=5.42, cubic=True).repeat((2, 1, 1))
    crystal.symbols[crystal.symbols == "Na"] = "Cu"
    crystal.symbols[1] = "Br"  # lowers the symmetry: several Cu orbits
    (unique,), (sites,) = unique_absorbers([crystal], "Cu")
    assert 1 < sites.n_unique < 8 and sites.multiplicities.sum() == 8
    every = model.predict(crystal, [sites.candidates.tolist()], n_threads=1).spectra
    once = model.predict(crystal, [unique], n_threads=1).spectra
    tolerance = 1e-6 * np.abs(every).max()
    np.testing.assert_allclose(sites.expand(once), every, rtol=1e-5, atol=tolerance)
    np.testing.assert_allclose(
        sites.weighted_mean(once), every.mean(axis=0), rtol=1e-5, atol=tolerance
    )


@pytest.mark.shared_data
@pytest.mark.slow
def test_whole_cu_set_as_pairs():
    """index.csv and the folder walk list the same 4,831 sites; every absorber is a Cu atom."""
    source = SHARED_DATA / "cu_k_edge_feff_omnixas"
    if not source.is_dir():
        pytest.skip("../shared not present")
    pairs = feff_pairs(source)
    assert len(pairs) == 4831 and len({p.group for p in pairs}) == 2195
    assert [p.name for p in feff_pairs(source, use_index=False)] == [p.name for p in pairs]
    cells: dict[str, object] = {}
    for pair in pairs:
        if pair.group not in cells:
            cells[pair.group] = read_pair_structure(pair)
        assert cells[pair.group].numbers[pair.absorber] == 29, pair.name
