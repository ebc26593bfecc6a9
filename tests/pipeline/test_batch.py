"""Batch prediction: output loses nothing, survives SIGKILL, resumes, shards and merges."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest
from helpers import EXAMPLES

from xanesnet import default_model, predict_batch, read_predictions
from xanesnet.cli.main import main


def _assert_same(a, b):
    np.testing.assert_array_equal(a.ids, b.ids)
    np.testing.assert_array_equal(a.sites, b.sites)
    np.testing.assert_array_equal(a.spectra, b.spectra)
    np.testing.assert_array_equal(a.spread, b.spread)
    assert a.errors == b.errors
    # the trust columns (xanesnet.store.TRUST_FIELDS) and the structures without a Fe site
    for name in ("predicted_delta_mu", "domain_score", "outside_domain", "unphysical"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.no_sites == b.no_sites
    # the per-site text columns (source; kept info keys)
    assert list(a.columns) == list(b.columns)
    for name in a.columns:
        np.testing.assert_array_equal(a.columns[name], b.columns[name])


def test_batch_output_matches_model_and_is_plain_hdf5(tmp_path, example_structures):
    summary = predict_batch(EXAMPLES, tmp_path / "out", chunk_size=16, progress=False)
    assert (summary.sites, summary.structures, summary.failed) == (100, 100, 0)
    result = read_predictions(tmp_path / "out")
    expected = default_model().predict(example_structures, absorber="Fe")
    np.testing.assert_allclose(result.spectra, expected.spectra, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(
        result.spread, expected.spread, rtol=1e-4, atol=1e-6
    )  # spread: see test_batch_formats
    assert list(result.ids[:2]) == [p.stem for p in sorted(EXAMPLES.glob("*.xyz"))[:2]]
    assert result.metadata["job"]["model"]["element"] == "Fe"
    with h5py.File(tmp_path / "out" / "predictions.h5", "r") as f:  # no xanesnet needed
        assert f["spectra"].shape == (100, 226)
        np.testing.assert_array_equal(f["spectra"][()], result.spectra)
        np.testing.assert_array_equal(f["energies"][()], result.energies)
        assert f["ids"].asstr()[0] == result.ids[0]


def test_failures_are_recorded_and_the_job_goes_on(tmp_path, capsys):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for path in sorted(EXAMPLES.glob("*.xyz"))[:5]:
        shutil.copy(path, inputs)
    (inputs / "truncated.xyz").write_text("4\nc\n26 0 0 0\n8 1.9 0 0\n")
    (inputs / "nofe.xyz").write_text("2\nc\n8 0 0 0\n8 1.2 0 0\n")
    (inputs / "nan.xyz").write_text("2\nc\n26 0 0 0\n8 nan 0 0\n")
    code = main(["batch", str(inputs), "-o", str(tmp_path / "out"), "--chunk-size", "3", "--quiet"])
    assert code == 1
    result = read_predictions(tmp_path / "out")
    assert len(result.ids) == 5
    reasons = dict(result.errors)
    assert len(reasons) == 2
    assert any("truncated.xyz" in k for k in reasons)
    assert result.no_sites == ["nofe"]  # no Fe site: counted apart, not a failure
    assert any("nan.xyz" in k and "line" in v for k, v in reasons.items())
    assert main(["batch", str(inputs), "-o", str(tmp_path / "strict"), "--strict", "--quiet"]) == 2
    assert "(--strict)" in capsys.readouterr().err


def test_finished_output_is_left_alone_and_other_jobs_refused(tmp_path):
    out = tmp_path / "out"
    predict_batch(EXAMPLES, out, chunk_size=50, progress=False)
    stamp = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    again = predict_batch(EXAMPLES, out, chunk_size=50, progress=False)
    assert again.chunks_written == 0 and again.sites == 0
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == stamp
    # the message names what differs, so the user can resume with the stored value
    with pytest.raises(ValueError, match="different job .chunk_size: 50 in the output, 10 now"):
        predict_batch(EXAMPLES, out, chunk_size=10, progress=False)
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "file").write_text("x")
    with pytest.raises(ValueError, match="not a xanesnet prediction output"):
        predict_batch(EXAMPLES, tmp_path / "junk", progress=False)


KILL_INPUTS = [str(EXAMPLES)] * 8  # 800 structures


@pytest.fixture(scope="module")
def kill_reference(tmp_path_factory):
    """The uninterrupted run (HDF5) that every killed-and-resumed run must equal."""
    reference = tmp_path_factory.mktemp("kill") / "reference"
    predict_batch(KILL_INPUTS, reference, chunk_size=2, progress=False)
    return read_predictions(reference)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["hdf5", "zarr", "csv"])
def test_sigkill_then_rerun_equals_uninterrupted_run(tmp_path, fmt, kill_reference):
    if fmt == "zarr":
        pytest.importorskip("zarr")
    killed = tmp_path / "killed"
    command = [
        sys.executable,
        "-m",
        "xanesnet.cli.batch",
        *KILL_INPUTS,
        "-o",
        str(killed),
        "--chunk-size",
        "2",
        "--format",
        fmt,
        "--quiet",
    ]
    process = subprocess.Popen(command, cwd=tmp_path, env=dict(os.environ))
    manifest = killed / "manifest.json"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if len(json.loads(manifest.read_text())["chunks"]) >= 20:
                break
        except (FileNotFoundError, json.JSONDecodeError, KeyError):
            pass
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the job finished before it could be killed"
    partial = read_predictions(killed)  # readable at once
    assert 0 < len(partial.ids) < 800 and not partial.metadata["complete"]
    assert partial.metadata["format"] == fmt
    resumed = subprocess.run(command, cwd=tmp_path, env=dict(os.environ), timeout=300)
    assert resumed.returncode == 0
    result = read_predictions(killed)
    assert result.metadata["complete"] and result.metadata["format"] == fmt
    _assert_same(result, kill_reference)
    # no left-overs of the killed commit (temporary files and folders)
    assert not (killed / ".partial").exists() and not list(killed.rglob("*.partial"))


def test_shards_merge_to_the_single_process_output(tmp_path):
    single = tmp_path / "single"
    predict_batch(EXAMPLES, single, chunk_size=7, progress=False)
    shards = []
    for i in range(3):
        shard = tmp_path / f"shard{i}"
        assert (
            main(
                [
                    "batch",
                    str(EXAMPLES),
                    "-o",
                    str(shard),
                    "--chunk-size",
                    "7",
                    "--shard",
                    f"{i}/3",
                    "--quiet",
                ]
            )
            == 0
        )
        shards.append(str(shard))
    assert main(["merge", *shards, "-o", str(tmp_path / "merged")]) == 0
    _assert_same(read_predictions(tmp_path / "merged"), read_predictions(single))
    assert main(["merge", shards[0], "-o", str(tmp_path / "merged")]) == 2  # exists


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["batch", "-o", "x"], "no inputs"),
        (["batch", "--examples", "-o", "x", "--shard", "3/2"], "--shard"),
        (["batch", "--examples", "-o", "x", "--chunk-size", "0"], "--chunk-size"),
        (["batch", "--examples", "-o", "x", "--device", "tpu"], "device"),
        (["batch", "--examples", "-o", "x", "--format", "parquet"], "--format"),
    ],
)
def test_batch_bad_arguments(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    assert code == 2
    assert message in capsys.readouterr().err


@pytest.mark.slow
def test_dask_local_cluster_gives_the_single_process_output(tmp_path):
    pytest.importorskip("distributed")
    single = tmp_path / "single"
    predict_batch([EXAMPLES] * 2, single, chunk_size=20, progress=False)
    assert (
        main(
            [
                "batch",
                str(EXAMPLES),
                str(EXAMPLES),
                "-o",
                str(tmp_path / "dask"),
                "--chunk-size",
                "20",
                "--dask",
                "local:2",
                "--quiet",
            ]
        )
        == 0
    )
    _assert_same(read_predictions(tmp_path / "dask"), read_predictions(single))


def test_local_cluster_workers_start_with_large_malloc_thresholds():
    pytest.importorskip("distributed")
    import os

    from xanesnet.pipeline.dask import WORKER_MALLOC_ENV, dask_client

    before = dict(os.environ)
    client, cluster = dask_client("local:1")
    try:
        # distributed writes the workers' settings into this process's environment to spawn
        # them; _dask_client puts it back
        assert dict(os.environ) == before
        seen = client.run(lambda: {k: os.environ.get(k) for k in WORKER_MALLOC_ENV})
    finally:
        client.close()
        cluster.close()
    assert list(seen.values()) == [{k: str(v) for k, v in WORKER_MALLOC_ENV.items()}]


def _disk_full_at_chunk(monkeypatch, failing_index):
    """Make committing chunk ``failing_index`` fail as a full disk would; returns the real
    ``PredictionStore.commit`` to put back."""
    from xanesnet.store import PredictionStore

    real = PredictionStore.commit

    def failing(self, index, *args, **kwargs):
        if index == failing_index:
            raise OSError(28, "No space left on device")
        return real(self, index, *args, **kwargs)

    monkeypatch.setattr(PredictionStore, "commit", failing)
    return real


def test_a_failed_commit_stops_the_job_and_a_rerun_completes_it(tmp_path, monkeypatch):
    from xanesnet.store import PredictionStore

    real = _disk_full_at_chunk(monkeypatch, 3)
    with pytest.raises(OSError, match="No space left"):
        predict_batch(EXAMPLES, tmp_path / "out", chunk_size=10, progress=False)
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert "3" not in manifest["chunks"] and not manifest["complete"]
    assert {"0", "1", "2"} <= set(manifest["chunks"])  # what was committed before stays
    monkeypatch.setattr(PredictionStore, "commit", real)
    again = predict_batch(EXAMPLES, tmp_path / "out", chunk_size=10, progress=False)
    assert again.chunks_written == 10 - len(manifest["chunks"])
    predict_batch(EXAMPLES, tmp_path / "whole", chunk_size=10, progress=False)
    _assert_same(read_predictions(tmp_path / "out"), read_predictions(tmp_path / "whole"))


@pytest.mark.slow
def test_bfloat16_jobs_resume_and_scale_out_identically(tmp_path, monkeypatch):
    """precision="bfloat16" is part of the job: an interrupted run resumes to the uninterrupted
    output, Dask workers give the same, and a float32 rerun is refused, not mixed in."""
    from xanesnet.store import PredictionStore

    whole = tmp_path / "whole"
    predict_batch(EXAMPLES, whole, chunk_size=10, progress=False, precision="bfloat16")
    result = read_predictions(whole)
    assert result.metadata["job"]["precision"] == "bfloat16"
    float32 = tmp_path / "float32"
    predict_batch(EXAMPLES, float32, chunk_size=10, progress=False)
    reference = read_predictions(float32)
    assert "precision" not in reference.metadata["job"]  # float32 jobs as before
    difference = np.abs(result.spectra - reference.spectra).sum(1) / reference.spectra.sum(1)
    assert 0 < difference.max() < 3e-3
    with pytest.raises(ValueError, match="precision"):
        predict_batch(EXAMPLES, whole, chunk_size=10, progress=False)

    real = _disk_full_at_chunk(monkeypatch, 4)
    with pytest.raises(OSError, match="No space left"):
        predict_batch(
            EXAMPLES, tmp_path / "out", chunk_size=10, progress=False, precision="bfloat16"
        )
    monkeypatch.setattr(PredictionStore, "commit", real)
    predict_batch(EXAMPLES, tmp_path / "out", chunk_size=10, progress=False, precision="bfloat16")
    _assert_same(read_predictions(tmp_path / "out"), result)

    pytest.importorskip("distributed")
    argv = ["batch", str(EXAMPLES), "-o", str(tmp_path / "dask"), "--chunk-size", "10"]
    assert main([*argv, "--dask", "local:2", "--precision", "bfloat16", "--quiet"]) == 0
    _assert_same(read_predictions(tmp_path / "dask"), result)
