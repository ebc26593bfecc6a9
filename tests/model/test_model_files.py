"""Model files that lie are refused, naming the field: damaged weights, metadata that disagrees
with the network, edited descriptor parameters; metadata updates keep the checksum right."""

from __future__ import annotations

import json
import math
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from xanesnet import WACSF
from xanesnet.cli import batch as batch_cli
from xanesnet.model import SpectrumEnsemble, SpectrumMLP, files, load_model, save_model
from xanesnet.model.files import (
    CHECKSUM_KEY,
    METADATA_NAME,
    quiet_torchscript,
    update_model_metadata,
    weights_checksum,
)
from xanesnet.model.network import NetworkConfig, fit_scaling

N_ENERGIES = 226
ENERGIES = 7112.0 + np.linspace(-15.0, 60.0, N_ENERGIES)
DESCRIPTOR = WACSF()


def _tiny_ensemble(n_members: int = 2, seed: int = 0) -> SpectrumEnsemble:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(6, DESCRIPTOR.n_features))
    y = rng.normal(size=(6, N_ENERGIES))
    members = [
        SpectrumMLP(
            DESCRIPTOR.n_features, N_ENERGIES, NetworkConfig(hidden=(4,)), *fit_scaling(x, y)
        )
        for _ in range(n_members)
    ]
    return SpectrumEnsemble(members)


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("models") / "good.pt"
    save_model(
        _tiny_ensemble(), path, descriptor=DESCRIPTOR, energies=ENERGIES, e0=7112.0, element="Fe"
    )
    return path


def _rewrite(
    source: Path,
    target: Path,
    *,
    metadata: Callable[[dict], None] | None = None,
    resign: bool = False,
    data: Callable[[str, bytes], bytes] | None = None,
) -> Path:
    """Copy a model archive entry by entry, changing the metadata and/or tensor data.

    ``resign``: recompute the checksum after the change, as a writer that believes its own
    metadata would (so the check that catches the lie is the one against the network).
    """
    extra = {METADATA_NAME: ""}
    with quiet_torchscript():
        module = torch.jit.load(str(source), _extra_files=extra)
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(target, "w") as zout:
        for item in zin.infolist():
            content = zin.read(item.filename)
            if item.filename.endswith(f"extra/{METADATA_NAME}") and metadata is not None:
                meta = json.loads(content)
                metadata(meta)
                if resign:
                    meta[CHECKSUM_KEY] = weights_checksum(module.state_dict(), meta)
                content = json.dumps(meta).encode()
            elif data is not None:
                content = data(item.filename, content)
            zout.writestr(item, content)
    return target


def test_saved_model_carries_a_checksum_that_verifies(good):
    model = load_model(good)
    assert model.metadata[CHECKSUM_KEY].startswith("sha256:")
    assert len(model.metadata[CHECKSUM_KEY]) == len("sha256:") + 64
    # the file is byte-for-byte reproducible in what the checksum covers
    with quiet_torchscript():
        module = torch.jit.load(str(good))
    assert weights_checksum(module.state_dict(), model.metadata) == model.metadata[CHECKSUM_KEY]


def test_saved_archive_deflates_what_shrinks_and_loads_like_a_stored_one(good, tmp_path):
    with zipfile.ZipFile(good) as archive:
        types = {i.filename.rsplit("/", 1)[-1]: i.compress_type for i in archive.infolist()}
        for info in archive.infolist():  # deflated exactly when that saves a fifth or more
            packed = zlib.compressobj(9, zlib.DEFLATED, -15)
            data = archive.read(info)
            size = len(packed.compress(data)) + len(packed.flush())
            worth = size <= files.DEFLATE_WORTH * len(data)
            assert info.compress_type == (zipfile.ZIP_DEFLATED if worth else zipfile.ZIP_STORED)
    assert types[METADATA_NAME] == zipfile.ZIP_DEFLATED
    # the same entries stored uncompressed (as torch.jit.save writes them) give the same model
    stored = tmp_path / "stored.pt"
    with zipfile.ZipFile(good) as zin, zipfile.ZipFile(stored, "w") as zout:
        for item in zin.infolist():
            entry = zipfile.ZipInfo(item.filename, date_time=item.date_time)
            zout.writestr(entry, zin.read(item), compress_type=zipfile.ZIP_STORED)
    deflated, plain = load_model(good), load_model(stored)
    assert deflated.metadata == plain.metadata
    x = np.random.default_rng(1).normal(size=(5, DESCRIPTOR.n_features))
    np.testing.assert_array_equal(deflated.predict_features(x)[0], plain.predict_features(x)[0])


