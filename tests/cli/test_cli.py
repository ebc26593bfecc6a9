"""Command-line tools: main jobs run end to end; bad input is reported, not fatal."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from helpers import EXAMPLES, TEST_DATA

from xanesnet import WACSF
from xanesnet.cli.main import main


def test_main_lists_commands(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("descriptors", "train", "evaluate", "convolve"):
        assert command in out
    assert main(["frobnicate"]) == 2
    assert "unknown command 'frobnicate'" in capsys.readouterr().err


def test_descriptors_on_shipped_examples(tmp_path, example_structures):
    out = tmp_path / "d.npz"
    assert main(["descriptors", "--examples", "-o", str(out), "--quiet"]) == 0
    with np.load(out) as data:
        assert data["features"].shape == (100, 49)
        assert list(data["ids"][:2]) == [p.stem for p in sorted(EXAMPLES.glob("*.xyz"))[:2]]
        assert WACSF.from_json(str(data["config_json"])) == WACSF()
        expected, _ = WACSF().compute(example_structures)
        np.testing.assert_allclose(data["features"], expected, rtol=1e-12)
        assert data["failed_ids"].size == 0


def test_descriptors_records_bad_files_and_goes_on(tmp_path, capsys):
    folder = tmp_path / "xyz"
    folder.mkdir()
    good = sorted(EXAMPLES.glob("*.xyz"))[:3]
    for path in good:
        shutil.copy(path, folder / path.name)
    (folder / "broken.xyz").write_text("5\ncomment\n26 0 0 0\n8 1.9 0\n")
    (folder / "overlap.xyz").write_text("3\nc\n26 0 0 0\n8 1.9 0 0\n8 1.9 0.01 0\n")
    (folder / "nofe.xyz").write_text("2\nc\n8 0 0 0\n8 1.2 0 0\n")
    out = tmp_path / "d.npz"
    code = main(
        ["descriptors", str(folder), "-o", str(out), "--absorber", "Fe", "--chunk-size", "2"]
    )
    assert code == 1
    err = capsys.readouterr().err
    assert "3 structure(s) failed" in err
    with np.load(out) as data:
        assert sorted(data["ids"]) == sorted(p.stem for p in good)
        reasons = dict(zip(data["failed_ids"], data["failed_reasons"], strict=True))
    assert set(reasons) == {str(folder / "broken.xyz"), "overlap", "nofe"}
    assert "line" in reasons[str(folder / "broken.xyz")]
    assert "closer than 0.1" in reasons["overlap"]
    assert "absorber element Fe is absent" in reasons["nofe"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["descriptors", "-o", "x.npz"], "no inputs"),
        (["descriptors", "--examples", "-o", "x.npz", "--threads", "-2"], "--threads"),
        (["descriptors", "--examples", "-o", "x.npz", "--chunk-size", "0"], "--chunk-size"),
    ],
)
def test_descriptors_bad_arguments(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_descriptors_missing_input(tmp_path, capsys):
    code = main(["descriptors", str(tmp_path / "nowhere"), "-o", str(tmp_path / "d.npz")])
    assert code == 2
    assert "nowhere" in capsys.readouterr().err


@pytest.fixture()
def tiny_dataset(tmp_path):
    """Three example structures with their processed spectra."""
    xyz, xanes = tmp_path / "xyz", tmp_path / "xanes"
    xyz.mkdir()
    shutil.copytree(TEST_DATA / "spectra" / "processed", xanes)
    for spectrum in xanes.glob("*.txt"):
        shutil.copy(EXAMPLES / f"{spectrum.stem}.xyz", xyz)
    names = sorted(p.stem for p in xanes.glob("*.txt"))
    split = tmp_path / "split.json"
    split.write_text(json.dumps({"train": names[:2], "validation": names[2:]}))
    config = tmp_path / "train.toml"
    config.write_text(
        """
[data]
xyz_dir = "xyz"
xanes_dir = "xanes"
split = "split.json"
element = "Fe"
edge = "K"
e0 = 7112.0

[descriptor]
n_g2 = 8
n_g4 = 8

[training]
epochs = 3
batch_size = 2
n_members = 2

[training.network]
hidden = [16]

