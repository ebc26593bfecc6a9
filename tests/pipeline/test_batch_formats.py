"""Batch output formats (--format hdf5|zarr|csv): same predictions, same guarantees, plain readers.

The SIGKILL-and-resume test of every format is in test_batch.py.
"""

from __future__ import annotations

import csv
import json
import shutil
import sys

import h5py
import numpy as np
import pytest
from helpers import EXAMPLES

from xanesnet import default_model, predict_batch, read_predictions
from xanesnet.cli.main import main
from xanesnet.store import MissingDependencyError

FORMATS = ["hdf5", "zarr", "csv"]
N_GOOD = 30  # example structures in the input folder
CHUNK = 7  # structures per chunk: 32 inputs -> 5 chunks
VIEWS = {"hdf5": ["predictions.h5"], "zarr": ["predictions.zarr"], "csv": ["predictions.csv"]}


def _need(fmt: str) -> None:
    if fmt == "zarr":
        pytest.importorskip("zarr")


def _assert_same(a, b):
    np.testing.assert_array_equal(a.ids, b.ids)
    np.testing.assert_array_equal(a.sites, b.sites)
    np.testing.assert_array_equal(a.energies, b.energies)
    np.testing.assert_array_equal(a.spectra, b.spectra)
    if a.spread is None or b.spread is None:
        assert a.spread is None and b.spread is None
    else:
        np.testing.assert_array_equal(a.spread, b.spread)
    assert a.errors == b.errors


def _stamps(folder):
    return {p: p.stat().st_mtime_ns for p in folder.rglob("*")}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """30 example structures and 2 that fail (truncated file, no Fe)."""
    folder = tmp_path_factory.mktemp("inputs") / "in"
    folder.mkdir()
    for path in sorted(EXAMPLES.glob("*.xyz"))[:N_GOOD]:
        shutil.copy(path, folder)
    (folder / "truncated.xyz").write_text("4\nc\n26 0 0 0\n8 1.9 0 0\n")
    (folder / "nofe.xyz").write_text("2\nc\n8 0 0 0\n8 1.2 0 0\n")
    return folder


@pytest.fixture(scope="module")
def outputs(tmp_path_factory, inputs):
    """fmt -> finished output folder of the same job (made once per format)."""
    root = tmp_path_factory.mktemp("outputs")
    made = {}

    def get(fmt: str):
        _need(fmt)
        if fmt not in made:
            summary = predict_batch(
                inputs, root / fmt, chunk_size=CHUNK, progress=False, format=fmt
            )
            assert (summary.sites, summary.failed, summary.no_sites) == (N_GOOD, 1, 1)
            made[fmt] = root / fmt
        return made[fmt]

    return get


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_holds_the_same_predictions(fmt, outputs, example_structures):
    result = read_predictions(outputs(fmt))
    assert result.metadata["format"] == fmt and result.metadata["complete"]
    _assert_same(result, read_predictions(outputs("hdf5")))
    expected = default_model().predict(example_structures[:N_GOOD], absorber="Fe")
    np.testing.assert_allclose(result.spectra, expected.spectra, rtol=1e-5, atol=1e-7)
    # the spread of two members is a difference of float32 outputs near 1: its absolute
    # precision is a few float32 ulps of the spectrum, whatever the batch size did to rounding
    np.testing.assert_allclose(result.spread, expected.spread, rtol=1e-4, atol=1e-6)
    assert result.spectra.dtype == np.float32 and result.spectra.shape == (N_GOOD, 226)
    assert list(result.ids) == [p.stem for p in sorted(EXAMPLES.glob("*.xyz"))[:N_GOOD]]
    reasons = dict(result.errors)  # the error table
    assert len(reasons) == 1
    assert result.no_sites == ["nofe"]  # no Fe site: listed apart, not a failure
    assert any("truncated.xyz" in key for key in reasons)
    for name in VIEWS[fmt]:
        assert (outputs(fmt) / name).exists()


