"""Files a user hands in cannot run code: model archives, training checkpoints.

Each payload, if it were unpickled, would create a marker file; every test asserts a clear
refusal naming the file and that the marker does not exist.
"""

from __future__ import annotations

import pathlib
import pickle
import re
import zipfile

import numpy as np
import pytest
import torch

from xanesnet.model import TrainConfig, load_model, train_ensemble, train_member
from xanesnet.model.network import NetworkConfig


class _TouchOnUnpickle:
    """Unpickling this object creates ``marker`` (the stand-in for arbitrary code)."""

    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def _payload_zip(path: pathlib.Path, marker: pathlib.Path) -> None:
    """A zip archive laid out like a torch.export / torch.save archive whose pickled entries
    carry the payload."""
    payload = pickle.dumps(_TouchOnUnpickle(marker), protocol=2)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{path.stem}/data.pkl", payload)
        archive.writestr(f"{path.stem}/data/weights/weight_0", payload)
        archive.writestr(f"{path.stem}/constants.pkl", payload)
        archive.writestr(f"{path.stem}/extra/xanesnet.json", "{}")
        archive.writestr(f"{path.stem}/version", "3\n")


def test_payload_is_live(tmp_path):
    """The payload used below does run when unpickled (so the other tests mean something)."""
    marker = tmp_path / "ran"
    pickle.loads(pickle.dumps(_TouchOnUnpickle(marker)))
    assert marker.exists()


def test_pt2_archive_is_refused_without_unpickling(tmp_path):
    marker = tmp_path / "ran"
    evil = tmp_path / "evil.pt2"
    _payload_zip(evil, marker)
    with pytest.raises(ValueError, match=r"evil\.pt2.*pickled objects.*re-export.*\.pt"):
        load_model(evil)
    assert not marker.exists()


def test_batch_refuses_a_pt2_model_without_unpickling(tmp_path, capsys):
    from xanesnet.cli import batch as batch_cli

    marker = tmp_path / "ran"
    evil = tmp_path / "evil.pt2"
    _payload_zip(evil, marker)
    output = tmp_path / "out"
    status = batch_cli.main(["--examples", "-o", str(output), "--model", str(evil), "--quiet"])
    assert status != 0
    assert "evil.pt2" in capsys.readouterr().err
    assert not marker.exists() and not output.exists()


@pytest.mark.parametrize("name", ["evil.pt", "evil.model"])
def test_pickle_archives_under_other_names_are_refused(tmp_path, name):
    marker = tmp_path / "ran"
    evil = tmp_path / name
    _payload_zip(evil, marker)
    with pytest.raises(ValueError, match=rf"{re.escape(name)}.*not a xanesnet model"):
        load_model(evil)
    assert not marker.exists()
    torch.save({"weights": _TouchOnUnpickle(marker)}, evil)  # torch.save's own layout
    with pytest.raises(ValueError, match=rf"{re.escape(name)}.*not a xanesnet model"):
        load_model(evil)
    assert not marker.exists()


def test_pt2_is_not_written(tmp_path):
    from xanesnet import WACSF
    from xanesnet.model import SpectrumEnsemble, SpectrumMLP, save_model

    config = WACSF()
    n_f = config.n_features
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(8, n_f)), rng.normal(size=(8, 5))
    from xanesnet.model.network import fit_scaling

    member = SpectrumMLP(n_f, 5, NetworkConfig(hidden=(4,)), *fit_scaling(x, y))
    with pytest.raises(ValueError, match=r"m\.pt2.*re-export"):
        save_model(
            SpectrumEnsemble([member]),
            tmp_path / "m.pt2",
            descriptor=config,
            energies=np.arange(5.0),
            e0=0.0,
            element="Fe",
        )
    assert not (tmp_path / "m.pt2").exists()


def _tiny_data():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(12, 6))
    y = rng.normal(size=(12, 4))
    config = TrainConfig(network=NetworkConfig(hidden=(8,)), epochs=2, batch_size=4)
    return x, y, config


