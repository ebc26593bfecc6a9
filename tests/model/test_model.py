"""Model: training converges and is deterministic and resumable; files round-trip safely."""

from __future__ import annotations

import json
import zipfile
from dataclasses import replace

import numpy as np
import pytest
import torch
from helpers import float32_atol

import xanesnet
from xanesnet import WACSF
from xanesnet.model import (
    NetworkConfig,
    SpectrumEnsemble,
    TrainConfig,
    load_model,
    save_model,
    train_ensemble,
    train_member,
)
from xanesnet.model.files import quiet_torchscript
from xanesnet.model.train import kfold_indices

ENERGIES = 7112.0 + np.linspace(-15.0, 60.0, 226)


@pytest.fixture(scope="module")
def fixture_data(example_structures):
    """Descriptors of the 100 example structures and smooth synthetic spectra from them."""
    config = WACSF()
    features, _ = config.compute(example_structures, n_threads=1)
    z = (features - features.mean(0)) / (features.std(0) + 1e-12)
    rng = np.random.default_rng(0)
    basis = np.exp(-0.5 * ((ENERGIES[None, :] - rng.uniform(7100, 7170, (6, 1))) / 4.0) ** 2)
    weights = np.tanh(z @ rng.normal(size=(z.shape[1], 6)) / 6.0) + 1.5
    spectra = weights @ basis + 0.1
    return config, features, spectra


def small_config(**changes) -> TrainConfig:
    base = dict(
        network=NetworkConfig(hidden=(64, 64), dropout=0.1),
        epochs=40,
        batch_size=16,
        learning_rate=3e-3,
    )
    base.update(changes)
    return TrainConfig(**base)


def test_training_converges(fixture_data):
    _, x, y = fixture_data
    model, history = train_member(x[:80], y[:80], x[80:], y[80:], small_config())
    assert history.train_loss[-1] < 0.1 * history.train_loss[0]
    assert min(history.val_loss) < 0.3 * history.val_loss[0]
    with torch.no_grad():
        pred = model(torch.as_tensor(x[80:], dtype=torch.float32)).numpy()
    error = np.abs(pred - y[80:]).sum(1) / y[80:].sum(1)
    baseline = np.abs(y[:80].mean(0) - y[80:]).sum(1) / y[80:].sum(1)  # the mean spectrum
    assert error.mean() < 0.6 * baseline.mean()


def test_same_seed_same_weights(fixture_data):
    _, x, y = fixture_data
    cfg = small_config(epochs=5)
    a, _ = train_member(x, y, None, None, cfg, seed=3)
    b, _ = train_member(x, y, None, None, cfg, seed=3)
    c, _ = train_member(x, y, None, None, cfg, seed=4)
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(pa, pb), name
    assert not torch.equal(a.layers[0].weight, c.layers[0].weight)


