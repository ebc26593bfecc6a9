"""pymatgen Structure/Molecule and Materials Project JSON as input; spectra as pymatgen XAS."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import EXAMPLES, read_xanesnet_xyz

pytest.importorskip("pymatgen.core")

from pymatgen.core import Lattice, Molecule, Structure  # noqa: E402

import xanesnet  # noqa: E402
from xanesnet.errors import InputError  # noqa: E402
from xanesnet.io.pymatgen import (  # noqa: E402
    as_atoms_list,
    holds_pymatgen_structure,
    is_pymatgen_structure,
    pymatgen_to_atoms,
    read_mp_json,
    to_pymatgen_xas,
)

FIRST_EXAMPLE = sorted(EXAMPLES.glob("*.xyz"))[0]


def _molecule(path=FIRST_EXAMPLE, **properties) -> tuple[Molecule, object]:
    atoms = read_xanesnet_xyz(path)
    mol = Molecule(atoms.get_chemical_symbols(), atoms.positions, charge=0, properties=properties)
    return mol, atoms


def _rocksalt_feo(pbc=(True, True, True)) -> Structure:
    lattice = Lattice.cubic(4.33, pbc=pbc)
    return Structure.from_spacegroup("Fm-3m", lattice, ["Fe", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]])


@pytest.fixture(scope="module")
def model():
    return xanesnet.default_model("Fe", "K")


def test_molecule_becomes_atoms_with_id_and_charge():
    mol, atoms = _molecule(id="mol-1")
    mol.set_charge_and_spin(1)
    converted = pymatgen_to_atoms(mol)
    np.testing.assert_array_equal(converted.numbers, atoms.numbers)
    np.testing.assert_allclose(converted.positions, atoms.positions, rtol=0, atol=1e-12)
    assert not converted.pbc.any()
    assert converted.info["id"] == "mol-1"
    assert converted.info["charge"] == 1.0
    # the caller's id wins over the properties
    assert pymatgen_to_atoms(mol, "given").info["id"] == "given"


def test_structure_keeps_cell_and_periodicity():
    full = pymatgen_to_atoms(_rocksalt_feo(), "feo")
    assert full.pbc.all()
    np.testing.assert_allclose(full.cell.array, np.eye(3) * 4.33, atol=1e-12)
    assert len(full) == 8 and full.info["id"] == "feo"
    slab = pymatgen_to_atoms(_rocksalt_feo(pbc=(True, True, False)))
    assert slab.pbc.tolist() == [True, True, False]


def test_disordered_structure_is_refused_by_name():
    s = _rocksalt_feo()
    s.replace_species({"O": {"O": 0.5, "S": 0.5}})
    s.properties["material_id"] = "mp-x"
    with pytest.raises(InputError, match="mp-x: a disordered structure"):
        pymatgen_to_atoms(s)


def test_as_atoms_list_accepts_mixtures_and_generators():
    mol, atoms = _molecule()
    out = as_atoms_list(x for x in [mol, atoms])
    assert len(out) == 2 and out[1] is atoms
    assert len(as_atoms_list(mol)) == 1
    assert not is_pymatgen_structure(atoms)
    with pytest.raises(TypeError, match="read files with xanesnet.read_structures"):
        as_atoms_list("some/file.xyz")


def test_descriptors_of_molecule_equal_those_of_atoms():
    mol, atoms = _molecule()
    config = xanesnet.WACSF()
    f_pmg, i_pmg = config.compute(mol, absorber="Fe")
    f_ase, i_ase = config.compute(atoms, absorber="Fe")
    np.testing.assert_array_equal(i_pmg, i_ase)
    # same coordinates, same kernel: positions pass through float64 unchanged
    np.testing.assert_allclose(f_pmg, f_ase, rtol=0, atol=1e-12)


def test_model_predicts_structure_and_molecule(model):
    mol, atoms = _molecule()
    crystal = _rocksalt_feo()
    pred = model.predict([mol, crystal], absorber="Fe")
    assert pred.spectra.shape == (1 + 4, len(model.energies))
    np.testing.assert_array_equal(pred.index[:, 0], [0, 1, 1, 1, 1])
    alone = model.predict(atoms, absorber="Fe")
    np.testing.assert_allclose(pred.spectra[:1], alone.spectra, rtol=0, atol=1e-6)


# the molecular Fe model gives a crystal's pre-edge slightly negative values; pymatgen warns
@pytest.mark.filterwarnings("ignore:Double check the intensities")
def test_prediction_to_pymatgen_xas(model):
    from pymatgen.analysis.xas.spectrum import XAS

    mol, _ = _molecule()
    crystal = _rocksalt_feo()
    structures = [mol, crystal]
    pred = model.predict(structures, absorber="Fe")
    spectra = pred.to_pymatgen(structures)
    assert len(spectra) == len(pred.spectra)
    for row, xas in enumerate(spectra):
        assert isinstance(xas, XAS)
        assert xas.absorbing_index == int(pred.index[row, 1])
        assert str(xas.absorbing_element) == "Fe"
        assert xas.edge == "K" and xas.spectrum_type == "XANES"
        np.testing.assert_array_equal(xas.x, pred.energies)
        np.testing.assert_array_equal(xas.y, pred.spectra[row])
    assert spectra[1].structure is crystal  # pymatgen inputs are used as they are
    # an ase.Atoms structure is converted (molecule: no lattice)
    atoms = pymatgen_to_atoms(mol)
    one = to_pymatgen_xas(pred, atoms, 0)
    assert isinstance(one.structure, Molecule) and one.absorbing_index == 0
    with pytest.raises(ValueError, match="outside the structure"):
        to_pymatgen_xas(pred, Molecule(["Fe"], [[0, 0, 0]]), len(pred.spectra) - 1)


def test_mp_json_files(tmp_path):
    crystal = _rocksalt_feo()
    plain = tmp_path / "feo.json"
    plain.write_text(json.dumps(crystal.as_dict()))
    doc = tmp_path / "doc.json"
    doc.write_text(json.dumps({"material_id": "mp-1279", "structure": crystal.as_dict()}))
    many = tmp_path / "many.json"
    many.write_text(json.dumps({"data": [{"structure": crystal.as_dict()}] * 2}))
    mol, _ = _molecule()
    molecule = tmp_path / "mol.json"
    molecule.write_text(json.dumps(mol.as_dict()))

    (a,) = read_mp_json(plain)
    assert a.info["id"] == "feo" and a.info["source"] == str(plain) and a.pbc.all()
    (b,) = read_mp_json(doc)
    assert b.info["id"] == "mp-1279"
    assert [x.info["id"] for x in read_mp_json(many)] == ["many:0", "many:1"]
    (m,) = read_mp_json(molecule)
    assert not m.pbc.any() and len(m) == len(mol)
    for path in (plain, doc, many, molecule):
        assert holds_pymatgen_structure(path)


def test_json_that_is_not_a_structure_names_the_file(tmp_path):
    from ase.db import connect

    other = tmp_path / "settings.json"
    other.write_text(json.dumps({"energy": 1.0}))
    with pytest.raises(InputError, match=r"settings\.json: not a structure file.*'energy'"):
        read_mp_json(other)
    broken = tmp_path / "broken.json"
    broken.write_text('{"sites": [\n')
    with pytest.raises(InputError, match=r"broken\.json: line 2: not valid JSON"):
        read_mp_json(broken)
    bad_doc = tmp_path / "bad.json"
    bad_doc.write_text(json.dumps({"structure": {"sites": [{"nonsense": 1}], "lattice": {}}}))
    with pytest.raises(InputError, match=r"bad\.json: invalid pymatgen Structure dict"):
        read_mp_json(bad_doc)
    # an ASE JSON database is not taken for a pymatgen file
    db_path = tmp_path / "ase.json"
    with connect(db_path) as db:
        db.write(read_xanesnet_xyz(FIRST_EXAMPLE))
    assert not holds_pymatgen_structure(db_path)
    assert not holds_pymatgen_structure(other)


def test_read_structures_and_batch_take_mp_json(tmp_path):
    crystal = _rocksalt_feo()
    mol, _ = _molecule()
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "feo.json").write_text(
        json.dumps({"material_id": "mp-1279", "structure": crystal.as_dict()})
    )
    (tmp_path / "in" / "mol.json").write_text(json.dumps(mol.as_dict()))
    read = list(xanesnet.read_structures(str(tmp_path / "in" / "*.json")))
    assert [a.info["id"] for a in read] == ["feo", "mol"]
    assert read[0].info["material_id"] == "mp-1279" and read[0].pbc.all()
    summary = xanesnet.predict_batch(
        [str(tmp_path / "in" / "mol.json")], tmp_path / "out", progress=False, n_threads=1
    )
    assert summary is not None
    stored = xanesnet.read_predictions(tmp_path / "out")
    assert list(stored.ids) == ["mol"] and stored.errors == []


def test_sites_and_symmetry_take_pymatgen_structures():
    from xanesnet.descriptors.sites import compute_sites
    from xanesnet.descriptors.symmetry import unique_absorbers, unique_sites

    crystal = _rocksalt_feo()
    mol, atoms = _molecule()
    result = compute_sites(xanesnet.WACSF(), [mol, crystal], "Fe", n_threads=1)
    expected, _ = xanesnet.WACSF().compute([atoms, pymatgen_to_atoms(crystal)], "Fe")
    np.testing.assert_allclose(result.features, expected, rtol=0, atol=1e-12)
    sites = unique_sites(crystal, "Fe")  # four Fe of rocksalt: one orbit
    assert sites.symmetry_used and sites.indices.tolist() == [0]
    absorbers, _ = unique_absorbers([crystal], "Fe")
    assert absorbers == [[0]]
