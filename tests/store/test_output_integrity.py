"""The output folder's safeguards: chunk checksums (damaged chunks recomputed on resume,
refused on reading), one writer at a time, inputs that changed refused, write failures that
leave the folder resumable."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import numpy as np
import pytest
from helpers import lock_held_elsewhere

from xanesnet.store import (
    DamagedChunkWarning,
    OutputLockedError,
    OutputWriteError,
    PredictionStore,
    read_predictions,
)
from xanesnet.store.inputs import InputFingerprint

ENERGIES = np.linspace(7100.0, 7150.0, 7)
FORMATS = ["hdf5", "csv", "zarr"]


def _chunk(index: int, n: int = 300) -> dict:
    rng = np.random.default_rng(index)
    return {
        "ids": [f"s{index}_{i}" for i in range(n)],
        "sites": np.zeros(n, dtype=np.int64),
        "spectra": rng.random((n, len(ENERGIES))).astype(np.float32),
        "spread": None,
        "errors": [(f"bad{index}", "no absorber")],
        "n_structures": n + 1,
    }


def _write(out: Path, indices, format: str = "hdf5", job=None, inputs=None) -> PredictionStore:
    if format == "zarr":
        pytest.importorskip("zarr")
    store = PredictionStore(
        out, job or {"job": 1}, ENERGIES, has_spread=False, format=format, inputs=inputs
    )
    for k in indices:
        c = _chunk(k)
        store.commit(k, c["ids"], c["sites"], c["spectra"], None, c["errors"], c["n_structures"])
    return store


def _chunk_files(out: Path, index: int) -> list[Path]:
    files = [p for p in (out / "chunks").rglob("*") if p.is_file() and f"{index:06d}" in str(p)]
    assert files
    return files


@pytest.mark.parametrize("format", FORMATS)
def test_checksums_are_recorded_and_equal_for_equal_data(tmp_path, format):
    _write(tmp_path / "a", [0, 1], format)
    _write(tmp_path / "b", [1, 0], format)  # other commit order, same data
    a = json.loads((tmp_path / "a" / "manifest.json").read_text())["chunks"]
    b = json.loads((tmp_path / "b" / "manifest.json").read_text())["chunks"]
    assert a == b and all(len(entry["sha256"]) == 64 for entry in a.values())


@pytest.mark.parametrize("format", FORMATS)
def test_a_flipped_byte_never_passes_silently(tmp_path, format):
    """A byte flipped anywhere in a chunk's largest file either leaves the data as written
    (padding, unused header space) or is refused naming the chunk: never other spectra."""
    out = tmp_path / "out"
    _write(out, [0, 1, 2], format).finish()
    expected = read_predictions(out)
    target = max(_chunk_files(out, 1), key=lambda p: p.stat().st_size)
    original = target.read_bytes()
    refused = 0
    for position in range(0, len(original), max(1, len(original) // 40)):
        damaged = bytearray(original)
        damaged[position] ^= 0x10
        target.write_bytes(bytes(damaged))
        try:
            result = read_predictions(out)
        except ValueError as exc:
            assert "chunk 1 is damaged" in str(exc)
            refused += 1
            continue
        np.testing.assert_array_equal(result.spectra, expected.spectra)
        np.testing.assert_array_equal(result.ids, expected.ids)
        assert result.errors == expected.errors
    target.write_bytes(original)
    assert refused > 0


@pytest.mark.parametrize("format", FORMATS)
@pytest.mark.parametrize("fault", ["truncate", "delete"])
def test_a_damaged_chunk_is_recomputed_on_resume(tmp_path, format, fault):
    out = tmp_path / "out"
    _write(out, [0, 1, 2], format).close()
    target = max(_chunk_files(out, 1), key=lambda p: p.stat().st_size)
    if fault == "truncate":
        target.write_bytes(target.read_bytes()[: target.stat().st_size // 2])
    else:
        target.unlink()
    with pytest.raises(ValueError, match="chunk 1 is damaged"):
        read_predictions(out)
    with pytest.warns(DamagedChunkWarning, match="chunk 1"):
        store = PredictionStore(out, {"job": 1}, ENERGIES, has_spread=False, format=format)
    assert store.committed == {0, 2} and [i for i, _ in store.damaged] == [1]
    c = _chunk(1)
    store.commit(1, c["ids"], c["sites"], c["spectra"], None, c["errors"], c["n_structures"])
    store.finish()
    result = read_predictions(out)
    expected = np.concatenate([_chunk(k)["spectra"] for k in range(3)])
    np.testing.assert_array_equal(result.spectra, expected)


def test_a_second_process_is_refused(tmp_path):
    """The lock as another process holds it (a child holding flock on the lock file)."""
    out = tmp_path / "out"
    _write(out, [0]).close()
    with lock_held_elsewhere(out / ".lock"):
        with pytest.raises(OutputLockedError, match=str(out)):
            PredictionStore(out, {"job": 1}, ENERGIES, has_spread=False)
    PredictionStore(out, {"job": 1}, ENERGIES, has_spread=False).close()  # free again


def test_changed_inputs_are_refused_naming_the_files(tmp_path):
    files = []
    for name in ("a.xyz", "b.xyz", "c.xyz"):
        (tmp_path / name).write_text(name)
        files.append(str(tmp_path / name))
    out = tmp_path / "out"
    _write(out, [0], inputs=InputFingerprint.of(files)).close()
    # unchanged inputs resume
    PredictionStore(
        out, {"job": 1}, ENERGIES, has_spread=False, inputs=InputFingerprint.of(files)
    ).close()
    (tmp_path / "b.xyz").write_text("edited, longer")
    (tmp_path / "d.xyz").write_text("new")
    changed = [files[0], files[1], str(tmp_path / "d.xyz")]
    with pytest.raises(
        ValueError, match=r"inputs changed.*added: .*d\.xyz.*removed: .*c\.xyz"
    ) as e:
        PredictionStore(
            out, {"job": 1}, ENERGIES, has_spread=False, inputs=InputFingerprint.of(changed)
        )
    assert "modified: " in str(e.value) and "b.xyz" in str(e.value)


def test_inputs_made_in_a_thread_are_on_record_with_the_first_chunk(tmp_path):
    """A new output takes its input fingerprint as a function run in a thread: the manifest
    holds it from the first committed chunk on (never a chunk without it), a resume over
    changed inputs is refused as before, and an output with no chunk yet resumes freely."""
    files = []
    for name in ("a.xyz", "b.xyz"):
        (tmp_path / name).write_text(name)
        files.append(str(tmp_path / name))
    out = tmp_path / "out"
    store = PredictionStore(
        out, {"job": 1}, ENERGIES, has_spread=False, inputs=lambda: InputFingerprint.of(files)
    )
    on_disk = json.loads((out / "manifest.json").read_text())
    assert "inputs" not in on_disk and on_disk["chunks"] == {}
    c = _chunk(0)
    store.commit(0, c["ids"], c["sites"], c["spectra"], None, c["errors"], c["n_structures"])
    on_disk = json.loads((out / "manifest.json").read_text())
    assert on_disk["inputs"] == InputFingerprint.of(files).summary()
    assert InputFingerprint.read(out) == InputFingerprint.of(files)
    store.close()
    (tmp_path / "b.xyz").write_text("edited, longer")
    with pytest.raises(ValueError, match=r"inputs changed.*modified: .*b\.xyz"):
        PredictionStore(
            out, {"job": 1}, ENERGIES, has_spread=False, inputs=lambda: InputFingerprint.of(files)
        )
    # killed before any chunk: nothing on record to protect, a resume goes on
    fresh = tmp_path / "fresh"
    PredictionStore(fresh, {"job": 1}, ENERGIES, has_spread=False, inputs=lambda: 1 / 0).close()
    again = PredictionStore(
        fresh, {"job": 1}, ENERGIES, has_spread=False, inputs=InputFingerprint.of(files)
    )
    assert again.committed == set()
    again.close()
    # a fingerprint that fails fails the commit that would record it
    failing = PredictionStore(
        tmp_path / "failing", {"job": 1}, ENERGIES, has_spread=False, inputs=lambda: 1 / 0
    )
    with pytest.raises(ZeroDivisionError):
        failing.commit(0, c["ids"], c["sites"], c["spectra"], None, c["errors"], c["n_structures"])
    assert failing.committed == set()
    failing.close()


def test_a_failed_first_manifest_leaves_a_fresh_folder(tmp_path, monkeypatch):
    import xanesnet.store._output as output

    out = tmp_path / "out"
    real = output.atomic_json

    def disk_full(path, data):
        # write part of the file as a full disk would, then fail
        (path.parent / f".{path.name}.partial").write_text("{")
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(output, "atomic_json", disk_full)
    with pytest.raises(OutputWriteError, match="No space left on device"):
        PredictionStore(out, {"job": 1}, ENERGIES, has_spread=False)
    monkeypatch.setattr(output, "atomic_json", real)
    # the leftovers of the failed start do not make the folder "someone else's"
    _write(out, [0]).finish()
    assert read_predictions(out).spectra.shape == (300, len(ENERGIES))


def test_a_read_only_output_is_a_write_error_and_keeps_what_was_committed(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders")
    out = tmp_path / "out"
    _write(out, [0]).close()
    os.chmod(out, 0o555)
    os.chmod(out / "chunks", 0o555)
    try:
        store = PredictionStore(out, {"job": 1}, ENERGIES, has_spread=False)
        c = _chunk(1)
        with pytest.raises(OutputWriteError, match="cannot write the output"):
            store.commit(1, c["ids"], c["sites"], c["spectra"], None, c["errors"], 5)
    finally:
        os.chmod(out / "chunks", 0o755)
        os.chmod(out, 0o755)
    assert read_predictions(out).ids.tolist() == _chunk(0)["ids"]


def test_a_commit_that_hits_a_full_disk_is_a_write_error(tmp_path, monkeypatch):
    store = _write(tmp_path / "out", [0])

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(type(store.backend), "write_chunk", full)
    c = _chunk(1)
    with pytest.raises(OutputWriteError, match="No space left on device") as e:
        store.commit(1, c["ids"], c["sites"], c["spectra"], None, c["errors"], 5)
    assert e.value.errno == errno.ENOSPC
    assert store.committed == {0}
