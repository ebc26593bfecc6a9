"""Unique, stable ids (relative paths where stems clash), the per-site source and kept info
columns in every output format, the warning about files a folder input skips, and batch
progress off a terminal."""

from __future__ import annotations

import csv
import io
import shutil
import warnings

import numpy as np
import pytest
from ase.build import bulk
from ase.io import write
from helpers import EXAMPLES

from xanesnet import predict_batch, read_predictions, read_structures
from xanesnet.io.sources import SkippedFilesWarning
from xanesnet.pipeline.batch import OutOfDomainWarning
from xanesnet.pipeline.progress import ProgressCounter

MOLECULE = sorted(EXAMPLES.glob("*.xyz"))[0]


@pytest.fixture(autouse=True)
def _quiet_domain_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OutOfDomainWarning)
        yield


def test_clashing_stems_become_relative_paths(tmp_path):
    for run in ("run1", "run2", "run3"):
        (tmp_path / "vasp" / run).mkdir(parents=True)
        write(tmp_path / "vasp" / run / "CONTCAR", bulk("Fe", cubic=True), format="vasp")
    summary = predict_batch(
        str(tmp_path / "vasp" / "run*" / "CONTCAR"), tmp_path / "out", progress=False
    )
    stored = read_predictions(tmp_path / "out")
    assert summary.sites == 6
    assert list(dict.fromkeys(stored.ids)) == ["run1/CONTCAR", "run2/CONTCAR", "run3/CONTCAR"]
    assert stored.columns["source"][0].endswith("run1/CONTCAR")


def test_stems_that_differ_only_by_suffix_keep_it(tmp_path):
    atoms = next(read_structures(MOLECULE))
    write(tmp_path / "hem.traj", atoms)
    write(tmp_path / "hem.json", atoms)
    write(tmp_path / "other.traj", atoms)
    names = [tmp_path / "hem.traj", tmp_path / "hem.json", tmp_path / "other.traj"]
    ids = [a.info["id"] for a in read_structures(names)]
    assert ids == ["hem.traj", "hem.json", "other"]
    # unique stems stay as they were; the same file twice keeps its one id
    assert [a.info["id"] for a in read_structures([names[2], names[2]])] == ["other", "other"]


