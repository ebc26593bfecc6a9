"""Tests of xanesnet.io.read: readers, ids, streaming and error messages."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import ase.db
import ase.io
import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

from xanesnet.io import ase_db, fast_path, sources, xanesnet_xyz
from xanesnet.io import read as structures
from xanesnet.io.read import read_structures, write_xanesnet_xyz

FIXTURES = Path(__file__).parents[1] / "data" / "structures"
REPO = Path(__file__).resolve().parents[2]
SHARED_XYZ = Path("data/fe_k_edge/xanesnet_2022_preconv/xyz_train")


@pytest.fixture(params=["numba", "python"])
def parser(request, monkeypatch):
    """Run a test with the Numba fast path and with the pure-Python parser."""
    monkeypatch.setenv(fast_path.ENV, "1" if request.param == "numba" else "0")
    return request.param


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def random_atoms(rng: np.random.Generator, n: int) -> Atoms:
    numbers = np.concatenate([[26], rng.integers(1, 119, size=n - 1)])
    positions = rng.uniform(-8, 8, size=(n, 3))
    positions[0] = 0.0
    return Atoms(numbers=numbers, positions=positions)


def test_write_format_matches_shared_data(tmp_path):
    atoms = Atoms(numbers=[26, 6], positions=[[0, 0, 0], [0.630746415, 0.857792802, -1.4]])
    write_xanesnet_xyz(atoms, tmp_path / "ACNCFE_C16H8FeO4.xyz")
    assert (tmp_path / "ACNCFE_C16H8FeO4.xyz").read_text() == (
        "2\nACNCFE_C16H8FeO4_bav\n"
        "26\t0.0000000000\t0.0000000000\t0.0000000000\n"
        "6\t0.6307464150\t0.8577928020\t-1.4000000000\n"
    )
    write_xanesnet_xyz(atoms, tmp_path / "x.xyz", comment="hello")
    assert (tmp_path / "x.xyz").read_text().splitlines()[1] == "hello"


def test_round_trip(tmp_path, parser):
    rng = np.random.default_rng(0)
    atoms = random_atoms(rng, 40)
    path = tmp_path / "ABAXIK_C11H21FeIN3O2(1+).xyz"
    write_xanesnet_xyz(atoms, path)
    (got,) = list(read_structures(path))
    assert got.info["id"] == "ABAXIK_C11H21FeIN3O2(1+)"
    assert got.info["source"] == str(path)
    assert got.info["comment"] == "ABAXIK_C11H21FeIN3O2(1+)_bav"
    np.testing.assert_array_equal(got.numbers, atoms.numbers)
    np.testing.assert_allclose(got.positions, atoms.positions, atol=1e-10, rtol=0)
    assert not got.pbc.any()


def test_numbers_parse_exactly_like_float(tmp_path, parser):
    fields = [
        "0.6307464150", "-0.0000000000", "+2.25", ".5", "5.", "1.0E+02", "-3e-4", "7",
        "0.12345678901234567890",  # more digits than the fast path takes
        "123456789.987654321", "1e-30", "-9.999999999999999e22",
    ]  # fmt: skip
    while len(fields) % 3:
        fields.append("1.5")
    rows = [f"6 {a} {b} {c}" for a, b, c in zip(*[iter(fields)] * 3, strict=True)]
    path = write(tmp_path / "nums.xyz", f"{len(rows)}\ncomment\n" + "\n".join(rows))
    (got,) = list(read_structures(path))
    expected = np.array([float(f) for f in fields]).reshape(-1, 3)
    assert got.positions.tobytes() == expected.tobytes()  # bit-exact, signs of zero included


def test_fast_path_is_used_and_deferred(tmp_path, monkeypatch):
    write_xanesnet_xyz(random_atoms(np.random.default_rng(5), 6), tmp_path / "f.xyz")

    def no_python_parser(*args, **kwargs):
        raise AssertionError("line parser used")

    monkeypatch.setattr(xanesnet_xyz, "_iter_xanesnet_lines", no_python_parser)
    monkeypatch.setenv(fast_path.ENV, "1")
    assert len(next(read_structures(tmp_path / "f.xyz"))) == 6
    monkeypatch.setenv(fast_path.ENV, "auto")
    monkeypatch.setattr(fast_path, "WORTH_FROM", 0)
    assert len(next(read_structures(tmp_path / "f.xyz"))) == 6
    # "auto" before the threshold and without Numba imported: the Python parser does the work.
    monkeypatch.setattr(fast_path, "WORTH_FROM", 10**9)
    monkeypatch.delitem(sys.modules, "numba")
    with pytest.raises(ValueError, match="AssertionError: line parser used"):  # named file
        next(read_structures(tmp_path / "f.xyz"))
    monkeypatch.setenv(fast_path.ENV, "0")
    with pytest.raises(ValueError, match="AssertionError: line parser used"):  # named file
        next(read_structures(tmp_path / "f.xyz"))


def test_tabs_spaces_crlf_and_integral_float_z(tmp_path, parser):
    text = "2\r\n comment \r\n26\t0.0 0.0\t 0.0\r\n  8.0   1.5 -2.5 3.0  \r\n"
    (got,) = list(read_structures(write(tmp_path / "m.xyz", text)))
    assert got.numbers.tolist() == [26, 8]
    assert got.positions[1].tolist() == [1.5, -2.5, 3.0]
    assert got.info["comment"] == "comment"


def test_folder_ordering_ids_and_filters(tmp_path, parser):
    rng = np.random.default_rng(1)
    for name in ["b_2.xyz", "a_1.xyz", "C_0.xyz"]:
        write_xanesnet_xyz(random_atoms(rng, 5), tmp_path / name)
    ase.io.write(tmp_path / "d_3.cif", bulk("Fe"))
    write(tmp_path / "notes.txt", "not a structure")
    write(tmp_path / ".hidden.xyz", "garbage")
    (tmp_path / "sub.xyz").mkdir()
    got = list(read_structures(tmp_path))
    assert [a.info["id"] for a in got] == ["C_0", "a_1", "b_2", "d_3"]
    assert [Path(a.info["source"]).name for a in got] == [
        "C_0.xyz",
        "a_1.xyz",
        "b_2.xyz",
        "d_3.cif",
    ]
    assert got[3].pbc.all()


def test_glob_and_lists(tmp_path):
    rng = np.random.default_rng(2)
    for name in ["x1.xyz", "x2.xyz", "y1.xyz"]:
        write_xanesnet_xyz(random_atoms(rng, 3), tmp_path / name)
    ids = [a.info["id"] for a in read_structures(str(tmp_path / "x*.xyz"))]
    assert ids == ["x1", "x2"]
    mixed = [str(tmp_path / "y1.xyz"), (str(tmp_path / "x?.xyz"),), tmp_path / "x1.xyz"]
    assert [a.info["id"] for a in read_structures(mixed)] == ["y1", "x1", "x2", "x1"]


def test_committed_fixtures():
    got = list(read_structures(FIXTURES))
    assert [a.info["id"] for a in got] == [
        "FECL6_two_frames:0",
        "FECL6_two_frames:1",
        "FEN6_FeN6",
        "FEO6_FeO6",
    ]
    assert [a.info.get("charge") for a in got[:2]] == [2, 3]
    assert [a.info.get("spin") for a in got[:2]] == [4, 5]
    assert all(a.numbers[0] == 26 and len(a) == 7 for a in got)


def test_multiframe_extxyz_ids_metadata_and_index(tmp_path):
    frames = []
    for k in range(4):
        atoms = Atoms("FeO", positions=[[0, 0, 0], [0, 0, 1.6 + 0.1 * k]])
        atoms.info.update(charge=k - 1, spin=k)
        frames.append(atoms)
    path = tmp_path / "traj.extxyz"
    ase.io.write(path, frames, format="extxyz")
    got = list(read_structures(path))
    assert [a.info["id"] for a in got] == [f"traj:{k}" for k in range(4)]
    assert [a.info["charge"] for a in got] == [-1, 0, 1, 2]
    assert [a.info["spin"] for a in got] == [0, 1, 2, 3]
    assert [a.info["frame"] for a in got] == [0, 1, 2, 3]
    sel = lambda index: [a.info["id"] for a in read_structures(path, index=index)]  # noqa: E731
    assert sel("1:") == ["traj:1", "traj:2", "traj:3"]
    assert sel(slice(None, None, 2)) == ["traj:0", "traj:2"]
    assert sel(-1) == ["traj:3"]
    assert sel("-2:") == ["traj:2", "traj:3"]
    assert sel(1) == ["traj:1"]
    # A .xyz file with element symbols goes to ASE as well (auto-detection).
    ase.io.write(tmp_path / "std.xyz", frames[0], format="xyz")
    (single,) = list(read_structures(tmp_path / "std.xyz"))
    assert single.info["id"] == "std"
    assert single.get_chemical_symbols() == ["Fe", "O"]


def test_multiframe_xanesnet_xyz(tmp_path, parser):
    rng = np.random.default_rng(3)
    frames = [random_atoms(rng, n) for n in (3, 5, 4)]
    path = tmp_path / "multi.xyz"
    write_xanesnet_xyz(frames, path)
    path.write_text(path.read_text().replace("4\nmulti_bav", "\n\n4\nmulti_bav"))  # blank lines
    got = list(read_structures(path))
    assert [a.info["id"] for a in got] == ["multi:0", "multi:1", "multi:2"]
    for a, b in zip(got, frames, strict=True):
        np.testing.assert_array_equal(a.numbers, b.numbers)
        np.testing.assert_allclose(a.positions, b.positions, atol=1e-10)


def test_cif_and_poscar(tmp_path):
    ase.io.write(tmp_path / "iron.cif", bulk("Fe", cubic=True))
    ase.io.write(tmp_path / "POSCAR", bulk("Cu"), format="vasp")
    cif = list(read_structures(tmp_path / "iron.cif"))
    assert [a.info["id"] for a in cif] == ["iron"]
    assert cif[0].get_chemical_symbols() == ["Fe", "Fe"]
    (poscar,) = list(read_structures(tmp_path / "POSCAR"))
    assert poscar.info["id"] == "POSCAR"
    assert poscar.pbc.all()
    folder = [a.info["id"] for a in read_structures(tmp_path)]
    assert folder == ["POSCAR", "iron"]
    (forced,) = list(read_structures(tmp_path / "POSCAR", format="vasp"))
    assert forced.get_chemical_symbols() == ["Cu"]


def make_db(path: Path, n: int) -> None:
    with ase.db.connect(path) as db:
        for k in range(n):
            atoms = Atoms("FeO", positions=[[0, 0, 0], [0, 0, 1.5 + 0.01 * k]])
            db.write(atoms, charge=k % 3 - 1, spin=k % 2, tag=k % 2, name=f"s{k}")


def test_db_with_and_without_selection(tmp_path):
    path = tmp_path / "train.db"
    make_db(path, 6)
    got = list(read_structures(path))
    assert [a.info["id"] for a in got] == [f"train:{k}" for k in range(1, 7)]
    assert [a.info["row_id"] for a in got] == list(range(1, 7))
    assert [a.info["charge"] for a in got] == [-1, 0, 1, -1, 0, 1]
    assert [a.info["spin"] for a in got] == [0, 1, 0, 1, 0, 1]
    assert got[2].info["name"] == "s2" and got[2].info["source"] == str(path)
    np.testing.assert_allclose(got[2].positions[1], [0, 0, 1.52])
    assert [a.info["id"] for a in read_structures(path, select="tag=1")] == [
        "train:2",
        "train:4",
        "train:6",
    ]
    assert [a.info["id"] for a in read_structures(path, select="tag=1,name=s3")] == ["train:4"]
    assert [a.info["id"] for a in read_structures(path, select=5)] == ["train:5"]
    assert list(read_structures(path, select="tag=7")) == []


def test_db_is_streamed_in_pages(tmp_path, monkeypatch):
    path = tmp_path / "big.db"
    make_db(path, 50)
    monkeypatch.setattr(ase_db, "DB_PAGE_SIZE", 4)
    fetched = []
    original = ase.db.sqlite.SQLite3Database.select

    def counting_select(self, *args, **kwargs):
        for row in original(self, *args, **kwargs):
            fetched.append(row.id)
            yield row

    monkeypatch.setattr(ase.db.sqlite.SQLite3Database, "select", counting_select)
    stream = read_structures(path, select="natoms>0")  # a selection: the ase.db path
    first = next(stream)
    assert first.info["id"] == "big:1"
    assert len(fetched) <= 4  # one page, not the whole table
    rest = [a.info["row_id"] for a in stream]
    assert rest == list(range(2, 51))
    assert fetched == list(range(1, 51))  # every row fetched exactly once


def test_bulk_db_reader_is_streamed_in_pages(tmp_path, monkeypatch):
    path = tmp_path / "big.db"
    make_db(path, 50)
    monkeypatch.setattr(ase_db, "DB_PAGE_SIZE", 4)
    fetched = []
    original = ase_db.sqlite_pages

    def counting_pages(location):
        for page in original(location):
            fetched.extend(row[0] for row in page)
            yield page

    monkeypatch.setattr(ase_db, "sqlite_pages", counting_pages)
    stream = read_structures(path)
    assert next(stream).info["id"] == "big:1"
    assert len(fetched) <= 4  # one page, not the whole table
    assert [a.info["row_id"] for a in stream] == list(range(2, 51))
    assert fetched == list(range(1, 51))


def test_files_are_read_lazily(tmp_path, monkeypatch):
    rng = np.random.default_rng(4)
    write_xanesnet_xyz(random_atoms(rng, 3), tmp_path / "a.xyz")
    write(tmp_path / "b.xyz", "3\nbroken\n26 0 0 0\n")
    opened = []
    original = structures.iter_xanesnet

    def tracking(path, **kwargs):
        opened.append(os.path.basename(path))
        return original(path, **kwargs)

    monkeypatch.setattr(structures, "iter_xanesnet", tracking)
    stream = read_structures(tmp_path)
    assert opened == []  # nothing is read before iteration starts
    assert next(stream).info["id"] == "a"
    assert opened == ["a.xyz"]  # b.xyz not touched yet
    with pytest.raises(ValueError, match=r"b\.xyz: line 4: truncated"):
        next(stream)


# ------------------------------------------------------------------------------------------
# Errors
# ------------------------------------------------------------------------------------------


def test_missing_inputs(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.xyz"):
        read_structures(tmp_path / "nope.xyz")
    write_xanesnet_xyz(Atoms("Fe"), tmp_path / "a.xyz")
    with pytest.raises(FileNotFoundError, match="missing_dir"):
        read_structures([tmp_path, tmp_path / "missing_dir"])
    with pytest.raises(FileNotFoundError, match=r"glob pattern matches no files"):
        read_structures(str(tmp_path / "*.cif"))
    with pytest.raises(FileNotFoundError, match="absent.db"):
        read_structures(tmp_path / "absent.db")
    assert not (tmp_path / "absent.db").exists()  # not created as a side effect


def test_empty_inputs(tmp_path):
    write(tmp_path / "readme.txt", "x")
    with pytest.raises(ValueError, match="empty input"):
        read_structures(tmp_path)
    with pytest.raises(ValueError, match="empty input"):
        read_structures([])
    with pytest.raises(ValueError, match=r"e\.xyz: line 1: empty file"):
        list(read_structures(write(tmp_path / "e.xyz", "")))
    with pytest.raises(ValueError, match=r"e\.cif: line 1: empty file"):
        list(read_structures(write(tmp_path / "e.cif", "")))


XYZ_ERRORS = [
    ("3\nc\n26 0 0 0\n6 1 1 1\n", r"line 5: truncated file: the count says 3 atoms but only 2"),
    ("3\nc\n26 0 0 0\n6 1 1 1\n\n", r"line 5: truncated file: blank line where atom 2"),
    ("3\n", r"line 2: truncated file: expected a comment line and 3 atom rows"),
    ("2\nc\n26 0 0 0\n6 1.0 abc 2.0\n", r"line 4: non-numeric y coordinate of atom 1: 'abc'"),
    ("2\nc\n26 0 0 0\nC6 1.0 1 2.0\n", r"line 4: non-numeric atomic number of atom 1: 'C6'"),
    ("2\nc\n26 0 0 0\n6.5 1 1 2\n", r"line 4: atomic number of atom 1 is not an integer"),
    ("two\nc\n26 0 0 0\n6 1 1 1\n", r"line 1: atom count is not an integer: 'two'"),
    ("2.0\nc\n26 0 0 0\n6 1 1 1\n", r"line 1: atom count is not an integer"),
    ("0\nc\n", r"line 1: atom count must be positive"),
    ("2\nc\n0 0 0 0\n6 1 1 1\n", r"line 3: unknown element: atomic number 0 of atom 0"),
    ("2\nc\n26 0 0 0\n119 1 1 1\n", r"line 4: unknown element: atomic number 119 of atom 1"),
    ("2\nc\n26 0 0 0\n6 1 nan 1\n", r"line 4: non-finite \(NaN or inf\) y coordinate of atom 1"),
    ("2\nc\n26 0 0 0\n6 1 1 -inf\n", r"line 4: non-finite \(NaN or inf\) z coordinate of atom 1"),
    ("2\nc\n26 0 0 0\n6 1 1\n", r"line 4: expected 4 columns \(Z x y z\), got 3"),
    ("2\nc\n26 0 0 0 0\n6 1 1 1\n", r"line 3: expected 4 columns \(Z x y z\), got 5"),
    ("1\nc\n26 0 0 0\n2\nc\n26 0 0 0\n6 x 0 0\n", r"line 7: non-numeric x coordinate"),
]


@pytest.mark.parametrize(("text", "message"), XYZ_ERRORS)
def test_xanesnet_xyz_errors_name_file_and_line(tmp_path, parser, text, message):
    path = write(tmp_path / "bad(1+).xyz", text)
    with pytest.raises(ValueError, match=r"bad\(1\+\)\.xyz: " + message):
        list(read_structures(path))


def test_forced_xanesnet_format_rejects_symbols(tmp_path):
    path = write(tmp_path / "sym.txt", "1\nc\nFe 0 0 0\n")
    with pytest.raises(ValueError, match=r"sym\.txt: line 3: non-numeric atomic number"):
        list(read_structures(path, format="xanesnet"))


STD_XYZ_ERRORS = [
    ("2\nc\nFe 0 0 0\nQq 1 1 1\n", r"line 4: unknown element symbol 'Qq' \(atom 1\)"),
    ("2\nc\nFe 0 0 0\nX 1 1 1\n", r"line 4: unknown element symbol 'X'"),
    ("2\nc\nFe 0 0 0\nC 1 nan 1\n", r"line 4: non-finite \(NaN or inf\) y coordinate of atom 1"),
    ("3\nc\nFe 0 0 0\nC 1 1 1\n", r"line 5: truncated file: the count says 3 atoms"),
    ("2\nc\nFe 0 0 0\nC 1 q 1\n", r"line 4: non-numeric y coordinate of atom 1"),
]


@pytest.mark.parametrize(("text", "message"), STD_XYZ_ERRORS)
def test_standard_xyz_errors_name_file_and_line(tmp_path, text, message):
    path = write(tmp_path / "std.xyz", text)
    with pytest.raises(ValueError, match=r"std\.xyz: " + message):
        list(read_structures(path))


def test_ase_errors_are_wrapped_with_the_path(tmp_path):
    path = write(tmp_path / "junk.cif", "this is not a cif file\n")
    with pytest.raises(ValueError, match=r"junk\.cif"):
        list(read_structures(path))
    path = write(tmp_path / "junk.unknownext", "???\n")
    with pytest.raises(ValueError, match=r"junk\.unknownext"):
        list(read_structures(path))
    notdb = write(tmp_path / "notdb.db", "plain text, not SQLite\n")
    with pytest.raises(ValueError, match=r"notdb\.db"):
        list(read_structures(notdb))


def test_argument_errors(tmp_path):
    make_db(tmp_path / "s.db", 1)
    write_xanesnet_xyz(Atoms("Fe"), tmp_path / "a.xyz")
    with pytest.raises(ValueError, match="index: not supported for database inputs"):
        read_structures(tmp_path / "s.db", index=0)
    with pytest.raises(ValueError, match="select: applies to database inputs only"):
        read_structures(tmp_path / "a.xyz", select="tag=1")
    with pytest.raises(TypeError, match="expected a path"):
        read_structures(42)
    with pytest.raises(ValueError, match="index: cannot parse"):
        read_structures(tmp_path / "a.xyz", index="one")


def test_database_urls_are_recognised_and_redacted():
    assert sources.redact_url("postgresql://user:secret@host:5432/xanes") == (
        "postgresql://user:***@host:5432/xanes"
    )
    (source,) = sources.resolve_sources("postgresql://user:secret@host/xanes", None, None, None)[0]
    assert (source.kind, source.stem, source.display) == (
        "db",
        "xanes",
        "postgresql://user:***@host/xanes",
    )


# ------------------------------------------------------------------------------------------
# Shared reference data (skipped where ../shared/data is absent)
# ------------------------------------------------------------------------------------------


def shared_xyz_dir() -> Path | None:
    env = os.environ.get("XANESNET_SHARED")  # e.g. for a git worktree elsewhere
    bases = ([Path(env)] if env else []) + [REPO.parent / "shared", REPO / "shared"]
    for base in bases:
        if (base / SHARED_XYZ).is_dir():
            return base / SHARED_XYZ
    return None


@pytest.mark.shared_data
@pytest.mark.skipif(shared_xyz_dir() is None, reason="needs ../shared/data")
def test_shared_training_set():
    folder = shared_xyz_dir()
    got = list(read_structures(folder))
    assert len(got) == 4079
    assert len({a.info["id"] for a in got}) == 4079
    by_id = {a.info["id"]: a for a in got}
    first = by_id["ACNCFE_C16H8FeO4"]
    assert len(first) == 29 and first.numbers[0] == 26
    np.testing.assert_array_equal(first.positions[0], 0.0)
    assert first.positions[1].tolist() == [0.630746415, 0.857792802, 1.408070837]
    for atoms in got[::40]:  # fast path is bit-identical to float() on the text
        rows = Path(atoms.info["source"]).read_bytes().split(b"\n", 2)[2].split()
        table = np.array(rows, dtype=np.float64).reshape(-1, 4)
        assert np.array_equal(atoms.numbers, table[:, 0])
        assert np.array_equal(atoms.positions, table[:, 1:])


def test_folder_sources_are_lazy_and_equal_to_single_files(tmp_path):
    from xanesnet.io.sources import FolderSources, SourceList, file_source, folder_sources

    for name in ("b.xyz", "a.XYZ", "c.extxyz", ".hidden.xyz", "notes.txt", "d.db"):
        (tmp_path / name).write_text("")
    (tmp_path / "sub.xyz").mkdir()
    folder = folder_sources(str(tmp_path), None)
    assert isinstance(folder, FolderSources)
    expected = [
        file_source(str(tmp_path / n), None)
        for n in ("a.XYZ", "b.xyz", "c.extxyz")  # databases are not picked from folders
    ]
    assert list(folder) == expected and folder[1:3] == expected[1:3]
    assert folder.kinds == {"xyz", "ase"}
    single = file_source(str(tmp_path / "b.xyz"), None)
    chained = SourceList([single, folder, single])
    assert len(chained) == 5 and list(chained) == [single, *expected, single]
    assert chained[2:5] == [*expected[1:], single] and chained[-1] == single == chained[0]
    assert chained[::2] == [single, expected[1], single]
    assert chained.kinds == {"xyz", "ase"}
    with pytest.raises(IndexError):
        chained[5]
    forced = folder_sources(str(tmp_path), "xanesnet")
    assert forced.kinds == {"xanesnet"} and {s.kind for s in forced} == {"xanesnet"}


def test_locations_and_stems_match_the_source_records(tmp_path):
    from xanesnet.io.sources import locations_and_stems, resolve_sources

    folder = tmp_path / "f"
    folder.mkdir()
    from helpers import EXAMPLES

    frame = next(EXAMPLES.glob("*.xyz")).read_text()
    for name in ("a.xyz", "b.c.xyz", "D.XYZ", "POSCAR"):
        (folder / name).write_text(frame)
    single = tmp_path / "single.xyz"
    single.write_text(frame)
    resolved = resolve_sources([str(single), str(folder), str(single)], None, None, None)[0]
    records = list(resolved)
    for start, stop in [(0, len(records)), (1, 4), (2, 100), (5, 6)]:
        locations, stems = locations_and_stems(resolved, start, stop)
        assert locations == [r.location for r in records[start:stop]]
        assert stems == [r.stem for r in records[start:stop]]
