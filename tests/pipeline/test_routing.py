"""Model by absorber element, several elements in one job, symmetry-unique sites of crystals.

Unique sites: each orbit's representative is predicted once and its row copied to the other
sites of the orbit (``UniqueSites.expand``); that equals predicting every site up to float32
rounding (the descriptor rows are bit-identical; the network sees another batch, so its
matrix products may sum in another order: :func:`helpers.float32_atol` over the widest
layer).
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.io import write
from ase.spacegroup import crystal
from helpers import EXAMPLES, float32_atol
from v_complexes import COMPLEXES

from xanesnet import read_predictions
from xanesnet.cli.main import main
from xanesnet.descriptors.symmetry import unique_sites
from xanesnet.model.pretrained import available_models, default_model_path, model_for_absorber
from xanesnet.pipeline.batch import predict_batch

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # crystals: outside the domain

#: widest hidden layer of the shipped networks: the longest float32 sum behind a spectrum
LONGEST_SUM = 512


def _write_extxyz(path, structures):
    write(path, structures, format="extxyz")
    return path


def _mixed_inputs(tmp_path):
    """Fe complexes (examples), V complexes, one structure holding both, one holding neither."""
    folder = tmp_path / "in"
    folder.mkdir()
    for source in sorted(EXAMPLES.glob("*.xyz"))[:4]:
        shutil.copy(source, folder)
    v = [build() for build in COMPLEXES.values()]
    both = Atoms(
        ["Fe", "O", "V", "Cl"],
        positions=[[0, 0, 0], [1.9, 0, 0], [6, 0, 0], [8.1, 0, 0]],
    )
    neither = Atoms(["O", "O"], positions=[[0, 0, 0], [1.2, 0, 0]])
    extra = _write_extxyz(tmp_path / "mixed.extxyz", [*v, both, neither])
    return [str(folder), str(extra)]


def test_model_follows_the_absorber_element():
    assert model_for_absorber(None, None) == default_model_path("Fe", "K")
    assert model_for_absorber(None, 3) == default_model_path("Fe", "K")  # an index: Fe
    assert model_for_absorber(None, "V") == default_model_path("V", "K")
    if ("Cu", "K") in available_models():
        assert model_for_absorber(None, "Cu") == default_model_path("Cu", "K")
    assert model_for_absorber("fast", "Fe") == default_model_path("Fe", "K", "fast")
    with pytest.raises(ValueError, match="no shipped model.*Fe K-edge.*xanesnet models"):
        model_for_absorber(None, "Zn")


def test_batch_picks_the_v_model_for_v(tmp_path):
    from xanesnet.model.pretrained import default_model

    structures = [build() for build in COMPLEXES.values()]
    for i, atoms in enumerate(structures):
        atoms.info["id"] = f"v{i}"
    path = _write_extxyz(tmp_path / "v.extxyz", structures)
    summary = predict_batch(path, tmp_path / "out", absorber="V", progress=False)
    assert summary.element == "V" and summary.sites == 3
    result = read_predictions(tmp_path / "out")
    assert result.metadata["job"]["model"]["element"] == "V"
    expected = default_model("V", "K").predict(structures, absorber="V").spectra
    np.testing.assert_allclose(
        result.spectra, expected, rtol=0, atol=float32_atol(expected, LONGEST_SUM)
    )


def test_element_without_a_model_is_refused(tmp_path, capsys):
    path = _write_extxyz(tmp_path / "zn.extxyz", [bulk("Zn")])
    assert main(["batch", str(path), "-o", str(tmp_path / "out"), "--absorber", "Zn"]) == 2
    message = capsys.readouterr().err
    assert "no shipped model" in message and "V K-edge" in message
    assert not (tmp_path / "out").exists()


def _same_output(a, b):
    ra, rb = read_predictions(a), read_predictions(b)
    for name in ("ids", "sites", "spectra", "spread", "domain_score", "unphysical"):
        np.testing.assert_array_equal(getattr(ra, name), getattr(rb, name))
    assert ra.errors == rb.errors and ra.no_sites == rb.no_sites
    assert ra.metadata["chunks"] == rb.metadata["chunks"]  # checksums of the chunks' data


def test_several_elements_equal_separate_runs(tmp_path):
    inputs = _mixed_inputs(tmp_path)
    summaries = predict_batch(
        inputs, tmp_path / "both", absorber="Fe,V", chunk_size=3, progress=False
    )
    assert set(summaries) == {"Fe", "V"}
    assert summaries["Fe"].sites == 5 and summaries["V"].sites == 4  # examples + the mixed one
    assert summaries["Fe"].no_sites == 4 and summaries["V"].no_sites == 5
    for element in ("Fe", "V"):
        alone = predict_batch(
            inputs, tmp_path / element, absorber=element, chunk_size=3, progress=False
        )
        assert alone.sites == summaries[element].sites
        _same_output(tmp_path / "both" / element, tmp_path / element)
    # the list form and the command line give the same folders
    listed = predict_batch(
        inputs, tmp_path / "listed", absorber=["V", "Fe"], chunk_size=3, progress=False
    )
    assert list(listed) == ["V", "Fe"]
    argv = ["batch", *inputs, "-o", str(tmp_path / "cli"), "--chunk-size", "3", "--quiet"]
    assert main([*argv, "--absorber", "Fe,V"]) == 0
    for element in ("Fe", "V"):
        _same_output(tmp_path / "listed" / element, tmp_path / element)
        _same_output(tmp_path / "cli" / element, tmp_path / element)
    # a model file has one element: refused with several
    with pytest.raises(ValueError, match="several elements"):
        predict_batch(inputs, tmp_path / "x", absorber="Fe,V", model="default", progress=False)


def test_one_element_keeps_the_plain_layout(tmp_path):
    path = _write_extxyz(tmp_path / "v.extxyz", [COMPLEXES["VCl4"]()])
    predict_batch(path, tmp_path / "out", absorber=["V"], progress=False)
    assert (tmp_path / "out" / "manifest.json").is_file()


def spinel() -> Atoms:
    """Fe3O4 spinel (Fd-3m, origin choice 2): Fe 8a tetrahedral + 16d octahedral, O 32e."""
    return crystal(
        ["Fe", "Fe", "O"],
        basis=[(0.125, 0.125, 0.125), (0.5, 0.5, 0.5), (0.2549, 0.2549, 0.2549)],
        spacegroup=227,
        setting=2,
        cellpar=[8.396, 8.396, 8.396, 90, 90, 90],
    )


def _crystals() -> list[Atoms]:
    """Rocksalt FeO, spinel Fe3O4, a 2x2x2 supercell of cubic bcc Fe, a molecule (no symmetry
    used), a structure without Fe and a broken one."""
    supercell = bulk("Fe", "bcc", a=2.87, cubic=True).repeat(2)
    molecule = Atoms(["Fe", "O", "O"], positions=[[0, 0, 0], [1.9, 0, 0], [-1.9, 0, 0]])
    broken = bulk("FeO", "rocksalt", a=4.33, cubic=True)
    broken.positions[1] = broken.positions[0]  # overlapping atoms: the descriptor refuses
    structures = [
        bulk("FeO", "rocksalt", a=4.33, cubic=True),
        spinel(),
        supercell,
        molecule,
        bulk("NaCl", "rocksalt", a=5.64),
        broken,
    ]
    return structures


@pytest.fixture(scope="module")
def crystal_runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("unique")
    structures = _crystals()
    path = _write_extxyz(tmp / "crystals.extxyz", structures)
    every = predict_batch(path, tmp / "every", chunk_size=2, progress=False)
    unique = predict_batch(path, tmp / "unique", chunk_size=2, unique_sites=True, progress=False)
    return tmp, path, structures, every, unique


def test_unique_sites_expand_to_every_site(crystal_runs):
    tmp, _, structures, every_summary, unique_summary = crystal_runs
    every, unique = read_predictions(tmp / "every"), read_predictions(tmp / "unique")
    assert every.multiplicity is None and every.structure_mean is None  # off: as before
    assert unique.metadata["unique_sites"] is True
    assert unique.metadata["job"]["unique_sites"] == {"symprec": 1e-3}
    assert unique.errors == every.errors and [e[0] for e in unique.errors] == ["crystals:5"]
    assert unique.no_sites == every.no_sites == ["crystals:4"]
    assert unique_summary.represented == every_summary.sites == len(every.ids)
    expected_orbits = [[4], [8, 16], [16], [1]]
    tolerance = float32_atol(every.spectra, LONGEST_SUM)
    for i, atoms in enumerate(structures[:4]):
        sid = f"crystals:{i}"  # the reader's ids
        orbits = unique_sites(atoms, "Fe")
        rows = unique.ids == sid
        assert unique.multiplicity[rows].tolist() == orbits.multiplicities.tolist()
        assert sorted(unique.multiplicity[rows].tolist()) == sorted(expected_orbits[i])
        assert unique.multiplicity[rows].sum() == np.count_nonzero(atoms.numbers == 26)
        np.testing.assert_array_equal(unique.sites[rows], orbits.indices)
        all_rows = every.ids == sid
        np.testing.assert_array_equal(every.sites[all_rows], orbits.candidates)
        expanded = orbits.expand(unique.spectra[rows])
        np.testing.assert_allclose(expanded, every.spectra[all_rows], rtol=0, atol=tolerance)
        np.testing.assert_allclose(
            orbits.expand(unique.domain_score[rows]), every.domain_score[all_rows], rtol=1e-4
        )
        mean = unique.structure_mean[list(unique.structure_mean_ids).index(sid)]
        np.testing.assert_allclose(
            mean, every.spectra[all_rows].mean(axis=0), rtol=0, atol=tolerance
        )
    assert list(unique.structure_mean_ids) == [f"crystals:{i}" for i in range(4)]
    assert unique_summary.sites == 5 < every_summary.sites == 4 + 24 + 16 + 1


@pytest.mark.parametrize("format", ["zarr", "csv"])
def test_unique_sites_in_every_format(crystal_runs, format):
    tmp, path, *_ = crystal_runs
    predict_batch(
        path, tmp / format, chunk_size=2, unique_sites=True, format=format, progress=False
    )
    a, b = read_predictions(tmp / "unique"), read_predictions(tmp / format)
    for name in ("ids", "sites", "spectra", "multiplicity", "structure_mean_ids", "structure_mean"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.metadata["chunks"] == b.metadata["chunks"]
    if format == "csv":
        header = (tmp / "csv" / "multiplicity.csv").read_text().splitlines()[0]
        assert header == "structure_id,site_index,multiplicity"
        assert (tmp / "csv" / "structure_mean.csv").read_text().startswith("structure_id,")


def test_unique_sites_resume_and_refusals(crystal_runs):
    tmp, path, *_ = crystal_runs
    resumed = tmp / "resumed"
    shutil.copytree(tmp / "unique", resumed)
    manifest = json.loads((resumed / "manifest.json").read_text())
    del manifest["chunks"]["1"]
    manifest["complete"] = False
    (resumed / "manifest.json").write_text(json.dumps(manifest))
    (resumed / "predictions.h5").unlink()
    summary = predict_batch(path, resumed, chunk_size=2, unique_sites=True, progress=False)
    assert (summary.chunks_written, summary.chunks_skipped) == (1, 2)
    _same_output(resumed, tmp / "unique")
    unique = read_predictions(tmp / "unique")
    again = read_predictions(resumed)
    np.testing.assert_array_equal(again.multiplicity, unique.multiplicity)
    np.testing.assert_array_equal(again.structure_mean, unique.structure_mean)
    # another setting on the same output: refused, naming the difference
    with pytest.raises(ValueError, match="unique_sites"):
        predict_batch(path, tmp / "unique", chunk_size=2, progress=False)
    with pytest.raises(ValueError, match="unique_sites"):
        predict_batch(path, tmp / "every", chunk_size=2, unique_sites=True, progress=False)
    with pytest.raises(ValueError, match="atom index"):
        predict_batch(path, tmp / "index", absorber=0, unique_sites=True, progress=False)


@pytest.mark.slow
def test_unique_sites_on_dask_equal_the_single_run(crystal_runs):
    tmp, path, *_ = crystal_runs
    argv = ["batch", str(path), "-o", str(tmp / "dask"), "--chunk-size", "2", "--quiet"]
    assert main([*argv, "--unique-sites", "--dask", "local:1"]) == 1  # crystals:5 fails
    _same_output(tmp / "dask", tmp / "unique")
    np.testing.assert_array_equal(
        read_predictions(tmp / "dask").structure_mean,
        read_predictions(tmp / "unique").structure_mean,
    )


def test_predict_command_routes_and_writes_unique_sites(tmp_path, capsys):
    v = _write_extxyz(tmp_path / "v.extxyz", [COMPLEXES["VCl4"]()])
    assert main(["predict", str(v), "-o", str(tmp_path / "v.npz"), "--absorber", "V"]) == 0
    with np.load(tmp_path / "v.npz") as data:
        assert json.loads(str(data["model_metadata"]))["element"] == "V"
        assert "multiplicity" not in data
    assert main(["predict", str(v), "-o", str(tmp_path / "x.npz"), "--absorber", "Fe,V"]) == 2
    assert "one element per output file" in capsys.readouterr().err
    crystals = _write_extxyz(tmp_path / "c.extxyz", [spinel()])
    argv = ["predict", str(crystals), "-o", str(tmp_path / "c.npz"), "--unique-sites", "--quiet"]
    assert main(argv) == 0
    with np.load(tmp_path / "c.npz") as data:
        assert data["multiplicity"].tolist() == [8, 16]
        assert data["structure_mean"].shape == (1, len(data["energies"]))
    argv[3] = str(tmp_path / "c.csv")
    assert main(argv) == 0
    rows = (tmp_path / "c.multiplicity.csv").read_text().splitlines()
    assert rows[0] == "structure_id,site_index,multiplicity"
    assert [row.split(",")[1:] for row in rows[1:]] == [["0", "8"], ["8", "16"]]
    assert (tmp_path / "c.structure_mean.csv").is_file()