def test_hdf5_view_is_plain_hdf5(outputs):
    result = read_predictions(outputs("hdf5"))
    with h5py.File(outputs("hdf5") / "predictions.h5", "r") as f:
        np.testing.assert_array_equal(f["spectra"][()], result.spectra)
        np.testing.assert_array_equal(f["spread"][()], result.spread)
        np.testing.assert_array_equal(f["energies"][()], result.energies)
        assert list(f["ids"].asstr()[()]) == list(result.ids)
        np.testing.assert_array_equal(f["sites"][()], result.sites)
        for name in ("predicted_delta_mu", "domain_score"):
            np.testing.assert_array_equal(f[name][()], getattr(result, name))
        for name in ("outside_domain", "unphysical"):
            assert f[name].dtype == bool
            np.testing.assert_array_equal(f[name][()], getattr(result, name))
        assert list(f["source"].asstr()[()]) == list(result.columns["source"])
        # every per-site array reads through to the chunk files (nothing copied)
        per_site = ("spectra", "spread", "ids", "sites", "predicted_delta_mu", "source")
        assert all(f[name].is_virtual for name in per_site)
        errors = zip(f["error_ids"].asstr()[()], f["error_reasons"].asstr()[()])
        assert [(str(a), str(b)) for a, b in errors] == result.errors
        assert json.loads(f.attrs["manifest"])["format"] == "hdf5"


def test_zarr_output_is_plain_zarr(outputs):
    zarr = pytest.importorskip("zarr")
    out = outputs("zarr")
    result = read_predictions(out)
    manifest = json.loads((out / "manifest.json").read_text())
    root = zarr.open_group(out / "predictions.zarr", mode="r")  # no xanesnet involved
    assert root["spectra"].dtype == np.float32 and root["spectra"].shape == (N_GOOD, 226)
    np.testing.assert_array_equal(root["spectra"][:], result.spectra)
    np.testing.assert_array_equal(root["spread"][:], result.spread)
    np.testing.assert_array_equal(root["energies"][:], result.energies)
    np.testing.assert_array_equal(root["sites"][:], result.sites)
    assert [str(i) for i in root["ids"][:]] == list(result.ids)
    errors = list(zip(root["error_ids"][:].tolist(), root["error_reasons"][:].tolist()))
    assert [(str(a), str(b)) for a, b in errors] == result.errors
    assert root["spectra"].compressors  # compressed
    attrs = root.attrs.asdict()
    assert attrs["job"]["model_sha256"] == manifest["job"]["model_sha256"]
    assert attrs["job"]["model"]["descriptor"] == manifest["job"]["model"]["descriptor"]
    assert attrs["job"]["xanesnet_version"] and attrs["job"]["inputs"]
    assert attrs["energies"] == manifest["energies"] and attrs["complete"]
    # the committed chunks (what an unfinished job has) are plain zarr groups too
    chunks = zarr.open_group(out / "chunks", mode="r")
    assert chunks.attrs["job"] == manifest["job"]
    groups = [chunks[f"chunk_{int(k):06d}"] for k in sorted(manifest["chunks"], key=int)]
    np.testing.assert_array_equal(np.concatenate([g["spectra"][:] for g in groups]), result.spectra)
    assert sum(len(g["error_ids"][:]) for g in groups) == 1
    assert sum(len(g["no_site_ids"][:]) for g in groups) == 1


def test_csv_output_is_plain_csv(outputs):
    out = outputs("csv")
    result = read_predictions(out)
    header = (out / "predictions.csv").read_text().splitlines()[0].split(",")
    assert header[:2] == ["structure_id", "site_index"]
    np.testing.assert_array_equal(np.array(header[2:], dtype=float), result.energies)
    for name, values in (("predictions.csv", result.spectra), ("spread.csv", result.spread)):
        table = np.loadtxt(
            out / name,
            delimiter=",",
            skiprows=1,
            usecols=range(2, len(header)),
            dtype=np.float32,
            ndmin=2,
        )
        np.testing.assert_array_equal(table, values)  # float32 exactly, through plain text
    with open(out / "predictions.csv", newline="") as handle:
        rows = list(csv.reader(handle))[1:]
    assert [r[0] for r in rows] == list(result.ids)
    assert [int(r[1]) for r in rows] == list(result.sites)
    with open(out / "errors.csv", newline="") as handle:
        errors = list(csv.reader(handle))
    assert errors[0] == ["structure_id", "reason"]
    assert [tuple(r) for r in errors[1:]] == result.errors


