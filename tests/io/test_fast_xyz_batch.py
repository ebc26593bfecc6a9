"""Fast .xyz batch input (xanesnet.io.chunks): same output as the ase.Atoms path, chunk by chunk."""

from __future__ import annotations

import json
import os
import shutil
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from helpers import EXAMPLES

from xanesnet import predict_batch, read_predictions, read_structures
from xanesnet.descriptors.sites import compute_sites
from xanesnet.io import fast_path, xyz_blocks
from xanesnet.io.chunks import iter_chunks, uses_blocks
from xanesnet.io.sources import resolve_sources
from xanesnet.model.files import load_model
from xanesnet.model.pretrained import default_model_path
from xanesnet.store import PredictionStore

EXAMPLE_FILES = sorted(EXAMPLES.glob("*.xyz"))

#: Suffix -> contents of the odd files mixed into the example folder. Each is named after an
#: example file plus this suffix, so in name order they sit between the good files.
ODD_FILES = {
    "unparseable": "hello\nworld\n",
    "nan": "2\nc\n26 0 0 0\n8 nan 0 0\n",
    "overlap": "3\nc\n26 0 0 0\n8 1.9 0 0\n8 1.9 0.01 0\n",
    "nofe": "2\nc\n8 0 0 0\n8 1.2 0 0\n",
    "empty": "",
    "blank_only": "\n  \n",
    "count_high": "4\nc\n26 0 0 0\n8 1.9 0 0\n",
    "count_low": "2\nc\n26 0 0 0\n8 1.9 0 0\n8 -1.9 0 0\n",
    "unknown_z": "2\nc\n26 0 0 0\n200 1 0 0\n",
    "non_numeric": "2\nc\n26 0 0 0\n8 1.9 x 0\n",
    "two_frames": "2\na\n26 0 0 0\n8 1.9 0 0\n\n2\nb\n26 0 0 0\n8 0 2.0 0\n",
    "two_good_one_bad": "2\na\n26 0 0 0\n8 1.9 0 0\n2\nb\n26 0 0 0\n8 0 2 0\n2\nc\n26 0 0\n",
    "symbols": "2\nstandard xyz\nFe 0 0 0\nO 1.9 0 0\n",
    "symbols_crlf": "2\r\nfrom CSD (2024), refcode: ABCDEF\r\nFe 0 0 0\r\nCl 2.2 0 0\r\n",
    "symbols_trailing_blank": "2\n\nFe 0 0 0\nO 1.9 0 0\n\n  \n",
    "symbols_pbc_word": "2\nPBC\nFe 0 0 0\nO 1.9 0 0\n",
    "symbols_energy_word": "2\nenergy\nFe 0 0 0\nO 1.9 0 0\n",
    "symbols_key_value": "2\nname=x\nFe 0 0 0\nO 1.9 0 0\n",
    "symbols_triclinic": (
        '2\nLattice="7 0.5 0 0.3 7 0 0.1 0.2 7" pbc="T T T"\nFe 0 0 0\nO 1.9 0 0\n'
    ),
    "symbols_x": "2\nc\nFe 0 0 0\nX 1.9 0 0\n",
    "symbols_lowercase": "2\nc\nfe 0 0 0\no 1.9 0 0\n",
    "symbols_two_frames": "2\na\nFe 0 0 0\nO 1.9 0 0\n2\nb\nFe 0 0 0\nO 0 2.0 0\n",
    "periodic": (
        '2\nLattice="7 0 0 0 7 0 0 0 7" Properties=species:S:1:pos:R:3 pbc="T T T"\n'
        "Fe 0 0 0\nO 1.9 0 0\n"
    ),
    "float_z": "2\nc\n26.0 0 0 0\n8 1.9 0 0\n",
    "long_mantissa": "2\nc\n26 0 0 0\n8 1.90000000000000000001 0 0\n",
    "crlf": "2\r\nc\r\n26 0 0 0\r\n8 1.9 0 0\r\n",
    "blank_lines_around": "\n\n2\nc\n26 0 0 0\n8 1.9 0 0\n\n\n",
    "no_final_newline": "2\nc\n26 0 0 0\n8 1.9 0 0",
    "only_o": "1\nc\n8 0 0 0\n",
}
#: Odd files that the old path records as failed (read errors or descriptor errors).
FAILING = {
    "unparseable",
    "nan",
    "overlap",
    "nofe",
    "empty",
    "blank_only",
    "count_high",
    "count_low",
    "unknown_z",
    "non_numeric",
    "two_good_one_bad",
    "only_o",
    "symbols_x",
}


