"""Plain extended XYZ frames packed without ase.Atoms give the Atoms path's output exactly."""

from __future__ import annotations

import ase.io
import numpy as np
import pytest
from ase import Atoms
from helpers import EXAMPLES

from xanesnet import predict_batch, read_predictions, read_structures
from xanesnet.io import chunks
from xanesnet.io.chunks import iter_chunks
from xanesnet.io.sources import file_source, resolve_sources


def _frames() -> list[Atoms]:
    frames = list(read_structures(EXAMPLES))[:30]
    for atoms in frames:
        atoms.info = {}
    return frames


def _inputs(tmp_path):
    frames = _frames()
    ase.io.write(tmp_path / "molecules.extxyz", frames[:12], format="extxyz")
    periodic = [a.copy() for a in frames[12:16]]
    for k, atoms in enumerate(periodic):
        atoms.cell = np.eye(3) * (30.0 + k)
        atoms.pbc = True
        atoms.center()
    ase.io.write(tmp_path / "periodic.extxyz", periodic, format="extxyz")
    ase.io.write(tmp_path / "single.extxyz", frames[16], format="extxyz")
    # a frame with an extra per-atom column in the middle: the rest goes through ase.io
    mixed = [a.copy() for a in frames[17:22]]
    mixed[2].set_initial_charges(np.linspace(0, 1, len(mixed[2])))
    ase.io.write(tmp_path / "mixed.extxyz", mixed, format="extxyz")
    # a NaN coordinate in frame 1: the file stops there, recorded as an error
    text = (tmp_path / "molecules.extxyz").read_text().splitlines()
    n = int(text[0])
    bad = text[: 2 * (n + 2)]
    row = bad[n + 2 + 3].split()
    bad[n + 2 + 3] = " ".join([row[0], "nan", *row[2:]])
    (tmp_path / "nan.extxyz").write_text("\n".join(bad) + "\n")
    (tmp_path / "empty.extxyz").write_text("")
    (tmp_path / "unknown.extxyz").write_text(
        '2\nProperties=species:S:1:pos:R:3 pbc="F F F"\nFe 0 0 0\nQq 2 0 0\n'
    )
    ase.io.write(tmp_path / "cell.cif", periodic[0], format="cif")
    return [
        tmp_path / name
        for name in (
            "molecules.extxyz",
            "periodic.extxyz",
            "single.extxyz",
            "mixed.extxyz",
            "nan.extxyz",
            "empty.extxyz",
            "unknown.extxyz",
            "cell.cif",
        )
    ]


@pytest.mark.parametrize("chunk_size", [1, 5, 64])
def test_packed_extxyz_equals_atoms_path(tmp_path, chunk_size):
    inputs = _inputs(tmp_path)
    outputs = []
    for fast in (True, False):
        out = tmp_path / f"out-{fast}"
        summary = predict_batch(
            [str(p) for p in inputs], out, chunk_size=chunk_size, progress=False, fast_xyz=fast
        )
        outputs.append((summary, read_predictions(out), (out / "manifest.json").read_text()))
    (sa, ra, ma), (sb, rb, mb) = outputs
    assert sa.line().split(";")[0] == sb.line().split(";")[0]
    assert sa.failed == sb.failed == 3  # nan, empty, unknown element (mixed reads via ase.io)
    np.testing.assert_array_equal(ra.ids, rb.ids)
    np.testing.assert_array_equal(ra.sites, rb.sites)
    np.testing.assert_array_equal(ra.spectra, rb.spectra)
    np.testing.assert_array_equal(ra.spread, rb.spread)
    assert ra.errors == rb.errors and ma == mb
    assert "single" in list(ra.ids) and "molecules:11" in list(ra.ids)


def test_packed_extxyz_chunks_hold_the_same_structures(tmp_path):
    inputs = [str(p) for p in _inputs(tmp_path)]
    sources = resolve_sources(inputs, None, None, None)[0]
    packed = list(iter_chunks(sources, 7))
    plain = list(iter_chunks(sources, 7, fast_xyz=False))  # every structure through ase.Atoms
    assert [c.index for c in packed] == [c.index for c in plain]
    for a, b in zip(packed, plain, strict=True):
        assert a.errors == b.errors and a.frames.ids == b.frames.ids
        for got, atoms in zip(a.frames.to_atoms(), b.frames.to_atoms(), strict=True):
            np.testing.assert_array_equal(got.numbers, atoms.numbers)
            np.testing.assert_array_equal(got.positions, atoms.positions)
            np.testing.assert_array_equal(got.cell.array, atoms.cell.array)
            np.testing.assert_array_equal(got.pbc, atoms.pbc)


def test_packed_extxyz_streams_frame_by_frame(tmp_path, monkeypatch):
    """Memory stays flat: the reader is at most one frame ahead of what it has handed out."""
    path = tmp_path / "many.extxyz"
    ase.io.write(path, _frames() * 4, format="extxyz")
    produced = []
    real = chunks.iter_plain_frames

    def counting(p):
        for frame in real(p):
            produced.append(1)
            yield frame

    monkeypatch.setattr(chunks, "iter_plain_frames", counting)
    items = iter_chunks([file_source(str(path), None)], 1)
    taken = [next(items) for _ in range(3)]
    assert [c.frames.ids[0] for c in taken] == ["many:0", "many:1", "many:2"]
    assert len(produced) <= 4  # one frame of look-ahead (single- or multi-frame file ids)
    assert sum(1 for _ in items) == 120 - 3