[output]
model = "model.pt"
workdir = "run"
"""
    )
    return tmp_path, config, names


def test_train_then_evaluate(tiny_dataset, capsys, monkeypatch):
    folder, config, names = tiny_dataset
    monkeypatch.setenv("XANESNET_CACHE", str(folder / "cache"))
    assert main(["train", str(config), "--quiet", "--set", "training.epochs=2"]) == 0
    out = capsys.readouterr().out
    assert "model written to" in out and "validation" in out
    from xanesnet.model import load_model

    model = load_model(folder / "model.pt")
    assert model.n_members == 2 and model.descriptor == WACSF(n_g2=8, n_g4=8)
    assert model.metadata["training"]["epochs"] == 2
    assert model.metadata["training_set_size"] == 2
    assert (folder / "run" / "member_0.csv").exists()
    assert list((folder / "cache").glob("wacsf-*.npz"))
    report = folder / "metrics.json"
    code = main(
        [
            "evaluate",
            "--model",
            str(folder / "model.pt"),
            "--xyz",
            str(folder / "xyz"),
            "--xanes",
            str(folder / "xanes"),
            "--json",
            str(report),
            "--post-broadening",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "Fe K (3 spectra)" in printed and "l1" in printed
    figures = json.loads(report.read_text())
    assert figures["n_spectra"] == 3 and figures["delta_mu_avg"] > 0
    assert figures["post_broadening_delta_mu_avg"] is not None
    assert figures["precision"] == "float32"
    half = folder / "metrics_bf16.json"
    args = ["evaluate", "--model", str(folder / "model.pt"), "--xyz", str(folder / "xyz")]
    args += ["--xanes", str(folder / "xanes"), "--json", str(half), "--precision", "bfloat16"]
    assert main(args) == 0
    assert "Fe K (3 spectra, bfloat16)" in capsys.readouterr().out
    figures_bf16 = json.loads(half.read_text())
    assert figures_bf16["precision"] == "bfloat16"
    assert abs(figures_bf16["delta_mu_avg"] - figures["delta_mu_avg"]) < 0.1


def test_train_blended_model_with_float16_weights(tiny_dataset, capsys, monkeypatch):
    folder, config, _ = tiny_dataset
    monkeypatch.setenv("XANESNET_CACHE", str(folder / "cache"))
    out = folder / "blend.pt"
    args = ["train", str(config), "--quiet", "-o", str(out), "--set", "training.epochs=2"]
    args += ["--set", "training.kernel.weight=0.5", "--set", 'output.weight_dtype="float16"']
    assert main(args) == 0
    capsys.readouterr()
    from xanesnet.model import load_model

    model = load_model(out)
    assert model.metadata["weight_dtype"] == "float16"
    assert model.kernel is not None and model.kernel["weight"] == 0.5 and model.has_spread
    assert model.metadata["training"]["kernel"]["weight"] == 0.5
    args[-1] = 'output.weight_dtype="int8"'
    assert main(args) == 0
    capsys.readouterr()
    compact = load_model(out)
    assert compact.metadata["weight_dtype"] == "int8"
    buffers = dict(compact.module.named_buffers())
    assert buffers["members.0.layers.0.weight_q"].dtype == torch.int8
    args[-1] = 'output.weight_dtype="int4"'
    assert main(args) == 2
    assert "weight_dtype" in capsys.readouterr().err


@pytest.fixture()
def pairs_dataset(tmp_path):
    """24 example structures paired with the three processed spectra in turn (a table of
    pairs): enough training sites for k-fold calibration and a domain fit."""
    spectra = sorted((TEST_DATA / "spectra" / "processed").glob("*.txt"))
    structures = sorted(EXAMPLES.glob("*.xyz"))[:24]
    rows = [f"{s},{spectra[i % 3]}" for i, s in enumerate(structures)]
    (tmp_path / "pairs.csv").write_text("structure,spectrum\n" + "\n".join(rows) + "\n")
    config = tmp_path / "train.toml"
    config.write_text(
        """
[data]
pairs = "pairs.csv"
element = "Fe"
e0 = 7112.0

[descriptor]
n_g2 = 8
n_g4 = 8

[training]
epochs = 2
batch_size = 4
n_members = 2

[training.network]
hidden = [16]