def test_archive_declaring_too_much_inflated_data_is_refused_unread(good, monkeypatch):
    with zipfile.ZipFile(good) as archive:
        total = sum(i.file_size for i in archive.infolist())
    monkeypatch.setattr(files, "MAX_INFLATED_BYTES", total - 1)
    with pytest.raises(ValueError, match=rf"good\.pt: model archive declares {total} bytes"):
        load_model(good)
    monkeypatch.setattr(files, "MAX_INFLATED_BYTES", total)
    assert load_model(good).metadata["element"] == "Fe"


def test_one_flipped_weight_byte_is_refused(good, tmp_path):
    def flip(name: str, content: bytes) -> bytes:
        if "/data/" in name and len(content) == 4 * 4 * DESCRIPTOR.n_features:  # first layer
            return content[:100] + bytes([content[100] ^ 0x01]) + content[101:]
        return content

    flipped = _rewrite(good, tmp_path / "flipped.pt", data=flip)
    assert flipped.read_bytes() != good.read_bytes()
    with pytest.raises(ValueError, match=r"flipped\.pt.*checksum does not match.*damaged"):
        load_model(flipped)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        # energy grids of another length than the network's output
        (lambda m: m.update(energies=m["energies"][:100]), "energies"),
        (lambda m: m.update(energies=m["energies"] + list(range(8000, 8050))), "energies"),
        (lambda m: m.update(energies=m["energies"][:100], n_energies=100), "energies"),
        (
            lambda m: m.update(energies=m["energies"] + list(range(8000, 8050)), n_energies=276),
            "energies",
        ),
        # energies that are not a grid
        (lambda m: m["energies"].__setitem__(5, math.nan), "energies"),
        (lambda m: m["energies"].__setitem__(5, math.inf), "energies"),
        (lambda m: m["energies"].__setitem__(5, m["energies"][4]), "energies"),
        (lambda m: m.update(n_members=3), "n_members"),
        (lambda m: m.update(n_members=1), "n_members"),
        (lambda m: m.update(n_members=0), "n_members"),
        (lambda m: m.update(element="Zz"), "element"),
        (lambda m: m.update(element="X"), "element"),
        (lambda m: m.update(e0=math.nan), "e0"),
        # input width: descriptor and n_features disagree, or both disagree with the network
        (lambda m: m["descriptor"].update(n_g2=20), "n_features"),
        (lambda m: (m["descriptor"].update(n_g2=20), m.update(n_features=53)), "n_features"),
        (lambda m: m.update(uncertainty_calibration=[1, 2]), "uncertainty_calibration"),
        (lambda m: m.update(domain="anywhere"), "domain"),
        (lambda m: m.update(kernel={"weight": 0.5}), "kernel"),
    ],
)
@pytest.mark.parametrize("resign", [False, True], ids=["stale-checksum", "recomputed-checksum"])
def test_metadata_that_lies_is_refused_naming_the_field(good, tmp_path, change, field, resign):
    lying = _rewrite(good, tmp_path / "lying.pt", metadata=change, resign=resign)
    with pytest.raises(ValueError, match=rf"lying\.pt: .*{field}"):
        load_model(lying)


def test_edited_descriptor_parameter_of_equal_length_is_refused(good, tmp_path):
    edited = _rewrite(
        good, tmp_path / "edited.pt", metadata=lambda m: m["descriptor"].update(r_max=5.0)
    )
    assert WACSF.from_dict(json.loads(_metadata_text(edited))["descriptor"]).n_features == (
        DESCRIPTOR.n_features
    )
    with pytest.raises(ValueError, match=r"edited\.pt.*checksum does not match"):
        load_model(edited)