def _mixed_folder(root: Path, n_good: int = 24) -> Path:
    """Example files with the odd files interleaved (one after each of the first examples)."""
    folder = root / "mixed"
    folder.mkdir()
    for path in EXAMPLE_FILES[:n_good]:
        shutil.copy(path, folder / path.name)
    for path, (suffix, text) in zip(EXAMPLE_FILES, ODD_FILES.items()):
        (folder / f"{path.stem}_{suffix}.xyz").write_bytes(text.encode())
    return folder


def _odd_kind(structure_id: str) -> str | None:
    """The ODD_FILES key of a failed structure's id (a stem, or a path for read errors)."""
    name = Path(structure_id).name.removesuffix(".xyz")
    return max((k for k in ODD_FILES if name.endswith(f"_{k}")), key=len, default=None)


def _run(inputs, out: Path, fast: bool, **kwargs):
    summary = predict_batch(inputs, out, progress=False, fast_xyz=fast, **kwargs)
    manifest = json.loads((out / "manifest.json").read_text())
    return summary, read_predictions(out), manifest


def _assert_same_output(a, b) -> None:
    """Same summaries (but time), predictions, error tables and manifests (chunk layout)."""
    (summary_a, result_a, manifest_a), (summary_b, result_b, manifest_b) = a, b
    assert summary_a.line().split(";")[0] == summary_b.line().split(";")[0]
    np.testing.assert_array_equal(result_a.ids, result_b.ids)
    np.testing.assert_array_equal(result_a.sites, result_b.sites)
    np.testing.assert_array_equal(result_a.spectra, result_b.spectra)
    np.testing.assert_array_equal(result_a.spread, result_b.spread)
    assert result_a.errors == result_b.errors
    assert manifest_a == manifest_b


@pytest.fixture(scope="module")
def descriptor():
    return load_model(default_model_path("Fe", "K")).descriptor


@pytest.mark.parametrize("chunk_size", [16, 1024])
def test_examples_fast_equals_atoms_path(tmp_path, chunk_size):
    old = _run(EXAMPLES, tmp_path / "old", False, chunk_size=chunk_size)
    new = _run(EXAMPLES, tmp_path / "new", True, chunk_size=chunk_size)
    _assert_same_output(old, new)
    assert len(new[1].ids) == 100 and not new[1].errors


@pytest.mark.parametrize(
    ("chunk_size", "absorber", "block"),
    [(1, "Fe", 1024), (3, "Fe", 1024), (7, "Fe", 5), (64, "Fe", 1024), (4, 0, 3)],
)
def test_bad_files_fast_equals_atoms_path(tmp_path, monkeypatch, chunk_size, absorber, block):
    monkeypatch.setattr(xyz_blocks, "READ_BLOCK", block)  # block ends inside chunks, and not
    folder = _mixed_folder(tmp_path)
    kwargs = dict(chunk_size=chunk_size, absorber=absorber)
    old = _run(folder, tmp_path / "old", False, **kwargs)
    new = _run(folder, tmp_path / "new", True, **kwargs)
    _assert_same_output(old, new)
    result, manifest = new[1], new[2]
    failed = {_odd_kind(structure_id) for structure_id, _ in result.errors}
    # without Fe: "no sites" for the element absorber (not failures); index 0 selects an O
    # atom there, which the Fe model refuses
    no_fe = {"nofe", "only_o"}
    assert failed == (FAILING - no_fe if absorber == "Fe" else FAILING)
    assert {_odd_kind(i) for i in result.no_sites} == (no_fe if absorber == "Fe" else set())
    assert sum(c["structures"] for c in manifest["chunks"].values()) == new[0].structures
    assert any(i.endswith("_two_frames:1") for i in result.ids)
    assert any(i.endswith("_periodic") for i in result.ids)
    reasons = " ".join(reason for _, reason in result.errors)
    for expected in ("empty file", "truncated file", "non-finite", "Å apart", "unknown element"):
        assert expected in reasons


