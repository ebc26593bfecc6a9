"""Each class of unreadable input gives an InputError naming the file (and the row or line),
never a raw exception, a hang or a write to the input; a batch records per-item failures and
goes on (issue 14)."""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

import ase.db
import numpy as np
import pytest
from ase import Atoms

from xanesnet import WACSF
from xanesnet.descriptors.sites import compute_sites
from xanesnet.errors import InputError
from xanesnet.frames import Frames
from xanesnet.io import read_structures
from xanesnet.io.chunks import iter_chunks
from xanesnet.io.sources import resolve_sources

FIXTURES = Path(__file__).resolve().parents[1] / "data" / "structures"


def _extxyz_text() -> bytes:
    return (FIXTURES / "FECL6_two_frames.extxyz").read_bytes()


def _read_error(path: Path) -> InputError:
    with pytest.raises(InputError) as info:
        list(read_structures(path))
    assert path.name in str(info.value)
    return info.value


# ---- text files ---------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["extxyz", "xyz"])
def test_bytes_that_are_not_utf8_name_file_and_line(tmp_path, suffix):
    lines = _extxyz_text().split(b"\n")
    lines[3] = lines[3][:2] + b"\xc3\x28" + lines[3][2:]
    path = tmp_path / f"bad.{suffix}"
    path.write_bytes(b"\n".join(lines))
    error = _read_error(path)
    assert "line 4: expected UTF-8 text, found byte 0xc3" in str(error)
    assert error.line == 4


@pytest.mark.parametrize(
    ("suffix", "count"),
    [
        ("extxyz", b"-3"),
        ("extxyz", b"9223372036854775808"),
        ("xyz", b"9223372036854775808"),
        ("xyz", b"-1"),
    ],
)
def test_counts_out_of_range_name_the_file(tmp_path, suffix, count):
    lines = _extxyz_text().split(b"\n")
    lines[0] = count
    path = tmp_path / f"count.{suffix}"
    path.write_bytes(b"\n".join(lines))
    assert "line 1" in str(_read_error(path))


@pytest.mark.parametrize("suffix", ["extxyz", "xyz"])
@pytest.mark.parametrize("count", [b"99999999999999", b"9223372036854775808"])
def test_huge_count_after_a_valid_frame_is_refused_not_looped(tmp_path, suffix, count):
    # ase.io would skip 10^14 lines one by one (hours); the count is checked against the file
    data = _extxyz_text()
    path = tmp_path / f"huge.{suffix}"
    path.write_bytes(data + count + b"\ncomment\nFe 0 0 0\n")
    message = str(_read_error(path))
    assert "truncated" in message or "larger than the rest of the file" in message


def test_xanesnet_xyz_huge_count_names_file_and_line(tmp_path):
    path = tmp_path / "m.xyz"
    path.write_bytes(b"2\nc\n26 0 0 0\n8 0 0 1.9\n99999999999999999999\nc\n26 0 0 0\n")
    assert "the count says 99999999999999999999 atoms" in str(_read_error(path))


# ---- ASE databases ------------------------------------------------------------------------


def _make_db(path: Path, n: int = 3) -> None:
    with ase.db.connect(str(path), append=False) as db:
        for k in range(n):
            db.write(Atoms("FeO", positions=[[0, 0, 0], [0, 0, 1.6 + 0.1 * k]]), tag=k)


def _stamp(path: Path) -> tuple[int, int, list[str]]:
    info = os.stat(path)
    return info.st_size, info.st_mtime_ns, sorted(os.listdir(path.parent))


@pytest.mark.parametrize("layout", ["empty-file", "no-systems-table"])
def test_db_without_ase_tables_is_an_error_and_left_unwritten(tmp_path, layout):
    path = tmp_path / "in.db"
    if layout == "empty-file":
        path.write_bytes(b"")
    else:
        _make_db(path)
        with sqlite3.connect(path) as con:
            con.execute("DROP TABLE systems")
        con.close()
    before = _stamp(path)
    for select in (None, "natoms>0"):
        with pytest.raises(InputError, match=r"in\.db: not an ASE database"):
            list(read_structures(path, select=select))
    assert _stamp(path) == before  # nothing written, no table recreated, no lock file


def test_db_with_tables_and_no_rows_holds_no_structures(tmp_path):
    path = tmp_path / "none.db"
    _make_db(path)
    with sqlite3.connect(path) as con:
        con.execute("DELETE FROM systems")
    con.close()
    before = _stamp(path)
    assert list(read_structures(path)) == []
    assert list(read_structures(path, select="natoms>0")) == []
    assert _stamp(path) == before


def test_reading_a_db_writes_nothing(tmp_path):
    path = tmp_path / "good.db"
    _make_db(path)
    before = _stamp(path)
    assert len(list(read_structures(path))) == 3
    assert len(list(read_structures(path, select="tag=1"))) == 1
    assert _stamp(path) == before


BAD_ROWS = {
    "numbers": ("UPDATE systems SET numbers = X'0000' WHERE id = 2", "numbers: expected"),
    "positions": ("UPDATE systems SET positions = X'00' WHERE id = 2", "positions: expected"),
    "json": (
        "UPDATE systems SET key_value_pairs = '{not json' WHERE id = 2",
        "JSONDecodeError",
    ),
    "json-list": ("UPDATE systems SET key_value_pairs = '[1, 2]' WHERE id = 2", "JSON object"),
    "element": ("UPDATE systems SET numbers = X'c8000000c8000000' WHERE id = 2", "element"),
}