[output]
model = "model.pt"
"""
    )
    return tmp_path, config


def test_train_fits_domain_and_optional_calibration(pairs_dataset, capsys, example_structures):
    """A trained model carries an out-of-domain score by default; ``[calibration] folds = k``
    adds σ fitted on k-fold stand-ins; its predictions then have finite σ, predicted Δμ and
    score, as the shipped models do."""
    from xanesnet.model import load_model

    folder, config = pairs_dataset
    args = ["train", str(config), "--quiet", "--set", 'output.weight_dtype="float16"']
    assert main(args) == 0
    plain = load_model(folder / "model.pt")
    assert plain.trust_model.domain is not None and plain.trust_model.calibration is None
    plain_spectra = plain.predict(example_structures[30:33]).spectra
    capsys.readouterr()
    assert main([*args, "--set", "calibration.folds=3"]) == 0
    assert "calibrated σ on 3-fold out-of-fold predictions" in capsys.readouterr().err
    model = load_model(folder / "model.pt")
    entry = model.metadata["uncertainty_calibration"]
    assert "3-fold out-of-fold predictions of the 24 training sites" in entry["source"]
    prediction = model.predict(example_structures[30:33])
    assert np.isfinite(prediction.sigma).all()
    assert np.isfinite(prediction.predicted_delta_mu).all()
    assert np.isfinite(prediction.domain_score).all()
    # the networks are the plain run's: the stand-ins only fit σ
    np.testing.assert_array_equal(prediction.spectra, plain_spectra)
    assert main([*args, "--set", "calibration.domain=false"]) == 0
    assert load_model(folder / "model.pt").trust_model.domain is None
    # latent = true: the predicted Δμ also from the latent distance, whose entry the file gets
    assert main([*args, "--set", "calibration.folds=3", "--set", "calibration.latent=true"]) == 0
    latent_model = load_model(folder / "model.pt")
    assert latent_model.trust_model.calibration.needs_distance
    assert latent_model.trust_model.latent.n_hidden == 16
    figures = latent_model.metadata["uncertainty_calibration"]["fit_figures"]
    assert {"spearman_predicted_delta_mu", "spearman_spread_only"} <= set(figures)
    with_latent = latent_model.predict(example_structures[30:33])
    assert np.isfinite(with_latent.predicted_delta_mu).all()
    np.testing.assert_array_equal(with_latent.spectra, plain_spectra)


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("calibration.folds=1", "folds: expected 0 (off) or an integer >= 2"),
        ("calibration.folds=-3", "folds: expected 0 (off) or an integer >= 2"),
        ('calibration.folds="5"', "folds: expected 0 (off) or an integer >= 2"),
        ("calibration.domain=1", "domain: expected true or false"),
        ("calibration.latent=1", "latent: expected true or false"),
        ("calibration.latent=true", "latent = true needs folds >= 2"),
        ("calibration.seed=1", "unknown keys ['seed']"),
        ("calibration.folds=25", "folds: expected at most the 24 training structures"),
    ],
)
def test_train_refuses_bad_calibration_table(pairs_dataset, capsys, setting, message):
    folder, config = pairs_dataset
    assert main(["train", str(config), "--quiet", "--set", setting]) == 2
    assert message in capsys.readouterr().err


def test_train_reports_bad_config(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("[trainingg]\nepochs = 1\n")
    assert main(["train", str(bad), "-o", str(tmp_path / "m.pt")]) == 2
    assert "unknown sections ['trainingg']" in capsys.readouterr().err
    assert main(["train", str(tmp_path / "none.toml")]) == 2
    assert "configuration file not found" in capsys.readouterr().err


def test_predict_with_shipped_model(tmp_path, example_structures):
    out = tmp_path / "p.npz"
    assert main(["predict", "--examples", "-o", str(out), "--quiet"]) == 0
    from xanesnet import default_model

    model = default_model("Fe", "K")
    expected = model.predict(example_structures)
    with np.load(out) as data:
        assert data["spectra"].shape == (100, 226) and data["spectra"].dtype == np.float32
        np.testing.assert_allclose(data["spectra"], expected.spectra, rtol=1e-5, atol=1e-7)
        assert (data["spread"] > 0).any()  # two distilled networks
        np.testing.assert_array_equal(data["energies"], model.energies)
        assert json.loads(str(data["model_metadata"]))["element"] == "Fe"
        assert str(data["precision"]) == "float32"
    half = tmp_path / "half.npz"
    assert (
        main(["predict", "--examples", "-o", str(half), "--quiet", "--precision", "bfloat16"]) == 0
    )
    bfloat16 = model.predict(example_structures, precision="bfloat16")
    with np.load(half) as data:
        assert str(data["precision"]) == "bfloat16"
        np.testing.assert_allclose(data["spectra"], bfloat16.spectra, rtol=1e-5, atol=1e-7)
    csv = tmp_path / "p.csv"
    assert main(["predict", str(EXAMPLES / "ACNCFE_C16H8FeO4.xyz"), "-o", str(csv), "--quiet"]) == 0
    ensemble_out = tmp_path / "e.npz"
    args = ["predict", "--examples", "-o", str(ensemble_out), "--quiet", "--model", "ensemble"]
    assert main(args) == 0
    with np.load(ensemble_out) as data:
        assert data["spread"].shape == (100, 226) and (data["spread"] > 0).all()
        meta = json.loads(str(data["model_metadata"]))
        assert meta["kernel"] is not None and meta["n_members"] == 3
    fast_out = tmp_path / "f.npz"
    args = ["predict", "--examples", "-o", str(fast_out), "--quiet", "--model", "fast"]
    assert main(args) == 0
    with np.load(fast_out) as data:
        assert "spread" not in data.files  # one network: no spread to write
        assert data["spectra"].shape == (100, 226)
    header, row = csv.read_text().splitlines()  # the batch output's predictions.csv
    assert header.startswith("structure_id,site_index,7097.0,")
    assert row.startswith("ACNCFE_C16H8FeO4,0,")


def test_shipped_model_is_self_describing():
    from xanesnet import default_model

    model = default_model("Fe", "K")
    assert model.element == "Fe" and model.edge == "K" and model.e0 == 7112.0
    assert model.n_members == 2 and model.kernel is None  # distilled from the ensemble
    assert model.metadata["distillation"]["teacher_file"] == "Fe_K_edge_ensemble.pt"
    assert len(model.energies) == 226 and model.energies[0] == pytest.approx(7097.0)
    meta = model.metadata
    for key in ("training_set_hash", "validation_metrics", "training", "xanesnet_version"):
        assert key in meta
    assert model.descriptor.g2_element_groups  # element-resolved channels
    # the figures as shipped: validation Δμ_avg within the project's target
    assert model.metadata["weight_dtype"] == "float16"
    assert meta["validation_metrics"]["delta_mu_avg"] <= 4.5
    # the teacher: three networks blended with kernel ridge, with a spread
    ensemble = default_model("Fe", "K", "ensemble")
    assert ensemble.kernel is not None and ensemble.n_members == 3 and ensemble.has_spread
    assert ensemble.descriptor == model.descriptor
    assert ensemble.metadata["training_set_hash"] == meta["training_set_hash"]
    with pytest.raises(ValueError, match="no shipped default model for the Co K-edge"):
        default_model("Co", "K")


def test_distill_a_student_from_a_trained_teacher(tiny_dataset, capsys, monkeypatch):
    folder, config, _ = tiny_dataset
    monkeypatch.setenv("XANESNET_CACHE", str(folder / "cache"))
    teacher = folder / "teacher.pt"
    args = ["train", str(config), "--quiet", "-o", str(teacher), "--set", "training.epochs=2"]
    assert main([*args, "--set", "training.kernel.weight=0.5"]) == 0
    distill = folder / "distill.toml"
    distill.write_text(
        config.read_text().split("[descriptor]")[0]
        + """