def test_multi_frame_file_across_chunk_boundary(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for path in EXAMPLE_FILES[:5]:
        shutil.copy(path, folder / path.name)
    frames = "".join(f"2\nf{k}\n26 0 0 0\n8 {1.8 + k / 10:.1f} 0 0\n" for k in range(5))
    (folder / f"{EXAMPLE_FILES[1].stem}_frames.xyz").write_text(frames)
    old = _run(folder, tmp_path / "old", False, chunk_size=4)
    new = _run(folder, tmp_path / "new", True, chunk_size=4)
    _assert_same_output(old, new)
    assert [c["structures"] for c in new[2]["chunks"].values()] == [4, 4, 2]


@pytest.mark.parametrize("resume_fast", [True, False])
def test_interrupted_fast_run_resumes_to_the_same_output(tmp_path, monkeypatch, resume_fast):
    folder = _mixed_folder(tmp_path)
    reference = _run(folder, tmp_path / "reference", False, chunk_size=3)
    original = PredictionStore.commit
    commits = []

    def commit_then_crash(self, index, *args, **kwargs):
        if len(commits) == 4:
            raise KeyboardInterrupt("simulated interruption")
        commits.append(index)
        return original(self, index, *args, **kwargs)

    out = tmp_path / "out"
    monkeypatch.setattr(PredictionStore, "commit", commit_then_crash)
    with pytest.raises(KeyboardInterrupt):
        predict_batch(folder, out, chunk_size=3, progress=False, fast_xyz=True)
    monkeypatch.undo()
    partial = read_predictions(out)
    assert not partial.metadata["complete"] and len(commits) == 4
    resumed = _run(folder, out, resume_fast, chunk_size=3)
    assert resumed[0].chunks_skipped == 4
    assert resumed[0].chunks_written == len(reference[2]["chunks"]) - 4
    np.testing.assert_array_equal(resumed[1].ids, reference[1].ids)
    np.testing.assert_array_equal(resumed[1].spectra, reference[1].spectra)
    np.testing.assert_array_equal(resumed[1].sites, reference[1].sites)
    assert resumed[1].errors == reference[1].errors
    assert resumed[2] == reference[2]


def test_shards_of_the_fast_path_equal_the_atoms_path(tmp_path):
    folder = _mixed_folder(tmp_path)
    old = _run(folder, tmp_path / "old", False, chunk_size=5, shard=(1, 3))
    new = _run(folder, tmp_path / "new", True, chunk_size=5, shard=(1, 3))
    _assert_same_output(old, new)
    assert new[0].chunks_skipped > 0 and new[0].chunks_written > 0


@pytest.mark.slow
def test_dask_fast_path_equals_single_process_atoms_path(tmp_path):
    pytest.importorskip("distributed")
    folder = _mixed_folder(tmp_path)
    old = _run(folder, tmp_path / "old", False, chunk_size=6)
    new = _run(folder, tmp_path / "dask", True, chunk_size=6, dask="local:1")
    _assert_same_output(old, new)


def test_switches_choose_the_reader(tmp_path, monkeypatch):
    calls = []
    real = xyz_blocks.read_files

    def spy(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(xyz_blocks, "read_files", spy)
    sources = resolve_sources([EXAMPLES], None, None, None)[0]
    blocks = list(iter_chunks(sources, 40, fast_xyz=True))
    assert [len(c.frames) for c in blocks] == [40, 40, 20] and len(calls) == 1
    per_file = list(iter_chunks(sources, 40, fast_xyz=False))
    assert len(calls) == 1
    for a, b in zip(blocks, per_file, strict=True):
        assert a.frames.ids == b.frames.ids and a.errors == b.errors
        np.testing.assert_array_equal(a.frames.positions, b.frames.positions)
    # a non-.xyz input anywhere: not the .xyz block reader
    extxyz = Path(__file__).parents[1] / "data" / "structures" / "FECL6_two_frames.extxyz"
    mixed = resolve_sources([EXAMPLES, extxyz], None, None, None)[0]
    assert not uses_blocks(mixed, True) and uses_blocks(sources, True)
    assert len(list(iter_chunks(mixed, 40, fast_xyz=True))) == 3 and len(calls) == 1
    monkeypatch.setenv(fast_path.ENV, "0")
    predict_batch(EXAMPLES, tmp_path / "off", chunk_size=50, progress=False)
    assert len(calls) == 1
    monkeypatch.setenv(fast_path.ENV, "1")
    predict_batch(EXAMPLES, tmp_path / "on", chunk_size=50, progress=False)
    assert len(calls) == 2
    predict_batch(EXAMPLES, tmp_path / "off2", chunk_size=50, progress=False, fast_xyz=False)
    assert len(calls) == 2


def test_auto_mode_takes_the_fast_path_for_large_inputs(monkeypatch):
    monkeypatch.delenv(fast_path.ENV, raising=False)
    assert fast_path.use_compiled(1, True) and not fast_path.use_compiled(10**6, False)
    monkeypatch.delitem(sys.modules, "numba", raising=False)  # as in a fresh process
    assert not fast_path.use_compiled(fast_path.WORTH_FROM - 1)
    assert fast_path.use_compiled(fast_path.WORTH_FROM)
    monkeypatch.setenv(fast_path.ENV, "on")
    assert fast_path.use_compiled(1)
    monkeypatch.setenv(fast_path.ENV, "off")
    assert not fast_path.use_compiled(10**6)


def test_read_files_matches_the_per_file_reader(tmp_path):
    folder = _mixed_folder(tmp_path, n_good=10)
    paths = sorted(str(p) for p in folder.iterdir()) + [str(tmp_path / "missing.xyz")]
    parsed, counts, numbers, positions = xyz_blocks.read_files(paths)
    assert not parsed[-1] and counts[-1] == 0
    assert numbers.dtype == np.int32 and positions.shape == (int(counts.sum()), 3)
    ends = np.cumsum(counts)
    expected_parsed = set()
    for k, path in enumerate(paths[:-1]):
        if not parsed[k]:
            continue
        expected_parsed.add(Path(path).name)
        (atoms,) = list(read_structures(path))  # exactly one frame
        a, b = ends[k] - counts[k], ends[k]
        np.testing.assert_array_equal(numbers[a:b], atoms.numbers)
        np.testing.assert_array_equal(positions[a:b], atoms.positions)
    good = {p.name for p in EXAMPLE_FILES[:10]}
    assert good <= expected_parsed
    refused = {"unparseable", "empty", "blank_only", "two_frames", "float_z"}
    # standard xyz with element symbols: parsed here when ase.io reads the comment as bare
    # flags only; anything that may carry a cell, periodicity, properties or results (or an
    # unusual symbol) is left to the per-file reader
    refused |= {
        "symbols_pbc_word",
        "symbols_energy_word",
        "symbols_key_value",
        "symbols_triclinic",
        "symbols_x",
        "symbols_lowercase",
        "symbols_two_frames",
    }
    assert not any(name.endswith(tuple(f"_{s}.xyz" for s in refused)) for name in expected_parsed)
    taken = {"symbols", "symbols_crlf", "symbols_trailing_blank"}
    assert {s for s in taken if any(n.endswith(f"_{s}.xyz") for n in expected_parsed)} == taken


COMPILED_READER = [False] + ([True] if xyz_blocks._compiled_reader() is not None else [])


@pytest.mark.parametrize("compiled", COMPILED_READER)
def test_threaded_and_compiled_reads_give_the_same_arrays(tmp_path, monkeypatch, compiled):
    folder = _mixed_folder(tmp_path, n_good=30)
    big = folder / "zz_big.xyz"  # over the limit: no bytes, left to the per-file reader
    big.write_bytes(EXAMPLE_FILES[0].read_bytes() + b"\n" * 20_000)
    monkeypatch.setattr(xyz_blocks, "MAX_FILE_BYTES", 20_000)  # the examples are smaller
    paths = sorted(str(p) for p in folder.iterdir()) + [str(tmp_path / "missing.xyz")]
    reference = xyz_blocks.read_files(paths, compiled=False)
    assert reference[0].sum() > 30  # most files parsed
    assert not reference[0][paths.index(str(big))]
    results = [xyz_blocks.read_files(paths, compiled=compiled)]
    with ThreadPoolExecutor(xyz_blocks.READ_THREADS) as pool:
        results.append(xyz_blocks.read_files(paths, pool, compiled=compiled))
    for result in results:
        for a, b in zip(reference, result, strict=True):
            np.testing.assert_array_equal(a, b)
    if compiled:  # the bytes themselves, not only what the parser made of them
        core = xyz_blocks._compiled_reader()
        buffer, offsets = core.read_whole_files(paths, xyz_blocks.MAX_FILE_BYTES)
        expected = xyz_blocks._read_whole_files(paths)
        assert [bytes(buffer[a:b]) for a, b in zip(offsets[:-1], offsets[1:])] == expected
        assert core.read_whole_files([], 10)[1].tolist() == [0]


def test_compiled_reader_requested_where_it_is_missing(monkeypatch):
    monkeypatch.setattr(xyz_blocks, "_compiled_reader", lambda: None)
    with pytest.raises(ValueError, match="compiled=True"):
        xyz_blocks.read_files([str(EXAMPLE_FILES[0])], compiled=True)
    parsed, *_ = xyz_blocks.read_files([str(EXAMPLE_FILES[0])])  # Python reads instead
    assert parsed.tolist() == [True]


def test_slow_blocks_switch_to_reading_ahead_and_output_is_unchanged(tmp_path, monkeypatch):
    if not hasattr(os, "posix_fadvise"):
        pytest.skip("no posix_fadvise on this platform")
    monkeypatch.setattr(xyz_blocks, "READ_BLOCK", 5)
    monkeypatch.setattr(xyz_blocks, "SLOW_READ_S", 0.0)  # every block counts as read from disk
    advised: list[str] = []
    real = xyz_blocks.advise_will_need

    def spy(paths):
        advised.extend(paths)
        real(paths)

    monkeypatch.setattr(xyz_blocks, "advise_will_need", spy)
    folder = _mixed_folder(tmp_path)
    old = _run(folder, tmp_path / "old", False, chunk_size=7)
    new = _run(folder, tmp_path / "new", True, chunk_size=7)
    _assert_same_output(old, new)
    listed = sorted(str(p) for p in folder.iterdir() if p.suffix == ".xyz")
    # the first block is read before any block was slow; every later file is asked for once
    assert advised == listed[xyz_blocks.READ_BLOCK :]
    assert len(listed) > 3 * xyz_blocks.READ_BLOCK  # several blocks: reading ahead was exercised
    real(["/no/such/file.xyz"])  # nothing to read ahead: skipped, the reader reports it


def test_slow_blocks_switch_to_threads_without_fadvise(tmp_path, monkeypatch):
    monkeypatch.setattr(xyz_blocks, "READ_BLOCK", 5)
    monkeypatch.setattr(xyz_blocks, "SLOW_READ_S", 0.0)  # every block counts as read from disk
    monkeypatch.delattr(os, "posix_fadvise", raising=False)
    pools = []
    real = xyz_blocks.ThreadPoolExecutor

    def spy(*args, **kwargs):
        pools.append(real(*args, **kwargs))
        return pools[-1]

    monkeypatch.setattr(xyz_blocks, "ThreadPoolExecutor", spy)
    folder = _mixed_folder(tmp_path)
    old = _run(folder, tmp_path / "old", False, chunk_size=7)
    new = _run(folder, tmp_path / "new", True, chunk_size=7)
    _assert_same_output(old, new)
    assert len(pools) == 1 and pools[0]._shutdown  # one pool, closed at the end


def test_large_files_are_left_to_the_per_file_reader(tmp_path, monkeypatch):
    frame = EXAMPLE_FILES[0].read_bytes()
    big = tmp_path / "big.xyz"
    big.write_bytes(frame + b"\n" * (200_000 - len(frame)))  # one frame, blank lines after
    paths = [str(EXAMPLE_FILES[1]), str(big), str(EXAMPLE_FILES[2])]
    parsed, counts, _, _ = xyz_blocks.read_files(paths)
    assert parsed.tolist() == [True, True, True]
    monkeypatch.setattr(xyz_blocks, "MAX_FILE_BYTES", 100_000)
    parsed, counts, _, _ = xyz_blocks.read_files(paths)
    assert parsed.tolist() == [True, False, True] and counts[1] == 0
    for path in EXAMPLE_FILES[:3]:
        shutil.copy(path, tmp_path / path.name)
    old = _run(tmp_path, tmp_path / "old", False, chunk_size=2)
    new = _run(tmp_path, tmp_path / "new", True, chunk_size=2)
    _assert_same_output(old, new)
    assert "big" in new[1].ids


def test_compute_chunk_sites_equals_compute_sites(tmp_path, backend, descriptor):
    folder = _mixed_folder(tmp_path)
    sources, _ = resolve_sources(folder, None, None, None)
    chunk = next(iter_chunks(sources, 10_000, fast_xyz=True)).frames
    atoms = list(read_structures(folder, on_error=lambda *_: None))
    assert [a.info["id"] for a in atoms] == chunk.ids
    for absorber in ("Fe", 0, "Xx"):
        got = compute_sites(descriptor, chunk, absorber, backend=backend)
        want = compute_sites(descriptor, atoms, absorber, backend=backend)
        np.testing.assert_array_equal(got[0], want[0])
        assert got[1] == want[1] and got[3] == want[3]
        np.testing.assert_array_equal(got[2], want[2])
    assert len(want[3]) == len(atoms)  # "Xx": every structure fails, with the same message
    good = [
        s for s in range(len(chunk)) if not chunk.ids[s].endswith(("_nofe", "_overlap", "_only_o"))
    ]
    features, _ = descriptor.compute([atoms[s] for s in good], "Fe", backend=backend)
    got = compute_sites(descriptor, chunk, "Fe", backend=backend)[0]
    np.testing.assert_array_equal(got, features[: len(got)])


def _shared_xyz() -> Path | None:
    import os

    env = os.environ.get("XANESNET_SHARED")
    root = Path(__file__).resolve().parents[2]
    for base in ([Path(env)] if env else []) + [root.parent / "shared", root / "shared"]:
        folder = base / "data" / "fe_k_edge" / "xanesnet_2022_preconv" / "xyz_train"
        if folder.is_dir():
            return folder
    return None


@pytest.mark.shared_data
@pytest.mark.skipif(_shared_xyz() is None, reason="needs ../shared/data (or XANESNET_SHARED)")
def test_real_training_set_reads_the_same_structures():
    folder = _shared_xyz()
    sources, _ = resolve_sources(folder, None, None, None)
    chunks = list(iter_chunks(sources, 1000, fast_xyz=True))
    assert [len(c.frames) for c in chunks] == [1000] * 4 + [79]
    assert not any(c.errors for c in chunks)
    atoms = list(read_structures(folder))
    assert [i for c in chunks for i in c.frames.ids] == [a.info["id"] for a in atoms]
    numbers = np.concatenate([c.frames.numbers for c in chunks])
    positions = np.concatenate([c.frames.positions for c in chunks])
    np.testing.assert_array_equal(numbers, np.concatenate([a.numbers for a in atoms]))
    np.testing.assert_array_equal(positions, np.concatenate([a.positions for a in atoms]))
