"""Structures in memory through the batch engine: ase.Atoms and pymatgen objects give the spectra
of the same structures read from files; ids from info["id"] or mem:<n>; a resume with other
structures is refused."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from ase.build import bulk
from helpers import EXAMPLES

from xanesnet import predict_batch, read_predictions, read_structures
from xanesnet.pipeline.batch import OutOfDomainWarning

FILES = sorted(EXAMPLES.glob("*.xyz"))[:7]


@pytest.fixture(autouse=True)
def _quiet_domain_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OutOfDomainWarning)
        yield


def _structures():
    """The example files as ase.Atoms, without the reader's ids."""
    out = list(read_structures(FILES))
    for atoms in out:
        atoms.info.pop("id")
    return out


def test_atoms_in_memory_equal_the_same_structures_from_files(tmp_path):
    predict_batch(FILES, tmp_path / "files", chunk_size=3, progress=False)
    summary = predict_batch(_structures(), tmp_path / "memory", chunk_size=3, progress=False)
    from_files = read_predictions(tmp_path / "files")
    in_memory = read_predictions(tmp_path / "memory")
    assert summary.structures == len(FILES)
    np.testing.assert_array_equal(in_memory.spectra, from_files.spectra)
    np.testing.assert_array_equal(in_memory.sites, from_files.sites)
    assert list(in_memory.ids) == [f"mem:{n}" for n in range(len(FILES))]
    assert in_memory.metadata["job"]["inputs"] == ["<memory>"]


def test_ids_from_info_and_a_generator_and_one_structure(tmp_path):
    structures = _structures()
    structures[1].info["id"] = "mine"
    predict_batch(iter(structures[:3]), tmp_path / "gen", progress=False)
    assert list(dict.fromkeys(read_predictions(tmp_path / "gen").ids)) == [
        "mem:0",
        "mine",
        "mem:2",
    ]
    iron = bulk("Fe")
    predict_batch(iron, tmp_path / "one", progress=False)
    assert set(read_predictions(tmp_path / "one").ids) == {"mem:0"}
    assert "id" not in iron.info  # the caller's objects are not changed


def test_pymatgen_structures_in_memory_equal_atoms(tmp_path):
    pytest.importorskip("pymatgen")
    from pymatgen.core import Molecule
    from pymatgen.io.ase import AseAtomsAdaptor

    atoms = _structures()[:3]
    # charge_spin_check off: the examples' neutral molecules may have odd electron counts
    molecules = [
        Molecule(a.get_chemical_symbols(), a.positions, charge_spin_check=False) for a in atoms
    ]
    crystal = bulk("Fe", cubic=True)
    predict_batch([*atoms, crystal], tmp_path / "atoms", progress=False)
    mixed = [*molecules, AseAtomsAdaptor.get_structure(crystal)]
    predict_batch(mixed, tmp_path / "pymatgen", progress=False)
    a, p = read_predictions(tmp_path / "atoms"), read_predictions(tmp_path / "pymatgen")
    np.testing.assert_array_equal(p.sites, a.sites)
    np.testing.assert_allclose(p.spectra, a.spectra, rtol=0, atol=1e-6)
    assert list(p.ids) == list(a.ids)


def test_resume_with_other_structures_is_refused(tmp_path):
    structures = _structures()
    out = tmp_path / "out"
    predict_batch(structures, out, chunk_size=3, progress=False)
    again = predict_batch(structures, out, chunk_size=3, progress=False)
    assert again.chunks_written == 0  # same structures, same order: the finished job stands
    moved = _structures()
    moved[4].positions[0, 0] += 0.01
    with pytest.raises(ValueError, match=r"inputs changed.*<memory> chunk 1"):
        predict_batch(moved, out, chunk_size=3, progress=False)
    with pytest.raises(ValueError, match="inputs changed"):
        predict_batch(structures[::-1], out, chunk_size=3, progress=False)
    with pytest.raises(ValueError, match="inputs changed"):
        predict_batch(structures[:-1], out, chunk_size=3, progress=False)


def test_not_a_structure_is_a_recorded_failure_and_mixing_paths_is_refused(tmp_path):
    structures = _structures()[:2]
    summary = predict_batch([structures[0], None, *structures[1:]], tmp_path / "a", progress=False)
    assert summary.failed == 1
    errors = read_predictions(tmp_path / "a").errors
    assert errors[0][0] == "mem:1" and "expected ase.Atoms" in errors[0][1]
    with pytest.raises(TypeError, match="mixed"):
        predict_batch([structures[0], FILES[0]], tmp_path / "b", progress=False)