[teacher]
model = "teacher.pt"

[distill]
copies = 3
sigmas = [0.01, 0.02]
mixup = 4

[training]
epochs = 2
batch_size = 4

[training.network]
hidden = [16]

[output]
model = "student.pt"
weight_dtype = "float16"
"""
    )
    capsys.readouterr()
    assert main(["distill", str(distill), "--quiet"]) == 0
    captured = capsys.readouterr()
    assert "model written to" in captured.out and "validation" in captured.out
    # 2 structures + 3 copies of each + 4 mixed samples, none dropped
    assert "12 samples (0 dropped" in captured.err
    # two training structures are too few for an out-of-domain score: said, not fatal
    assert "out-of-domain score needs at least 10 training sites" in captured.err
    from xanesnet.model import load_model

    teacher_model, student = load_model(teacher), load_model(folder / "student.pt")
    assert student.descriptor == teacher_model.descriptor
    assert np.array_equal(student.energies, teacher_model.energies)
    assert student.n_members == 1 and student.kernel is None and not student.has_spread
    facts = student.metadata["distillation"]
    assert facts["teacher_file"] == "teacher.pt" and facts["copies"] == 6
    assert facts["sigmas"] == [0.01, 0.02] and facts["samples"] == 12 and facts["mixed"] == 4
    assert student.metadata["training_set_hash"] == teacher_model.metadata["training_set_hash"]
    assert student.metadata["validation_size"] == 1


def test_distill_refuses_a_teacher_of_another_training_set(tiny_dataset, capsys, monkeypatch):
    folder, config, names = tiny_dataset
    monkeypatch.setenv("XANESNET_CACHE", str(folder / "cache"))
    assert main(["train", str(config), "--quiet", "-o", str(folder / "t.pt")]) == 0
    (folder / "other.json").write_text(json.dumps({"train": names[1:], "validation": names[:1]}))
    distill = folder / "distill.toml"
    distill.write_text(
        config.read_text()
        .split("[descriptor]")[0]
        .replace('split = "split.json"', 'split = "other.json"')
        + '[teacher]\nmodel = "t.pt"\n[output]\nmodel = "s.pt"\n'
    )
    capsys.readouterr()
    assert main(["distill", str(distill), "--quiet"]) == 2
    assert "trained on another training set" in capsys.readouterr().err
    assert not (folder / "s.pt").exists()
    # a teacher that is not there, and a bad distillation setting, are named
    assert main(["distill", str(distill), "--teacher", str(folder / "none.pt")]) == 2
    assert "--teacher: file not found" in capsys.readouterr().err
    assert main(["distill", str(distill), "--set", "distill.sigmas=[-1.0]"]) == 2
    assert "sigmas: expected displacements >= 0" in capsys.readouterr().err
    assert main(["distill", str(distill), "--set", "training.kernel.weight=0.5"]) == 2
    assert "networks only" in capsys.readouterr().err
