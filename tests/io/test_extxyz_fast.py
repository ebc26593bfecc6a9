"""The fast plain-extxyz reader gives exactly what ase.io gives; other forms fall back."""

from __future__ import annotations

import ase.io
import numpy as np
import pytest
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from xanesnet import read_structures
from xanesnet.io import extxyz as _extxyz
from xanesnet.io import fast_path
from xanesnet.io.extxyz import NotPlain, iter_plain_extxyz

OURS = {"id", "source", "frame"}


def _frames(rng, n_frames=6):
    frames = []
    for i in range(n_frames):
        n = int(rng.integers(2, 12))
        atoms = Atoms(
            numbers=rng.choice([1, 6, 8, 26], n),
            positions=rng.normal(size=(n, 3)) * 3,
            # triclinic: a transposed lattice would show
            cell=np.diag(rng.uniform(6, 9, 3)) + np.triu(rng.uniform(0.2, 1.0, (3, 3)), 1)
            if i % 2
            else None,
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


@pytest.fixture(params=["python_rows", "numba_rows"])
def row_parser(request, monkeypatch):
    """Both row parsers: Python tokens, and the Numba kernel (forced for small files)."""
    monkeypatch.setenv(fast_path.ENV, "0" if request.param == "python_rows" else "1")
    return request.param


def test_plain_extxyz_equals_ase(tmp_path, row_parser):
    path = tmp_path / "set.extxyz"
    ase.io.write(path, _frames(np.random.default_rng(0)), format="extxyz")
    assert len(list(iter_plain_extxyz(str(path)))) == 6  # the fast path accepts it
    _assert_same(list(read_structures(path)), ase.io.read(path, index=":"))


def test_non_plain_frames_fall_back_to_ase(tmp_path, row_parser):
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


STANDARD_XYZ_COMMENTS = [
    "",
    "   ",
    "s0000000_bav",
    "Fe complex from CSD 12345",
    "name=foo  12 3.5",
    'a=1 b="x y" c=T',
    "energy=-1.5",  # a calculator result: left to ase.io
    'Lattice="5 0.5 0 0.3 5 0 0.1 0.2 5" pbc="T T F"',
    'Lattice="5 0.5 0 0.3 5 0 0.1 0.2 5"',
]


@pytest.mark.parametrize("comment", STANDARD_XYZ_COMMENTS)
def test_standard_xyz_comment_lines_equal_ase(tmp_path, row_parser, comment):
    path = tmp_path / "one.xyz"
    path.write_text(f"3\n{comment}\nFe 0 0 0\nO 1.5 0.2 -0.3\nCl -1.25 0.5 1e-2\n")
    _assert_same(list(read_structures(path)), ase.io.read(path, index=":"))


ROWS = {
    # rows the kernel takes
    "plain": ["Fe 0.0 1.5 -2.25\n", "C\t1e-3  -0.5E+2 3\n", "H 1 2 3"],
    "two_letter_and_x": ["Cl 1 2 3\n", "X 0 0 0\n"],
    "crlf_and_signs": ["O +1.0 -0.0 .5\r\n", "N 5. 6 7\r\n"],
    # rows the kernel refuses; the Python parser decides (same answer as before)
    "underscore_digits": ["Fe 1_0 2 3\n"],
    "unknown_symbol": ["Qq 1 2 3\n"],
    "long_mantissa": ["Fe 0.12345678901234567890 2 3\n"],
    "nan": ["Fe nan 2 3\n"],
    "fields_across_rows": ["Fe 0 0 0 C\n", "1 1 1\n"],
    "five_fields": ["Fe 0 0 0 7\n"],
    "unicode_space": ["Fe\u00a01 2 3\n"],
}


@pytest.mark.parametrize("name", sorted(ROWS))
def test_row_kernel_agrees_with_the_python_rows(tmp_path, monkeypatch, name):
    monkeypatch.setenv(fast_path.ENV, "1")
    rows = ROWS[name]
    path = tmp_path / "f.extxyz"
    path.write_text("x")
    kernel = _extxyz._row_kernel(str(path))
    fast = kernel(rows)
    slow = _extxyz._parse_rows(rows, len(rows))
    if fast is not None:  # where the kernel accepts, it gives exactly the Python values
        assert slow is not None
        np.testing.assert_array_equal(fast[0], slow[0])
        np.testing.assert_array_equal(fast[1], slow[1])
        assert fast[1].tobytes() == slow[1].tobytes()  # -0.0 included
    accepted = {"plain", "two_letter_and_x", "crlf_and_signs"}
    assert (fast is not None) == (name in accepted)