@pytest.mark.parametrize("fault", sorted(BAD_ROWS))
@pytest.mark.parametrize("select", [None, "natoms>0"])
def test_bad_db_row_is_that_rows_error_and_reading_goes_on(tmp_path, fault, select):
    path = tmp_path / "rows.db"
    _make_db(path)
    statement, expected = BAD_ROWS[fault]
    with sqlite3.connect(path) as con:
        con.execute(statement)
    con.close()
    errors = []
    got = read_structures(
        path, select=select, on_error=lambda item, exc: errors.append((item, exc))
    )
    assert [a.info["id"] for a in got] == ["rows:1", "rows:3"]
    ((item, error),) = errors
    assert item == "rows:2"
    assert isinstance(error, InputError)
    assert "rows.db: row 2" in str(error) and expected in str(error)
    with pytest.raises(InputError, match=r"rows\.db: row 2"):  # without on_error: raised
        list(read_structures(path, select=select))
    sources, _ = resolve_sources(path, None, select, None)
    chunks = list(iter_chunks(sources, 2, select=select))
    assert [c.frames.ids for c in chunks] == [["rows:1", "rows:3"]]
    assert [item for c in chunks for item, _ in c.errors] == ["rows:2"]


def test_db_reader_closed_from_another_thread(tmp_path):
    # the batch's reader thread opens the database; a failure elsewhere may close the
    # generator from the main thread: no sqlite3.ProgrammingError
    path = tmp_path / "t.db"
    _make_db(path)
    for select in (None, "natoms>0"):
        stream = read_structures(path, select=select)
        first: list[Atoms] = []
        reader = threading.Thread(target=lambda s=stream, out=first: out.append(next(s)))
        reader.start()
        reader.join()
        assert first[0].info["id"] == "t:1"
        stream.close()
        assert [a.info["id"] for a in read_structures(path, select=select)] == [
            "t:1",
            "t:2",
            "t:3",
        ]


# ---- per-structure failures of any kind ---------------------------------------------------


def _frames(cells: list[np.ndarray | None]) -> Frames:
    structures = []
    for k, cell in enumerate(cells):
        atoms = Atoms("FeOO", positions=[[0, 0, 0], [1.9, 0, 0], [0, 2.0, 0.1]])
        if cell is not None:
            atoms.cell = cell
            atoms.pbc = True
        atoms.info["id"] = f"s{k}"
        structures.append(atoms)
    return Frames.from_atoms(structures)


@pytest.mark.parametrize("backend", ["cpp", "numba"])
def test_cell_of_1e300_fails_its_structure_only(backend):
    frames = _frames([None, np.eye(3) * 1e300, None])
    result = compute_sites(WACSF(), frames, "Fe", backend=backend, n_threads=1)
    assert result.ids == ["s0", "s2"]
    assert all(np.isfinite(result.features).all(axis=1))
    # either the kernel refuses it or its rows are not finite: a named failure, not an abort
    assert [item for item, _ in result.errors] in ([], ["s1"])
    for _, reason in result.errors:
        assert "structure s1" in reason


def test_an_exception_inside_the_kernel_fails_that_structure_only(monkeypatch):
    from xanesnet.descriptors import sites

    original = sites.run_kernel

    def fragile(config, batch, backend, n_threads):
        if (batch.positions == 7.0).any():  # the marked structure breaks the kernel
            raise ZeroDivisionError("division by zero")
        return original(config, batch, backend, n_threads)

    monkeypatch.setattr(sites, "run_kernel", fragile)
    structures = []
    for k in range(3):
        atoms = Atoms("FeOO", positions=[[0, 0, 0], [1.9, 0, 0], [0, 2.0, 7.0 if k == 1 else 0]])
        atoms.info["id"] = f"s{k}"
        structures.append(atoms)
    expected = compute_sites(WACSF(), [structures[0], structures[2]], "Fe", backend="numba")
    result = compute_sites(WACSF(), structures, "Fe", backend="numba", n_threads=1)
    assert result.ids == ["s0", "s2"]
    np.testing.assert_array_equal(result.features, expected.features)
    ((item, reason),) = result.errors
    assert item == "s1" and "structure s1" in reason and "ZeroDivisionError" in reason
    with pytest.raises(ValueError, match="backend"):  # a wrong argument still stops the call
        compute_sites(WACSF(), structures, "Fe", backend="fortran")


def test_charge_that_is_no_finite_number_fails_its_structure_only():
    structures = []
    for k, charge in enumerate([1, 10**400, float("inf"), "abc", -1]):
        atoms = Atoms("FeOO", positions=[[0, 0, 0], [1.9, 0, 0], [0, 2.0, 0.1]])
        atoms.info.update(id=f"s{k}", charge=charge)
        structures.append(atoms)
    result = compute_sites(WACSF(use_charge=True), structures, "Fe", backend="numba")
    assert result.ids == ["s0", "s4"]
    assert [item for item, _ in result.errors] == ["s1", "s2", "s3"]
    assert all("is not a finite number" in reason for _, reason in result.errors)
