"""A batch job refuses what would make its output silently wrong, with one clear line and a
distinct exit status: a resume over inputs that changed (named), a second process on one
output, an output that cannot be written (exit 3)."""

from __future__ import annotations

import errno
import shutil

import pytest
from helpers import EXAMPLES, lock_held_elsewhere

from xanesnet import predict_batch, read_predictions
from xanesnet.cli.batch import main as batch_main
from xanesnet.store import PredictionStore, format_backend


def _inputs(folder):
    folder.mkdir()
    for path in sorted(EXAMPLES.glob("*.xyz"))[:6]:
        shutil.copy(path, folder)
    return folder


def _interrupted_job(monkeypatch, inputs, out, failing_index=3):
    """A job stopped by a failed commit of chunk ``failing_index`` (chunks before it stay)."""
    real = PredictionStore.commit

    def failing(self, index, *args, **kwargs):
        if index == failing_index:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, index, *args, **kwargs)

    monkeypatch.setattr(PredictionStore, "commit", failing)
    with pytest.raises(OSError):
        predict_batch(inputs, out, chunk_size=1, progress=False)
    monkeypatch.setattr(PredictionStore, "commit", real)


@pytest.mark.parametrize("change", ["edited", "added", "removed"])
def test_resume_over_changed_inputs_is_refused_naming_the_file(tmp_path, monkeypatch, change):
    inputs = _inputs(tmp_path / "in")
    out = tmp_path / "out"
    _interrupted_job(monkeypatch, inputs, out)
    names = sorted(p.name for p in inputs.iterdir())
    if change == "edited":
        target = inputs / names[1]
        target.write_text(target.read_text().replace("\n", "\n ", 1))  # same atoms, new bytes
    elif change == "added":
        target = inputs / "zz_new.xyz"
        shutil.copy(inputs / names[0], target)
    else:
        target = inputs / names[4]
        target.unlink()
    label = {"edited": "modified", "added": "added", "removed": "removed"}[change]
    with pytest.raises(ValueError, match=rf"inputs changed .*{label}: .*{target.name}"):
        predict_batch(inputs, out, chunk_size=1, progress=False)


def test_unchanged_inputs_resume_and_equal_an_uninterrupted_run(tmp_path, monkeypatch):
    inputs = _inputs(tmp_path / "in")
    _interrupted_job(monkeypatch, inputs, tmp_path / "out")
    again = predict_batch(inputs, tmp_path / "out", chunk_size=1, progress=False)
    assert again.chunks_written >= 1  # chunk 3 at least; the others committed were kept
    assert again.chunks_written + again.chunks_skipped == 6
    predict_batch(inputs, tmp_path / "whole", chunk_size=1, progress=False)
    a, b = read_predictions(tmp_path / "out"), read_predictions(tmp_path / "whole")
    assert a.ids.tolist() == b.ids.tolist()
    assert (a.spectra == b.spectra).all()


def test_cli_full_output_is_exit_3_with_one_line(tmp_path, monkeypatch, capsys):
    inputs = _inputs(tmp_path / "in")
    backend = type(format_backend("hdf5"))
    real = backend.write_chunk

    def full(self, path, index, *args, **kwargs):
        if index == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, path, index, *args, **kwargs)

    monkeypatch.setattr(backend, "write_chunk", full)
    out = tmp_path / "out"
    argv = [str(inputs), "-o", str(out), "--chunk-size", "1", "--quiet"]
    assert batch_main(argv) == 3
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("xanesnet-batch: error: cannot write")
    assert "No space left on device" in lines[0] and "Traceback" not in err
    monkeypatch.setattr(backend, "write_chunk", real)
    assert batch_main(argv) == 0  # the same command resumes once there is room
    assert len(read_predictions(out).ids) == 6


def test_cli_second_process_on_one_output_is_refused(tmp_path, capsys):
    inputs = _inputs(tmp_path / "in")
    out = tmp_path / "out"
    argv = [str(inputs), "-o", str(out), "--chunk-size", "2", "--quiet"]
    assert batch_main(argv) == 0
    with lock_held_elsewhere(out / ".lock"):  # another process writing the output
        assert batch_main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("xanesnet-batch: error: ") and str(out) in err[0]


def test_exit_statuses_are_in_the_help(capsys):
    with pytest.raises(SystemExit):
        batch_main(["--help"])
    text = capsys.readouterr().out
    assert "exit status:" in text and "\n  3  the output could not be written" in text