def test_planted_checkpoint_is_refused_without_unpickling(tmp_path):
    marker = tmp_path / "ran"
    ckpt = tmp_path / "member_0.ckpt"
    torch.save({"model": _TouchOnUnpickle(marker), "epoch": 0}, ckpt)
    x, y, config = _tiny_data()
    with pytest.raises(ValueError, match=r"member_0\.ckpt.*loaded safely"):
        train_member(x, y, None, None, config, checkpoint=ckpt)
    assert not marker.exists()
    with pytest.raises(ValueError, match=r"member_0\.ckpt"):
        train_ensemble(x, y, None, None, config, workdir=tmp_path)
    assert not marker.exists()


def test_checkpoint_of_other_content_is_refused(tmp_path):
    ckpt = tmp_path / "member_0.ckpt"
    torch.save({"epoch": 0}, ckpt)  # safe to load, but not a checkpoint
    x, y, config = _tiny_data()
    with pytest.raises(ValueError, match=r"member_0\.ckpt.*missing"):
        train_member(x, y, None, None, config, checkpoint=ckpt)
    ckpt.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=r"member_0\.ckpt"):
        train_member(x, y, None, None, config, checkpoint=ckpt)
    # a real checkpoint of another network size
    ckpt.unlink()
    train_member(x, y, x, y, config, checkpoint=ckpt)
    wider = TrainConfig(network=NetworkConfig(hidden=(16,)), epochs=3, batch_size=4)
    with pytest.raises(ValueError, match=r"member_0\.ckpt.*does not fit this training run"):
        train_member(x, y, x, y, wider, checkpoint=ckpt)


def test_own_checkpoint_loads_with_weights_only(tmp_path):
    x, y, config = _tiny_data()
    ckpt = tmp_path / "member.ckpt"
    first, _ = train_member(x, y, x, y, config, checkpoint=ckpt)
    state = torch.load(ckpt, weights_only=True)
    assert state["epoch"] == config.epochs - 1
    # resuming a finished run trains no further and returns the same weights
    again, history = train_member(x, y, x, y, config, checkpoint=ckpt)
    assert len(history.train_loss) == config.epochs
    for a, b in zip(first.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def _cache_file(tmp_path, monkeypatch):
    """A descriptor cache of two example structures (descriptors faked: this is about the
    cache file, not the descriptor), and a function that reads it back."""
    from helpers import EXAMPLES

    from xanesnet import WACSF
    from xanesnet.datasets import cached_descriptors

    paths = sorted(EXAMPLES.glob("*.xyz"))[:2]
    config = WACSF(n_g2=4, n_g4=4)
    fake = np.random.default_rng(0).uniform(size=(2, config.n_features))
    monkeypatch.setattr(WACSF, "compute", lambda self, *a, **k: (fake.copy(), None))
    cache_dir = tmp_path / "cache"
    features = cached_descriptors(config, paths, cache_dir=cache_dir, n_threads=1)
    np.testing.assert_array_equal(features, fake)
    monkeypatch.undo()
    (cache_file,) = cache_dir.glob("*.npz")
    return cache_file, lambda: cached_descriptors(config, paths, cache_dir=cache_dir), features


def test_descriptor_cache_is_read_without_pickle_and_checked(tmp_path, monkeypatch):
    cache_file, read_again, features = _cache_file(tmp_path, monkeypatch)
    np.testing.assert_array_equal(read_again(), features)  # a good cache is used as is
    name = re.escape(cache_file.name)
    marker = tmp_path / "ran"
    payload = np.empty(1, dtype=object)
    payload[0] = _TouchOnUnpickle(marker)
    bad_contents = [
        ({"features": payload, "config": np.asarray("x")}, "features|ValueError"),
        ({"features": features[:1]}, "shape"),
        ({"features": features.astype(np.int64)}, "float"),
        ({"features": np.where(features == features.max(), np.nan, features)}, "non-finite"),
        ({"spectra": features}, "KeyError"),
    ]
    for contents, message in bad_contents:
        with open(cache_file, "wb") as handle:
            np.savez(handle, **contents)
        with pytest.raises(ValueError, match=rf"{name}.*damaged descriptor cache.*({message})"):
            read_again()
        assert not marker.exists()
    cache_file.write_bytes(b"truncated")
    with pytest.raises(ValueError, match=rf"{name}.*damaged descriptor cache"):
        read_again()
