"""Bad input: the same exception type and message from both backends, naming what is wrong."""

from __future__ import annotations

import re

import numpy as np
import pytest
from ase import Atoms
from helpers import BACKENDS

from xanesnet import WACSF


def _fe_complex(label: str = "test_complex") -> Atoms:
    atoms = Atoms("FeOOC", positions=[[0, 0, 0], [1.9, 0, 0], [0, 2.0, 0], [0, 0, 2.1]])
    atoms.info["id"] = label
    return atoms


def _nan_coordinates() -> list[Atoms]:
    atoms = _fe_complex()
    atoms.positions[2, 1] = np.nan
    return [atoms]


def _unknown_element() -> list[Atoms]:
    atoms = _fe_complex()
    atoms.numbers[3] = 0
    return [atoms]


def _too_close_to_absorber() -> list[Atoms]:
    atoms = _fe_complex()
    atoms.positions[1] = [0.05, 0, 0]
    return [atoms]


def _neighbours_overlap() -> list[Atoms]:
    atoms = _fe_complex()
    atoms.positions[2] = atoms.positions[1] + [0, 0.02, 0]
    return [atoms]


def _singular_cell() -> list[Atoms]:
    atoms = _fe_complex()
    atoms.cell = [[3.0, 0, 0], [6.0, 0, 0], [0, 0, 3.0]]
    atoms.pbc = True
    return [atoms]


CASES = {
    "empty input": (lambda: [], {}, "structures: no structures given (empty input)"),
    "nan": (
        _nan_coordinates,
        {},
        "structure test_complex: non-finite (NaN or inf) coordinates at atom 2",
    ),
    "unknown element": (
        _unknown_element,
        {},
        "structure test_complex: unknown element (atomic number 0) at atom 3",
    ),
    "absorber out of range": (
        lambda: [_fe_complex()],
        {"absorber": 4},
        "structure test_complex: absorber index 4 out of range for 4 atoms",
    ),
    "absorber negative": (
        lambda: [_fe_complex()],
        {"absorber": -1},
        "structure test_complex: absorber index -1 out of range for 4 atoms",
    ),
    "absorber element absent": (
        lambda: [_fe_complex()],
        {"absorber": "Co"},
        "structure test_complex: absorber element Co is absent",
    ),
    "unknown absorber symbol": (
        lambda: [_fe_complex()],
        {"absorber": "Xx"},
        "absorber: unknown element symbol 'Xx'",
    ),
    "absorber lists mismatch": (
        lambda: [_fe_complex(), _fe_complex()],
        {"absorber": [[0]]},
        "absorber: got 1 index lists for 2 structures",
    ),
    "too close to absorber": (
        _too_close_to_absorber,
        {},
        "structure test_complex: atoms 0 and 1 are 0.0500 Å apart (closer than 0.1 Å; overlapping atoms?)",
    ),
    "neighbours overlap": (
        _neighbours_overlap,
        {},
        "structure test_complex: atoms 1 and 2 are 0.0200 Å apart (closer than 0.1 Å; overlapping atoms?)",
    ),
    "singular cell": (_singular_cell, {}, "structure test_complex: periodic cell is singular"),
    "negative threads": (
        lambda: [_fe_complex()],
        {"n_threads": -1},
        "n_threads: expected an integer >= 0",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_same_error_on_every_backend(case):
    make, kwargs, message = CASES[case]
    seen = []
    for backend in BACKENDS:
        with pytest.raises(ValueError) as info:
            WACSF().compute(make(), backend=backend, **kwargs)
        assert str(info.value).startswith(message), str(info.value)
        seen.append((type(info.value), str(info.value)))
    assert all(s == seen[0] for s in seen), seen


def test_overlapping_neighbours_are_refused_without_g4_too():
    # without G4 the neighbour pairs serve only this check; it must still run on every backend
    messages = set()
    for backend in BACKENDS:
        with pytest.raises(ValueError) as info:
            WACSF(n_g4=0).compute(_neighbours_overlap(), backend=backend)
        messages.add(str(info.value))
    assert len(messages) == 1 and "atoms 1 and 2 are 0.0200 Å apart" in messages.pop()


def test_unknown_backend_is_rejected():
    with pytest.raises(
        ValueError, match=re.escape("backend: expected one of ('cpp', 'numba'), got 'gpu'")
    ):
        WACSF().compute(_fe_complex(), backend="gpu")


def test_structures_of_wrong_type_are_rejected():
    with pytest.raises(TypeError, match="structures: expected ase.Atoms"):
        WACSF().compute(42)


@pytest.mark.parametrize("backend", BACKENDS)
def test_kernel_level_errors_agree(backend):
    """Malformed packed batches reaching a kernel directly raise the same ValueError."""
    from xanesnet.descriptors.dispatch import run_kernel
    from xanesnet.descriptors.packing import pack_structures

    batch = pack_structures([_fe_complex()])
    broken = type(batch)(**{**batch.__dict__, "site_atoms": np.array([7], dtype=np.int64)})
    with pytest.raises(ValueError, match="site 0: atom index out of range"):
        run_kernel(WACSF(), broken, backend, 1)