def _metadata_text(path: Path) -> str:
    with zipfile.ZipFile(path) as archive:
        name = next(n for n in archive.namelist() if n.endswith(f"extra/{METADATA_NAME}"))
        return archive.read(name).decode()


def test_file_without_checksum_is_refused_with_re_export_advice(good, tmp_path):
    old = _rewrite(good, tmp_path / "old.pt", metadata=lambda m: m.pop(CHECKSUM_KEY))
    with pytest.raises(ValueError, match=r"old\.pt.*no checksum.*re-export"):
        load_model(old)


def test_update_model_metadata_adds_calibration_and_domain(good, tmp_path):
    calibration = {"method": "scale", "factors": [1.5, 2.0]}
    domain = {"kind": "knn", "threshold": 0.25}
    updated = tmp_path / "calibrated.pt"
    update_model_metadata(good, updated, {"uncertainty_calibration": calibration, "domain": domain})
    model = load_model(updated)
    assert model.metadata["uncertainty_calibration"] == calibration
    assert model.metadata["domain"] == domain
    original = load_model(good)
    assert model.metadata[CHECKSUM_KEY] != original.metadata[CHECKSUM_KEY]
    x = np.random.default_rng(3).normal(size=(5, DESCRIPTOR.n_features))
    np.testing.assert_array_equal(model.predict_features(x)[0], original.predict_features(x)[0])
    # the calibration is covered by the checksum
    edited = _rewrite(
        updated,
        tmp_path / "edited.pt",
        metadata=lambda m: m["uncertainty_calibration"].update(factors=[1.0, 1.0]),
    )
    with pytest.raises(ValueError, match="checksum does not match"):
        load_model(edited)
    # in place, and refusals
    update_model_metadata(updated, updated, {"domain": {"kind": "none"}})
    assert load_model(updated).metadata["domain"] == {"kind": "none"}
    with pytest.raises(ValueError, match="domain"):
        update_model_metadata(good, tmp_path / "bad.pt", {"domain": [1]})
    with pytest.raises(ValueError, match="checksum"):
        update_model_metadata(good, tmp_path / "bad.pt", {CHECKSUM_KEY: "sha256:0"})
    with pytest.raises(ValueError, match="energies"):
        update_model_metadata(good, tmp_path / "bad.pt", {"energies": [1.0, 2.0]})
    assert not (tmp_path / "bad.pt").exists()


def test_save_refuses_metadata_that_disagrees(tmp_path):
    ensemble = _tiny_ensemble()
    common = dict(descriptor=DESCRIPTOR, e0=7112.0)
    with pytest.raises(ValueError, match="element"):
        save_model(ensemble, tmp_path / "m.pt", energies=ENERGIES, element="Zz", **common)
    with pytest.raises(ValueError, match="energies"):
        save_model(ensemble, tmp_path / "m.pt", energies=ENERGIES[:100], element="Fe", **common)
    with pytest.raises(ValueError, match="energies"):
        save_model(ensemble, tmp_path / "m.pt", energies=ENERGIES[::-1], element="Fe", **common)
    assert not (tmp_path / "m.pt").exists()


def test_batch_refuses_a_lying_model_before_reading_input(good, tmp_path, capsys):
    lying = _rewrite(good, tmp_path / "lying.pt", metadata=lambda m: m.update(n_members=3))
    output = tmp_path / "out"
    status = batch_cli.main(
        [str(tmp_path / "no_such_input.xyz"), "-o", str(output), "--model", str(lying), "--quiet"]
    )
    assert status != 0
    error = capsys.readouterr().err
    assert "lying.pt" in error and "n_members" in error and "no_such_input" not in error
    assert not output.exists()


def test_torchscript_module_of_another_kind_is_refused(good, tmp_path):
    meta = _metadata_text(good)

    class Plain(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            out = x.sum(1, keepdim=True).expand(-1, 226)
            return out, out

    other = tmp_path / "other.pt"
    with quiet_torchscript():
        torch.jit.save(torch.jit.script(Plain()), str(other), _extra_files={METADATA_NAME: meta})
    with pytest.raises(ValueError, match=r"other\.pt.*Plain, not a xanesnet SpectrumEnsemble"):
        load_model(other)
