"""The fast plain-extxyz reader gives exactly what ase.io gives; other forms fall back."""

from __future__ import annotations

import ase.io
import numpy as np
import pytest
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from xanesnet import read_structures
from xanesnet._extxyz import NotPlain, iter_plain_extxyz

OURS = {"id", "source", "frame"}


def _frames(rng, n_frames=6):
    frames = []
    for i in range(n_frames):
        n = int(rng.integers(2, 12))
        atoms = Atoms(
            numbers=rng.choice([1, 6, 8, 26], n),
            positions=rng.normal(size=(n, 3)) * 3,
            cell=np.diag(rng.uniform(6, 9, 3)) if i % 2 else None,
            pbc=[True, True, False] if i % 3 == 1 else bool(i % 2),
        )
        atoms.info.update(charge=int(i) - 2, spin=0.5 * i, name=f"frame {i}", flag=bool(i % 2))
        frames.append(atoms)
    return frames


def _assert_same(ours, theirs):
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_array_equal(a.numbers, b.numbers)
        np.testing.assert_array_equal(a.positions, b.positions)
        np.testing.assert_array_equal(a.cell.array, b.cell.array)
        np.testing.assert_array_equal(a.pbc, b.pbc)
        assert {k: v for k, v in a.info.items() if k not in OURS} == b.info


def test_plain_extxyz_equals_ase(tmp_path):
    path = tmp_path / "set.extxyz"
    ase.io.write(path, _frames(np.random.default_rng(0)), format="extxyz")
    assert len(list(iter_plain_extxyz(str(path)))) == 6  # the fast path accepts it
    _assert_same(list(read_structures(path)), ase.io.read(path, index=":"))


def test_non_plain_frames_fall_back_to_ase(tmp_path):
    frames = _frames(np.random.default_rng(1))
    frames[3].calc = SinglePointCalculator(
        frames[3], energy=-1.5, forces=np.zeros((len(frames[3]), 3))
    )
    path = tmp_path / "mixed.xyz"
    ase.io.write(path, frames, format="extxyz")
    with pytest.raises(NotPlain) as info:
        list(iter_plain_extxyz(str(path)))
    assert info.value.frame == 3
    ours = list(read_structures(path))
    reference = ase.io.read(path, index=":")
    assert [a.info["id"] for a in ours] == [f"mixed:{i}" for i in range(6)]
    for a, b in zip(ours, reference, strict=True):
        np.testing.assert_array_equal(a.positions, b.positions)
        np.testing.assert_array_equal(a.numbers, b.numbers)