def test_folder_and_file_with_one_stem(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    shutil.copy(MOLECULE, tmp_path / "a" / "fe.xyz")
    shutil.copy(MOLECULE, tmp_path / "b" / "fe.xyz")
    ids = [a.info["id"] for a in read_structures([tmp_path / "a", tmp_path / "b" / "fe.xyz"])]
    assert ids == ["a/fe", "b/fe"]


def _inputs(tmp_path):
    """An ASE database with key-value pairs and an extended XYZ file with info keys."""
    import ase.db

    crystal = bulk("Fe", cubic=True)
    with ase.db.connect(tmp_path / "screen.db") as db:
        db.write(crystal, label="bcc", energy_tag=-1.5)
        db.write(crystal, label="second")  # no energy_tag
    extended = crystal.copy()
    extended.info.update(label="xyz", energy_tag=2.25)
    write(tmp_path / "frames.extxyz", [extended, crystal], format="extxyz")
    return [tmp_path / "screen.db", tmp_path / "frames.extxyz"]


@pytest.mark.parametrize("fmt", ["hdf5", "zarr", "csv"])
def test_source_and_kept_info_columns(tmp_path, fmt):
    if fmt == "zarr":
        pytest.importorskip("zarr")
    inputs = _inputs(tmp_path)
    out = tmp_path / f"out_{fmt}"
    predict_batch(inputs, out, format=fmt, keep_info="label,energy_tag,unique_id", progress=False)
    stored = read_predictions(out)
    assert stored.metadata["job"]["keep_info"] == ["label", "energy_tag", "unique_id"]
    per_structure = {i: n for n, i in enumerate(dict.fromkeys(stored.ids))}
    assert list(per_structure) == ["screen:1", "screen:2", "frames:0", "frames:1"]
    first = [list(stored.ids).index(i) for i in per_structure]  # first site of each
    sources = stored.columns["source"][first]
    assert list(sources) == [str(inputs[0])] * 2 + [str(inputs[1])] * 2
    assert list(stored.columns["info.label"][first]) == ["bcc", "second", "xyz", ""]
    energy = stored.columns["info.energy_tag"][first]
    assert energy.dtype == np.float64
    np.testing.assert_array_equal(energy, [-1.5, np.nan, 2.25, np.nan])
    unique = stored.columns["info.unique_id"][first]
    assert all(len(u) == 32 for u in unique[:2]) and list(unique[2:]) == ["", ""]
    # readable without xanesnet, the column named as in read_predictions
    if fmt == "hdf5":
        import h5py

        with h5py.File(out / "predictions.h5") as f:
            assert f["source"].asstr()[0] == str(inputs[0])
            assert f["info.label"].asstr()[0] == "bcc"
    elif fmt == "zarr":
        import zarr

        root = zarr.open_group(out / "predictions.zarr", mode="r")
        assert str(root["info.label"][0]) == "bcc"
    else:
        with open(out / "site_info.csv", newline="") as handle:
            rows = list(csv.DictReader(handle))
        assert rows[0]["source"] == str(inputs[0]) and rows[0]["info.energy_tag"] == "-1.5"
        assert len(rows) == len(stored.ids)


def test_kept_info_is_part_of_the_job(tmp_path):
    inputs = _inputs(tmp_path)
    predict_batch(inputs, tmp_path / "out", keep_info=["label"], progress=False)
    with pytest.raises(ValueError, match="different job"):
        predict_batch(inputs, tmp_path / "out", keep_info=["energy_tag"], progress=False)
    with pytest.raises(ValueError, match="keep_info"):
        predict_batch(inputs, tmp_path / "bad", keep_info="a b", progress=False)


def test_a_folder_says_which_files_it_skips_once_per_job(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(MOLECULE, folder / "fe.xyz")
    write(folder / "hem.json", next(read_structures(MOLECULE)))
    (folder / "notes.txt").write_text("not a structure\n")
    (folder / ".hidden").write_text("")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        predict_batch(folder, tmp_path / "out", progress=False)
    said = [str(w.message) for w in caught if w.category is SkippedFilesWarning]
    assert len(said) == 1
    assert said[0].startswith(f"skipped 2 files in {folder} with unsupported suffixes: ")
    assert "hem.json, notes.txt" in said[0]
    assert set(read_predictions(tmp_path / "out").ids) == {"fe"}


def test_progress_off_a_terminal_is_plain_lines():
    stream = io.StringIO()
    now = [0.0]
    counter = ProgressCounter(
        None, "predicting", "site", stream=stream, log_interval=10, clock=lambda: now[0]
    )
    for _ in range(25):
        now[0] += 1.0
        counter.update(4, "failed 0")
    counter.total = 200
    counter.close()
    text = stream.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert lines[0] == "predicting: 40 site, 10 s; failed 0"
    assert lines[-1] == "predicting: 100/200 site (50 %), 25 s; failed 0"


@pytest.mark.parametrize("fast_xyz", [True, False])
def test_every_reader_path_names_the_source_of_each_structure(tmp_path, fast_xyz):
    from xanesnet.io.chunks import iter_chunks
    from xanesnet.io.sources import resolve_sources

    folder = tmp_path / "xyz"
    folder.mkdir()
    for name in sorted(EXAMPLES.glob("*.xyz"))[:3]:
        shutil.copy(name, folder / name.name)
    sources, _ = resolve_sources(folder, None, None, None)
    chunks = list(iter_chunks(sources, 2, fast_xyz=fast_xyz))
    assert [s for c in chunks for s in c.sources] == [str(s.location) for s in sources]
    write(tmp_path / "f.extxyz", [bulk("Fe"), bulk("Fe")], format="extxyz")
    sources, _ = resolve_sources(tmp_path / "f.extxyz", None, None, None)
    chunks = list(iter_chunks(sources, 1, fast_xyz=fast_xyz))
    assert [c.sources for c in chunks] == [[str(tmp_path / "f.extxyz")]] * 2


def test_cli_keep_info_and_skipped_files_line(tmp_path, capsys):
    from xanesnet.cli.batch import main

    folder = tmp_path / "in"
    folder.mkdir()
    write(folder / "fe.extxyz", bulk("Fe", cubic=True), format="extxyz")
    (folder / "notes.txt").write_text("not a structure\n")
    code = main([str(folder), "-o", str(tmp_path / "out"), "--keep-info", "pbc", "--quiet"])
    assert code == 0
    err = capsys.readouterr().err
    assert f"warning: skipped 1 files in {folder} with unsupported suffixes: notes.txt" in err
    stored = read_predictions(tmp_path / "out")
    assert stored.metadata["job"]["keep_info"] == ["pbc"]
    assert set(stored.columns["source"]) == {str(folder / "fe.extxyz")}