@pytest.mark.parametrize("fmt", FORMATS)
def test_finished_job_rerun_does_nothing(fmt, outputs, inputs):
    out = outputs(fmt)
    stamp = _stamps(out)
    again = predict_batch(inputs, out, chunk_size=CHUNK, progress=False, format=fmt)
    assert (again.chunks_written, again.sites, again.chunks_skipped) == (0, 0, 5)
    command = ["batch", str(inputs), "-o", str(out), "--chunk-size", str(CHUNK), "--quiet"]
    assert main([*command, "--format", fmt]) == 0
    assert _stamps(out) == stamp


@pytest.mark.parametrize(("fmt", "other"), [("hdf5", "csv"), ("zarr", "hdf5"), ("csv", "zarr")])
def test_resuming_with_another_format_is_refused(fmt, other, outputs, inputs, capsys):
    _need(other)
    out = outputs(fmt)
    stamp = _stamps(out)
    with pytest.raises(ValueError, match=f"holds a {fmt} output.*--format {other}") as info:
        predict_batch(inputs, out, chunk_size=CHUNK, progress=False, format=other)
    assert str(out) in str(info.value)
    command = ["batch", str(inputs), "-o", str(out), "--chunk-size", str(CHUNK), "--quiet"]
    assert main([*command, "--format", other]) == 2
    err = capsys.readouterr().err
    assert f"holds a {fmt} output" in err and f"--format {fmt}" in err
    assert _stamps(out) == stamp


@pytest.mark.parametrize("fmt", FORMATS)
def test_leftovers_of_a_killed_commit_are_ignored_then_rewritten(fmt, outputs, inputs, tmp_path):
    """The states a SIGKILL can leave, made on purpose: a half-written chunk aside, a chunk
    renamed into place but not in the manifest, no consolidated view."""
    reference = read_predictions(outputs(fmt))
    out = tmp_path / "out"
    shutil.copytree(outputs(fmt), out)
    manifest = json.loads((out / "manifest.json").read_text())
    lost = {k: manifest["chunks"].pop(k) for k in ("2", "4")}
    manifest["complete"] = False
    (out / "manifest.json").write_text(json.dumps(manifest))
    for name in VIEWS[fmt]:
        path = out / name
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    # chunk 2: only a half-written temporary; chunk 4: complete but uncommitted
    half = {
        "hdf5": out / "chunks" / ".chunk_000002.h5.partial",
        "zarr": out / ".partial" / "chunk_000002" / "zarr.json",
        "csv": out / "chunks" / ".spectra_000002.csv.partial",
    }[fmt]
    for path in (out / "chunks").glob("*000002*"):
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    half.parent.mkdir(parents=True, exist_ok=True)
    half.write_text("{ half written")

    partial = read_predictions(out)
    n_lost = sum(entry["sites"] for entry in lost.values())
    assert len(partial.ids) == N_GOOD - n_lost > 0
    summary = predict_batch(inputs, out, chunk_size=CHUNK, progress=False, format=fmt)
    assert (summary.chunks_written, summary.chunks_skipped) == (2, 3)
    _assert_same(read_predictions(out), reference)
    for name in VIEWS[fmt]:
        assert (out / name).exists()
    assert not (out / ".partial").exists() and not list(out.rglob("*.partial"))


@pytest.mark.parametrize("fmt", FORMATS)
def test_shards_of_any_format_merge_to_the_single_output(fmt, outputs, inputs, tmp_path):
    single = outputs(fmt)
    shards, codes = [], []
    for i in range(2):
        shard = tmp_path / f"shard{i}"
        command = ["batch", str(inputs), "-o", str(shard), "--chunk-size", str(CHUNK)]
        codes.append(main([*command, "--shard", f"{i}/2", "--format", fmt, "--quiet"]))
        shards.append(str(shard))
    assert codes == [1, 0]  # the two failing inputs are in chunk 4, shard 0's
    assert main(["merge", *shards, "-o", str(tmp_path / "merged")]) == 0
    merged = read_predictions(tmp_path / "merged")
    _assert_same(merged, read_predictions(single))
    assert merged.metadata["format"] == fmt and merged.metadata["job"]["shard"] is None
    if fmt == "csv":  # the joined files are byte for byte those of the single run
        for name in ("predictions.csv", "spread.csv", "errors.csv", "trust.csv", "no_sites.csv"):
            assert (tmp_path / "merged" / name).read_bytes() == (single / name).read_bytes()
    for name in VIEWS[fmt]:
        assert (tmp_path / "merged" / name).exists()