@pytest.mark.parametrize("older_checkpoint", [False, True])
def test_killed_training_resumes_to_identical_weights(fixture_data, tmp_path, older_checkpoint):
    """Also from a checkpoint written before the input bounds existed (no z_min / z_max)."""
    _, x, y = fixture_data
    cfg = small_config(epochs=8)
    reference, ref_history = train_member(x[:80], y[:80], x[80:], y[80:], cfg)

    class Killed(Exception):
        pass

    def kill_at_epoch_4(epoch, train_loss, val_loss):
        if epoch == 4:
            raise Killed

    ckpt, log = tmp_path / "member.ckpt", tmp_path / "member.csv"
    with pytest.raises(Killed):
        train_member(
            x[:80],
            y[:80],
            x[80:],
            y[80:],
            cfg,
            checkpoint=ckpt,
            log_csv=log,
            progress=kill_at_epoch_4,
        )
    if older_checkpoint:
        state = torch.load(ckpt, weights_only=True)
        for saved in (state["model"], state["best_state"]):
            del saved["z_min"], saved["z_max"]
        torch.save(state, ckpt)
    resumed, history = train_member(
        x[:80], y[:80], x[80:], y[80:], cfg, checkpoint=ckpt, log_csv=log
    )
    for pa, pb in zip(reference.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.equal(pa, pb)
    assert history.val_loss == ref_history.val_loss
    rows = log.read_text().strip().splitlines()
    assert rows[0].startswith("epoch,train_loss,val_loss")
    assert [int(r.split(",")[0]) for r in rows[1:]] == list(range(8))


def test_early_stopping_keeps_best_epoch(fixture_data):
    _, x, y = fixture_data
    cfg = small_config(epochs=200, patience=3, learning_rate=3e-2)
    _, history = train_member(x[:80], y[:80], x[80:], y[80:], cfg)
    assert len(history.val_loss) < 200
    assert history.best_epoch == int(np.argmin(history.val_loss))
    assert len(history.val_loss) - 1 - history.best_epoch == 3


def _ensemble(fixture_data, n_members=3):
    config, x, y = fixture_data
    ensemble, _ = train_ensemble(x, y, None, None, small_config(epochs=3, n_members=n_members))
    return config, x, ensemble


def test_export_round_trip_equals_eager(fixture_data, tmp_path, example_structures):
    config, x, ensemble = _ensemble(fixture_data)
    path = tmp_path / "model.pt"
    save_model(
        ensemble,
        path,
        descriptor=config,
        energies=ENERGIES,
        e0=7112.0,
        element="Fe",
        extra={"validation_metrics": {"delta_mu_avg": 1.0}},
    )
    model = load_model(path)
    with torch.no_grad():
        eager_mean, eager_spread = ensemble(torch.as_tensor(x, dtype=torch.float32))
    mean, spread = model.predict_features(x)
    # TorchScript and eager (and batched and one-by-one) may order the float32 sums of a layer
    # differently: the longest sum is the widest layer input (features or hidden units), and
    # the spread inherits the rounding of the member outputs it is computed from.
    longest_sum = max(x.shape[1], *small_config().network.hidden)
    atol = float32_atol(eager_mean.numpy(), longest_sum)
    np.testing.assert_allclose(mean, eager_mean.numpy(), rtol=0, atol=atol)
    np.testing.assert_allclose(spread, eager_spread.numpy(), rtol=0, atol=atol)
    # several members: the spread is their population standard deviation
    with torch.no_grad():
        members = torch.stack(
            [m(torch.as_tensor(x, dtype=torch.float32)) for m in ensemble.members]
        )
    expected_spread = members.std(0, unbiased=False).numpy()
    assert expected_spread.max() > 0
    np.testing.assert_allclose(spread, expected_spread, rtol=0, atol=atol)
    # batched equals one by one
    single = np.concatenate([model.predict_features(x[i : i + 1])[0] for i in range(5)])
    np.testing.assert_allclose(single, mean[:5], rtol=0, atol=atol)
    # predicting from structures computes the model's own descriptor
    prediction = model.predict(example_structures[:4], absorber=0)
    np.testing.assert_allclose(prediction.spectra, mean[:4], rtol=0, atol=atol)
    assert prediction.spread is not None and prediction.spread.shape == (4, 226)
    np.testing.assert_array_equal(prediction.energies, ENERGIES)
    assert model.metadata["validation_metrics"] == {"delta_mu_avg": 1.0}
    assert model.descriptor == config and model.element == "Fe" and model.edge == "K"


def test_single_member_has_no_spread(fixture_data, tmp_path, example_structures):
    config, _, ensemble = _ensemble(fixture_data, n_members=1)
    save_model(
        ensemble, tmp_path / "one.pt", descriptor=config, energies=ENERGIES, e0=7112.0, element="Fe"
    )
    assert load_model(tmp_path / "one.pt").predict(example_structures[:2]).spread is None


def test_load_rejects_files_without_valid_metadata(fixture_data, tmp_path):
    config, _, ensemble = _ensemble(fixture_data, n_members=1)
    with pytest.raises(FileNotFoundError, match="model file not found"):
        load_model(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a model at all")
    with pytest.raises(ValueError, match="not a xanesnet model file"):
        load_model(junk)
    bare = tmp_path / "bare.pt"
    with quiet_torchscript():
        torch.jit.save(torch.jit.script(ensemble), str(bare))
    with pytest.raises(ValueError, match="has no xanesnet metadata"):
        load_model(bare)
    good = tmp_path / "good.pt"
    save_model(ensemble, good, descriptor=config, energies=ENERGIES, e0=7112.0, element="Fe")
    for mutate, message in (
        (lambda m: m.update(schema="other/9"), "unsupported model schema"),
        (lambda m: m.pop("descriptor"), "lacks"),
        (lambda m: m.update(energies=[1.0, 2.0]), "energies do not match"),
        (lambda m: m["descriptor"].update(n_g2=3), "descriptor length does not match"),
    ):
        broken = tmp_path / "broken.pt"
        _rewrite_metadata(good, broken, mutate)
        with pytest.raises(ValueError, match=message):
            load_model(broken)


def _rewrite_metadata(source, target, mutate):
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(target, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename.endswith("extra/xanesnet.json"):
                meta = json.loads(data)
                mutate(meta)
                data = json.dumps(meta).encode()
            zout.writestr(item, data)


def test_save_rejects_mismatched_descriptor(fixture_data, tmp_path):
    _, _, ensemble = _ensemble(fixture_data, n_members=1)
    with pytest.raises(ValueError, match="descriptor length does not match"):
        save_model(
            ensemble,
            tmp_path / "m.pt",
            descriptor=WACSF(n_g2=8),
            energies=ENERGIES,
            e0=7112.0,
            element="Fe",
        )


def test_kfold_partitions_every_sample():
    folds = kfold_indices(23, 5, seed=1)
    tests = np.concatenate([t for _, t in folds])
    assert sorted(tests.tolist()) == list(range(23))
    for train, test in folds:
        assert not set(train) & set(test) and len(train) + len(test) == 23
    assert [t.tolist() for _, t in kfold_indices(23, 5, seed=1)] == [t.tolist() for _, t in folds]


def test_ensemble_needs_members():
    with pytest.raises(ValueError, match="at least one network"):
        SpectrumEnsemble([])


def test_bad_training_config():
    with pytest.raises(ValueError, match="schedule"):
        TrainConfig(schedule="sometimes")
    with pytest.raises(ValueError, match="unknown keys"):
        TrainConfig.from_dict({"epochz": 3})
    with pytest.raises(ValueError, match="activation"):
        NetworkConfig(activation="swish2")


def test_restore_best_false_keeps_last_epoch(fixture_data):
    _, x, y = fixture_data
    cfg = small_config(epochs=6, learning_rate=3e-2)
    last, history = train_member(x[:80], y[:80], x[80:], y[80:], replace(cfg, restore_best=False))
    plain, _ = train_member(x[:80], y[:80], None, None, cfg)  # same seed, no validation
    assert history.best_epoch == 5 and len(history.val_loss) == 6
    for pa, pb in zip(last.state_dict().values(), plain.state_dict().values(), strict=True):
        assert torch.equal(pa, pb)


def test_model_names_resolve_to_shipped_files(tmp_path, monkeypatch):
    from xanesnet.model.pretrained import default_model_path, resolve_model_path

    assert resolve_model_path(None) == default_model_path("Fe", "K")
    assert resolve_model_path("default") == default_model_path("Fe", "K")
    assert resolve_model_path("fast") == default_model_path("Fe", "K", "fast")
    assert resolve_model_path("fast").name == "Fe_K_edge_fast.pt"
    assert resolve_model_path("ensemble").name == "Fe_K_edge_ensemble.pt"
    assert xanesnet.default_model("Fe", "K", "fast").n_members == 1
    # a file of that name in the working directory wins over the shipped model
    monkeypatch.chdir(tmp_path)
    (tmp_path / "fast").write_bytes(b"x")
    assert resolve_model_path("fast").resolve() == tmp_path / "fast"
    with pytest.raises(FileNotFoundError, match="--model: file not found: nope.pt"):
        resolve_model_path("nope.pt")
    with pytest.raises(ValueError, match="variant"):
        default_model_path("Fe", "K", "tiny")
    with pytest.raises(ValueError, match="no shipped default model for the Zn K-edge"):
        default_model_path("Zn", "K")


def test_derivative_loss_trains_and_is_validated(fixture_data):
    _, x, y = fixture_data
    config = small_config(derivative_weight=1.0, epochs=30)
    model, history = train_member(x[:80], y[:80], None, None, config)
    assert history.train_loss[-1] < 0.2 * history.train_loss[0]
    plain, _ = train_member(x[:80], y[:80], None, None, small_config(epochs=30))
    with torch.no_grad():
        a = model(torch.as_tensor(x[:5], dtype=torch.float32))
        b = plain(torch.as_tensor(x[:5], dtype=torch.float32))
    assert not torch.equal(a, b)  # the extra term changes the optimisation
    with pytest.raises(ValueError, match="derivative_weight"):
        small_config(derivative_weight=-1.0)


class _ScriptedTeacher:
    """A teacher whose predictions are given: row i of every call is ``rows[i]``, except
    that the copies of structure 0 come out far outside the reference range."""

    def __init__(self, descriptor: WACSF, n_energies: int) -> None:
        self.descriptor = descriptor
        self.n_energies = n_energies
        self.calls = 0
        self.has_spread = True
        self.label = "scripted teacher"

    def predict_features(self, features, n_threads=0):
        self.calls += 1
        mean = np.full((len(features), self.n_energies), 0.5)
        if self.calls > 1:  # the first call labels the originals
            mean[0] = 1e6
        # a spread that tells the rows apart: 0.01 * (first feature's rank in the call)
        spread = np.repeat(0.01 * np.arange(len(features))[:, None], self.n_energies, axis=1)
        return mean, spread


def test_distillation_set_labels_copies_and_drops_extrapolations(example_structures):
    from xanesnet.model.distill import DistillConfig, distillation_set, perturbed_copies

    structures = example_structures[:4]
    descriptor = WACSF(n_g2=4, n_g4=4)
    features, _ = descriptor.compute(structures, n_threads=1)
    reference = np.random.default_rng(0).uniform(0.0, 1.0, (4, 10))
    teacher = _ScriptedTeacher(descriptor, 10)
    config = DistillConfig(copies=3, sigmas=(0.0, 0.05), seed=1)
    x, y, spread, summary = distillation_set(teacher, structures, features, reference, config)
    assert spread is None  # the students' own disagreement is their spread (the default)
    # 4 originals + 3 rounds of 4 copies, less structure 0's copies (teacher out of range)
    assert summary == {"structures": 4, "copies": 12, "mixed": 0, "dropped": 3, "samples": 13}
    assert x.shape == (13, descriptor.n_features) and y.shape == (13, 10)
    assert x.dtype == np.float32 and np.all(y == 0.5)
    # sigma 0 reproduces the originals' descriptors exactly; 0.05 Å moves them
    np.testing.assert_array_equal(x[4:7], features[1:4].astype(np.float32))
    assert not np.allclose(x[7:10], features[1:4], atol=1e-6)
    # "reference" labels the originals with the reference spectra
    reference_config = DistillConfig(copies=0, originals="reference")
    _, y_ref, _, _ = distillation_set(teacher, structures, features, reference, reference_config)
    np.testing.assert_allclose(y_ref, reference.astype(np.float32))
    # mixed samples lie between two originals, and are seeded
    mixed_config = DistillConfig(copies=0, mixup=5, seed=2)
    x_mix, _, _, facts = distillation_set(
        _ScriptedTeacher(descriptor, 10), structures, features, reference, mixed_config
    )
    # (the scripted teacher sends the first mixed sample out of range: dropped too)
    assert facts["mixed"] == 5 and facts["samples"] == 8 and facts["dropped"] == 1
    low, high = features.min(axis=0), features.max(axis=0)
    assert np.all(x_mix[4:] >= low - 1e-5) and np.all(x_mix[4:] <= high + 1e-5)
    x_again, _, _, _ = distillation_set(
        _ScriptedTeacher(descriptor, 10), structures, features, reference, mixed_config
    )
    np.testing.assert_array_equal(x_mix, x_again)
    # copies are seeded and leave the inputs alone
    before = structures[0].positions.copy()
    a = perturbed_copies(structures, 0.1, np.random.default_rng(5))
    b = perturbed_copies(structures, 0.1, np.random.default_rng(5))
    assert np.array_equal(a[0].positions, b[0].positions)
    assert np.array_equal(structures[0].positions, before)
    with pytest.raises(ValueError, match="equal lengths"):
        distillation_set(teacher, structures, features[:3], reference, config)


def test_students_carry_the_teachers_spread(example_structures):
    """spread = "teacher": the teacher's spread travels with the kept samples, and two
    students trained on mean ± spread average to the mean with the spread as their standard
    deviation (blend_members: over the members, not n − 1)."""
    from xanesnet.model.distill import DistillConfig, distillation_set, train_student

    structures = example_structures[:4]
    descriptor = WACSF(n_g2=4, n_g4=4)
    features, _ = descriptor.compute(structures, n_threads=1)
    reference = np.random.default_rng(0).uniform(0.0, 1.0, (4, 10))
    config = DistillConfig(copies=2, sigmas=(0.01,), seed=1, spread="teacher")
    teacher = _ScriptedTeacher(descriptor, 10)
    x, y, spread, summary = distillation_set(teacher, structures, features, reference, config)
    # originals keep rows 0-3 of the first call; each copy round drops its row 0
    assert summary["samples"] == 4 + 3 + 3 and spread.shape == y.shape == (10, 10)
    expected_rows = [0, 1, 2, 3, 1, 2, 3, 1, 2, 3]
    np.testing.assert_allclose(spread[:, 0], 0.01 * np.array(expected_rows), rtol=1e-6)
    with pytest.raises(ValueError, match="spread"):
        DistillConfig(spread="ensemble")
    single = _ScriptedTeacher(descriptor, 10)
    single.has_spread = False
    with pytest.raises(ValueError, match="no spread to carry"):
        distillation_set(single, structures, features, reference, config)

    rng = np.random.default_rng(3)
    x = rng.normal(size=(64, 6)).astype(np.float32)
    mean = np.tanh(x[:, :1] + np.linspace(0, 1, 10)).astype(np.float32)
    carried = (0.05 + 0.02 * np.abs(x[:, 1:2])).repeat(10, axis=1).astype(np.float32)
    student_config = small_config(n_members=2, epochs=2)
    student, _ = train_student(x, mean, student_config, spread=carried)
    with torch.no_grad():
        outputs = torch.stack([m(torch.from_numpy(x)) for m in student.members])
        blended, blended_spread = student(torch.from_numpy(x))
    # each member chases its own target; the mean and spread are those of the two members
    np.testing.assert_allclose(blended.numpy(), outputs.mean(dim=0).numpy(), atol=1e-6)
    half_gap = ((outputs[0] - outputs[1]) / 2).abs()
    np.testing.assert_allclose(blended_spread.numpy(), half_gap.numpy(), atol=1e-6)
    assert float((outputs[0] - outputs[1]).mean()) > 0  # member 0 learns mean + spread
    with pytest.raises(ValueError, match="even number"):
        train_student(x, mean, small_config(n_members=3, epochs=1), spread=carried)
    with pytest.raises(ValueError, match="shape"):
        train_student(x, mean, student_config, spread=carried[:, :5])


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"copies": -1}, "copies"),
        ({"sigmas": ()}, "sigmas"),
        ({"originals": "truth"}, "originals"),
        ({"label_margin": -0.1}, "label_margin"),
        ({"mixup": -5}, "mixup"),
    ],
)
def test_bad_distillation_config(changes, message):
    from xanesnet.model.distill import DistillConfig

    with pytest.raises(ValueError, match=message):
        DistillConfig(**changes)
    with pytest.raises(ValueError, match="unknown keys"):
        DistillConfig.from_dict({"copy": 3})
    assert DistillConfig.from_dict(DistillConfig().to_dict()) == DistillConfig()


def test_student_training_is_the_shipped_default_recipe():
    """The scripts' student recipe is the one scripts/fe_k_edge/distill.toml ships with."""
    from pathlib import Path

    import tomllib

    from xanesnet.model.distill import student_training

    toml = Path(__file__).resolve().parents[2] / "scripts" / "fe_k_edge" / "distill.toml"
    shipped = TrainConfig.from_dict(tomllib.loads(toml.read_text())["training"])
    assert student_training(60) == shipped
    assert student_training(5, 4).n_members == 4 and student_training(5, 4).epochs == 5
