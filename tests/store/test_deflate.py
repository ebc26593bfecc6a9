"""Plane-wise shuffle + deflate chunks: valid zlib streams that plain HDF5 reads back."""

from __future__ import annotations

import zlib

import h5py
import numpy as np
import pytest

from xanesnet.store._deflate import (
    CHUNK_ROWS,
    plane_strategies,
    shuffle_deflate,
    write_shuffle_deflate,
)


def _spectra_like(n: int, seed: int = 0) -> np.ndarray:
    """Smooth positive float32 rows (edge + oscillations), like predicted spectra."""
    rng = np.random.default_rng(seed)
    e = np.linspace(-15, 60, 226)
    shift = rng.normal(0, 1, (n, 1))
    amp = rng.uniform(0.05, 0.3, (n, 1))
    rows = 1 / (1 + np.exp(-(e - shift) / 1.5)) + amp * np.sin(e / 6 + shift) * (e > 0)
    return rows.astype(np.float32)


def _shuffled(values: np.ndarray) -> bytes:
    size = values.dtype.itemsize
    return np.ascontiguousarray(values).reshape(-1).view(np.uint8).reshape(-1, size).T.tobytes()


BLOCKS = {
    "spectra": _spectra_like(300),
    "noise": np.random.default_rng(1).random((100, 226)).astype(np.float32),
    "constant": np.full((64, 226), 0.5, dtype=np.float32),
    "float64": _spectra_like(50).astype(np.float64),
    "int64": np.arange(1000, dtype=np.int64).reshape(100, 10),
    "bytes": np.arange(70000, dtype=np.uint8),  # one plane, longer than a stored block
    "one_row": _spectra_like(1),
}


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_stream_decodes_to_the_shuffled_bytes(name):
    block = BLOCKS[name]
    stream = shuffle_deflate(block)
    assert zlib.decompress(stream) == _shuffled(block)  # header, blocks and adler32 all valid


def test_compressible_data_shrinks_as_much_as_hdf5_gzip(tmp_path):
    spectra = _spectra_like(CHUNK_ROWS)
    ours = len(shuffle_deflate(spectra))
    with h5py.File(tmp_path / "ref.h5", "w") as f:
        d = f.create_dataset("x", data=spectra, chunks=spectra.shape, compression="gzip",
                             compression_opts=1, shuffle=True)  # fmt: skip
        theirs = d.id.get_storage_size()
    assert ours < 0.9 * spectra.nbytes
    assert ours <= 1.02 * theirs
    # incompressible data costs at most the block headers
    noise = BLOCKS["noise"]
    assert len(shuffle_deflate(noise)) <= noise.nbytes + 64


@pytest.mark.parametrize("n_rows", [0, 1, 700, CHUNK_ROWS, 2 * CHUNK_ROWS + 37])
def test_datasets_read_back_with_plain_h5py(tmp_path, n_rows):
    spectra = _spectra_like(n_rows, seed=n_rows)
    with h5py.File(tmp_path / "out.h5", "w") as f:
        write_shuffle_deflate(f, "spectra", spectra)
    with h5py.File(tmp_path / "out.h5", "r") as f:
        dataset = f["spectra"]
        assert dataset.compression == "gzip" and dataset.shuffle  # standard filters only
        assert dataset.dtype == np.float32 and dataset.shape == spectra.shape
        np.testing.assert_array_equal(dataset[()], spectra)
        if n_rows > 1:  # partial reads decode single chunks, the padded edge one included
            np.testing.assert_array_equal(dataset[n_rows - 1], spectra[-1])


def test_strategies_judged_on_one_block_decode_any_other():
    # write_shuffle_deflate judges the planes once per dataset; a block that behaves
    # differently (constant, noise) still round-trips exactly, only its size may differ
    strategies = plane_strategies(BLOCKS["spectra"])
    assert strategies[0] is None or isinstance(strategies[0], int)
    for name in ("noise", "constant"):
        block = BLOCKS[name]
        assert zlib.decompress(shuffle_deflate(block, strategies)) == _shuffled(block)
    with pytest.raises(ValueError, match="strategies: expected 4 entries, got 2"):
        shuffle_deflate(BLOCKS["noise"], strategies[:2])