def test_merge_refuses_mixed_formats(inputs, tmp_path, capsys):
    shards = []
    for i, fmt in enumerate(["hdf5", "csv"]):
        shard = tmp_path / f"shard{i}"
        predict_batch(inputs, shard, chunk_size=CHUNK, shard=(i, 2), progress=False, format=fmt)
        shards.append(str(shard))
    assert main(["merge", *shards, "-o", str(tmp_path / "merged")]) == 2
    err = capsys.readouterr().err
    assert "different formats" in err and "(hdf5)" in err and "(csv)" in err
    assert not (tmp_path / "merged").exists()


def test_old_hdf5_outputs_without_a_format_still_read_and_resume(outputs, inputs, tmp_path):
    """Outputs written before --format existed have no "format" in their manifest: HDF5."""
    out = tmp_path / "old"
    shutil.copytree(outputs("hdf5"), out)
    manifest = json.loads((out / "manifest.json").read_text())
    del manifest["format"]
    (out / "manifest.json").write_text(json.dumps(manifest))
    _assert_same(read_predictions(out), read_predictions(outputs("hdf5")))
    again = predict_batch(inputs, out, chunk_size=CHUNK, progress=False)
    assert again.chunks_written == 0 and again.chunks_skipped == 5
    with pytest.raises(ValueError, match="holds a hdf5 output"):
        predict_batch(inputs, out, chunk_size=CHUNK, progress=False, format="csv")


@pytest.mark.parametrize("fmt", ["zarr", "csv"])
def test_single_model_output_has_no_spread(fmt, tmp_path, example_structures):
    _need(fmt)
    from xanesnet import WACSF
    from xanesnet.model import NetworkConfig, TrainConfig, save_model, train_ensemble

    descriptor = WACSF(n_g2=4, n_g4=4)
    features, _ = descriptor.compute(example_structures[:8], n_threads=1)
    energies = 7112.0 + np.linspace(-15.0, 60.0, 12)
    spectra = np.random.default_rng(0).uniform(0.5, 1.5, (len(features), len(energies)))
    config = TrainConfig(network=NetworkConfig(hidden=(8,)), epochs=1, batch_size=4, n_members=1)
    ensemble, _ = train_ensemble(features, spectra, None, None, config)
    model = tmp_path / "one.pt"
    save_model(ensemble, model, descriptor=descriptor, energies=energies, e0=7112.0, element="Fe")
    out = tmp_path / fmt
    predict_batch(EXAMPLES, out, model=model, chunk_size=40, progress=False, format=fmt)
    reference = tmp_path / "hdf5"
    predict_batch(EXAMPLES, reference, model=model, chunk_size=40, progress=False)
    result = read_predictions(out)
    assert result.spread is None and result.spectra.shape == (100, 12)
    _assert_same(result, read_predictions(reference))
    assert not list(out.rglob("*spread*"))


def test_missing_zarr_is_a_clear_error(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "zarr", None)  # `import zarr` now fails
    hint = 'pip install "xanesnet[zarr]"'
    out = tmp_path / "out"
    with pytest.raises(MissingDependencyError, match="--format zarr") as info:
        predict_batch(EXAMPLES, out, progress=False, format="zarr")
    assert hint in str(info.value) and isinstance(info.value, ImportError)
    assert not out.exists()  # refused before writing anything
    assert main(["batch", "--examples", "-o", str(out), "--format", "zarr", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "--format zarr" in err and hint in err
    assert not out.exists()
    # reading a zarr output without zarr: the same advice
    fake = tmp_path / "zarr_output"
    fake.mkdir()
    manifest = {"schema": "xanesnet.predictions/1", "format": "zarr", "job": {}}
    manifest |= {"energies": [1.0], "has_spread": False, "chunks": {}, "complete": True}
    (fake / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(MissingDependencyError, match="xanesnet\\[zarr\\]"):
        read_predictions(fake)


def test_unknown_format_is_refused(tmp_path):
    with pytest.raises(ValueError, match="--format: expected one of hdf5, zarr, csv"):
        predict_batch(EXAMPLES, tmp_path / "out", progress=False, format="parquet")
    assert not (tmp_path / "out").exists()
