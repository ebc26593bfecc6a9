"""Which predictions to trust: the absorber contract (the model's element by default, another
element refused, structures without the element counted apart) and the trust fields (calibrated
σ, predicted Δμ, out-of-domain score, physical-range flag) in every output."""

from __future__ import annotations

import json
import shutil
import warnings

import h5py
import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, molecule
from helpers import EXAMPLES, read_xanesnet_xyz

import xanesnet
from xanesnet import predict_batch, read_predictions
from xanesnet.cli.main import main
from xanesnet.model.runtime import Prediction, XanesModel
from xanesnet.model.trust import TRUST_FIELDS, SiteTrust
from xanesnet.store import PredictionStore

TRUST_NAMES = [name for name, _ in TRUST_FIELDS]


@pytest.fixture(scope="module")
def model() -> XanesModel:
    return xanesnet.default_model("Fe", "K")


@pytest.fixture(scope="module")
def complexes() -> list:
    return [read_xanesnet_xyz(p) for p in sorted(EXAMPLES.glob("*.xyz"))[:12]]


def displaced(atoms: Atoms, length: float, seed: int = 0) -> Atoms:
    """Every atom moved by ``length`` Å in a random direction."""
    rng = np.random.default_rng(seed)
    direction = rng.normal(size=atoms.positions.shape)
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    copy = atoms.copy()
    copy.positions = copy.positions + length * direction
    return copy


# --- absorber contract: model.predict -------------------------------------------------------


def test_default_absorber_is_the_model_element(model, complexes) -> None:
    default = model.predict(complexes, n_threads=1)
    explicit = model.predict(complexes, "Fe", n_threads=1)
    np.testing.assert_array_equal(default.index, explicit.index)
    np.testing.assert_array_equal(default.spectra, explicit.spectra)
    numbers = [complexes[s].numbers[a] for s, a in default.index]
    assert set(numbers) == {26}


def test_another_element_is_refused_naming_the_model(model, complexes) -> None:
    with pytest.raises(ValueError, match=r"absorber 'Cu': the Fe K-edge model .*Fe spectra only"):
        model.predict(complexes[0], "Cu")


def test_an_index_selecting_another_element_is_refused_naming_the_site(model, complexes) -> None:
    atoms = complexes[0]
    other = int(np.flatnonzero(atoms.numbers != 26)[0])
    symbol = atoms.get_chemical_symbols()[other]
    with pytest.raises(ValueError, match=rf"site {other} is {symbol}, not Fe: the Fe K-edge model"):
        model.predict(atoms, other)
    with pytest.raises(ValueError, match=rf"site {other} is {symbol}"):
        model.predict([atoms], [[0, other]])


def test_structures_without_the_element_give_no_rows(model, complexes) -> None:
    with pytest.raises(ValueError, match="no Fe site in the 1 structure"):
        model.predict(molecule("H2O"))
    mixed = model.predict([molecule("H2O"), complexes[0]], n_threads=1)
    alone = model.predict(complexes[0], n_threads=1)
    assert mixed.index[:, 0].tolist() == [1] * len(alone.index)
    np.testing.assert_array_equal(mixed.spectra, alone.spectra)


# --- trust fields through model.predict -----------------------------------------------------


def test_prediction_carries_calibrated_sigma_and_flags(model, complexes) -> None:
    p = model.predict(complexes, n_threads=1)
    n, n_e = p.spectra.shape
    assert p.sigma.shape == (n, n_e) and np.all(p.sigma > 0)
    assert p.predicted_delta_mu.shape == (n,) and np.all(p.predicted_delta_mu > 0)
    assert p.domain_score.shape == (n,) and p.outside_domain.dtype == bool
    # σ is the calibration's map of the spread, the Δμ its per-spectrum estimate
    calib = model.trust_model.calibration
    np.testing.assert_allclose(p.sigma, calib.sigma(p.spread))
    # the shipped default's Δμ also carries the latent distance, measured in the networks'
    # own activations of the call: the same numbers as measuring them again from the input
    assert calib.needs_distance
    features, _ = model.descriptor.compute(complexes, "Fe", n_threads=1)
    distance = model.trust_model.latent_distance(features)
    np.testing.assert_array_equal(
        p.predicted_delta_mu, calib.predicted_delta_mu(p.spread, p.spectra, distance)
    )


def test_training_like_complexes_score_in_domain(model, complexes) -> None:
    p = model.predict(complexes, n_threads=1)
    # the packaged examples come from the data set (some trained on): scores ≈ 1 or below
    assert 0.0 < np.median(p.domain_score) < 2.0
    # the threshold is the 99th percentile of held-out training sites: a few may lie above
    assert np.mean(p.outside_domain) <= 0.25
    assert not p.unphysical.any()


def test_crystal_and_perturbed_complex_score_outside(model, complexes) -> None:
    crystal = model.predict(bulk("FeO", "rocksalt", a=4.33), n_threads=1)
    assert crystal.outside_domain.all() and crystal.unphysical.all()
    assert crystal.domain_score[0] > 3 * model.trust_model.domain.threshold
    assert (crystal.spectra < 0).any()  # not clipped: flagged instead
    far = model.predict(displaced(complexes[3], 0.5), n_threads=1)
    assert far.outside_domain.all()


def test_models_without_the_metadata_give_nan_and_false(model, complexes) -> None:
    metadata = {
        k: v for k, v in model.metadata.items() if k not in ("uncertainty_calibration", "domain")
    }
    bare = XanesModel(model.module, metadata, model.path)
    p = bare.predict(complexes[:3], n_threads=1)
    assert np.isnan(p.sigma).all() and np.isnan(p.predicted_delta_mu).all()
    assert np.isnan(p.domain_score).all() and not p.outside_domain.any()
    assert not p.unphysical.any()
    crystal = bare.predict(bulk("FeO", "rocksalt", a=4.33), n_threads=1)
    assert crystal.unphysical.all()  # μ < 0 is flagged without a calibration too
    # an entry of another schema is ignored with a warning, not an error
    broken = dict(metadata, domain={"schema": "xanesnet.domain/999"})
    with pytest.warns(RuntimeWarning, match="metadata entry ignored"):
        XanesModel(model.module, broken, model.path)


def test_hand_built_prediction_defaults() -> None:
    p = Prediction(np.arange(3.0), np.ones((2, 3)), None, np.zeros((2, 2), dtype=np.int64))
    assert p.sigma.shape == (2, 3) and np.isnan(p.sigma).all()
    assert p.outside_domain.tolist() == [False, False]
    assert set(SiteTrust.unknown(2, 3).columns()) == set(TRUST_NAMES)


def test_store_and_model_agree_on_the_trust_columns() -> None:
    from xanesnet.store import TRUST_FIELDS as STORED

    assert [(n, np.dtype(d)) for n, d in STORED] == [(n, np.dtype(d)) for n, d in TRUST_FIELDS]


# --- batch: contract, outputs, resume, Dask -------------------------------------------------


@pytest.fixture()
def mixed_inputs(tmp_path):
    """6 example complexes, one structure without Fe, one truncated file."""
    folder = tmp_path / "in"
    folder.mkdir()
    for path in sorted(EXAMPLES.glob("*.xyz"))[:6]:
        shutil.copy(path, folder)
    (folder / "nofe.xyz").write_text("2\nc\n8 0 0 0\n8 1.2 0 0\n")
    return folder


def test_batch_counts_structures_without_the_element_apart(tmp_path, mixed_inputs, capsys) -> None:
    code = main(["batch", str(mixed_inputs), "-o", str(tmp_path / "out"), "--chunk-size", "3"])
    assert code == 0  # a structure without Fe is not a failure
    out = capsys.readouterr().out
    assert "0 failed, 1 structures without a Fe site" in out
    result = read_predictions(tmp_path / "out")
    assert result.no_sites == ["nofe"] and result.errors == []
    assert len(result.ids) == 6


def test_batch_refuses_another_element_and_records_wrong_sites(
    tmp_path, mixed_inputs, capsys
) -> None:
    # another element than the given model's (without --model, the element picks a model)
    argv = ["batch", str(mixed_inputs), "-o", str(tmp_path / "cu"), "--absorber", "Cu"]
    assert main([*argv, "--model", "default"]) == 2
    assert "absorber 'Cu': the Fe K-edge model" in capsys.readouterr().err
    code = main(["batch", str(mixed_inputs), "-o", str(tmp_path / "i1"), "--absorber", "1"])
    assert code == 1
    result = read_predictions(tmp_path / "i1")
    reasons = dict(result.errors)
    assert len(result.ids) == 0 and len(reasons) == 7
    assert all("site 1 is" in r and "Fe K-edge model" in r for r in reasons.values())


@pytest.mark.parametrize("fmt", ["hdf5", "zarr", "csv"])
def test_every_format_carries_the_trust_columns(tmp_path, fmt) -> None:
    from ase.io import write

    folder = tmp_path / "in"
    folder.mkdir()
    paths = sorted(EXAMPLES.glob("*.xyz"))[:8]
    for path in paths:
        shutil.copy(path, folder)
    crystal = bulk("FeO", "rocksalt", a=4.33)
    write(folder / "rocksalt.extxyz", crystal, format="extxyz")
    (folder / "water.xyz").write_text("3\nc\n8 0 0 0\n1 0.96 0 0\n1 -0.24 0.93 0\n")
    with pytest.warns(UserWarning, match="outside the training domain"):
        summary = predict_batch(folder, tmp_path / "out", chunk_size=4, format=fmt, progress=False)
    assert summary.no_sites == 1 and summary.outside_domain >= 1 and summary.failed == 0
    result = read_predictions(tmp_path / "out")
    assert len(result.ids) == 9
    model = xanesnet.default_model()
    expected = model.predict([read_xanesnet_xyz(p) for p in paths] + [crystal], n_threads=1)
    order = np.argsort([p.stem for p in paths] + ["rocksalt"], kind="stable")
    position = {name: i for i, name in enumerate(result.ids)}
    rows = [position[name] for name in np.array([p.stem for p in paths] + ["rocksalt"])[order]]
    for name, dtype in TRUST_FIELDS:
        stored = getattr(result, name)
        assert stored.dtype == np.dtype(dtype) and stored.shape == (9,)
        want = getattr(expected, name)[order]
        if dtype is np.float32:
            np.testing.assert_allclose(stored[rows], want, rtol=1e-4)
        else:
            np.testing.assert_array_equal(stored[rows], want)
    assert result.outside_domain[position["rocksalt"]] and result.unphysical[position["rocksalt"]]
    assert result.no_sites == ["water"]
    out = tmp_path / "out"
    if fmt == "hdf5":
        with h5py.File(out / "predictions.h5", "r") as f:  # plain HDF5
            np.testing.assert_array_equal(f["domain_score"][()], result.domain_score)
            assert list(f["no_site_ids"].asstr()[()]) == ["water"]
    elif fmt == "zarr":
        import zarr

        root = zarr.open_group(str(out / "predictions.zarr"), mode="r")
        np.testing.assert_array_equal(root["outside_domain"][:], result.outside_domain)
    else:
        header = (out / "trust.csv").read_text().splitlines()[0].split(",")
        assert header == ["structure_id", "site_index", *TRUST_NAMES]
        assert (out / "no_sites.csv").read_text().splitlines() == ["structure_id", "water"]


def _assert_same_trust(a, b) -> None:
    np.testing.assert_array_equal(a.ids, b.ids)
    np.testing.assert_array_equal(a.spectra, b.spectra)
    for name in TRUST_NAMES:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.no_sites == b.no_sites and a.errors == b.errors
    chunks = {k: v["sha256"] for k, v in a.metadata["chunks"].items()}
    assert chunks == {k: v["sha256"] for k, v in b.metadata["chunks"].items()}


@pytest.mark.parametrize("fmt", ["hdf5", "csv"])
def test_a_resumed_run_gives_the_same_trust_columns(tmp_path, mixed_inputs, fmt) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        predict_batch(mixed_inputs, tmp_path / "whole", chunk_size=2, format=fmt, progress=False)
        whole = read_predictions(tmp_path / "whole")
        # forget chunks 1 and 3 as a killed run would leave them (uncommitted), then resume
        shutil.copytree(tmp_path / "whole", tmp_path / "resumed")
        manifest_path = tmp_path / "resumed" / "manifest.json"
        manifest = json.loads(manifest_path.read_text())
        for key in ("1", "3"):
            del manifest["chunks"][key]
        manifest["complete"] = False
        manifest_path.write_text(json.dumps(manifest))
        summary = predict_batch(
            mixed_inputs, tmp_path / "resumed", chunk_size=2, format=fmt, progress=False
        )
    assert summary.chunks_written == 2
    _assert_same_trust(whole, read_predictions(tmp_path / "resumed"))


def test_a_changed_trust_column_is_caught_by_the_chunk_checksum(tmp_path, mixed_inputs) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        predict_batch(mixed_inputs, tmp_path / "out", chunk_size=8, progress=False)
    with h5py.File(tmp_path / "out" / "chunks" / "chunk_000000.h5", "r+") as f:
        f["domain_score"][0] = 99.0
    with pytest.raises(ValueError, match="chunk 0 is damaged .checksum mismatch"):
        read_predictions(tmp_path / "out")


def test_outputs_without_trust_columns_still_read_and_resume(tmp_path) -> None:
    """An output started before the trust columns existed (no ``trust_fields``)."""
    energies = np.arange(3.0)
    store = PredictionStore(tmp_path / "old", {"j": 1}, energies, False)
    store.manifest = {k: v for k, v in store.manifest.items() if k != "trust_fields"}
    store.commit(0, ["a"], [0], np.ones((1, 3)), None, [], 1, trust={"domain_score": [1.0]})
    store.close()
    again = PredictionStore(tmp_path / "old", {"j": 1}, energies, False)  # checksum still holds
    assert again.damaged == []
    again.finish()
    result = read_predictions(tmp_path / "old")
    assert result.domain_score is None and result.no_sites == []


@pytest.mark.slow
def test_dask_run_gives_the_same_trust_columns(tmp_path, mixed_inputs) -> None:
    pytest.importorskip("distributed")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        predict_batch(mixed_inputs, tmp_path / "single", chunk_size=2, progress=False)
        predict_batch(mixed_inputs, tmp_path / "dask", chunk_size=2, progress=False, dask="local:2")
    _assert_same_trust(read_predictions(tmp_path / "single"), read_predictions(tmp_path / "dask"))


# --- xanesnet predict ----------------------------------------------------------------------


def test_predict_npz_and_csv_carry_the_trust_fields(tmp_path, mixed_inputs, model, capsys) -> None:
    out = tmp_path / "p.npz"
    assert main(["predict", str(mixed_inputs), "-o", str(out)]) == 0
    assert "6 sites from 7 structures, 1 structures without a Fe site" in capsys.readouterr().out
    structures = [read_xanesnet_xyz(p) for p in sorted(mixed_inputs.glob("*.xyz"))[:6]]
    expected = model.predict(structures, n_threads=1)
    with np.load(out) as data:
        assert data["sigma"].shape == data["spectra"].shape == (6, 226)
        np.testing.assert_allclose(data["sigma"], expected.sigma, rtol=1e-4)
        for name in TRUST_NAMES:
            assert data[name].shape == (6,)
        np.testing.assert_allclose(data["domain_score"], expected.domain_score, rtol=1e-4)
        assert data["no_site_ids"].tolist() == ["nofe"]
        assert data["failed_ids"].size == 0
    csv = tmp_path / "p.csv"
    assert main(["predict", str(mixed_inputs), "-o", str(csv), "--quiet"]) == 0
    trust = (tmp_path / "p.trust.csv").read_text().splitlines()
    assert trust[0] == "structure_id,site_index," + ",".join(TRUST_NAMES)
    assert len(trust) == 7


def test_predict_refuses_another_element_and_a_wrong_site(tmp_path, capsys) -> None:
    from ase.io import write

    cu = tmp_path / "cu.cif"
    write(cu, bulk("Cu", "fcc", a=3.61))
    argv = ["predict", str(cu), "--absorber", "Cu", "--model", "default"]
    assert main([*argv, "-o", str(tmp_path / "cu.npz")]) == 2
    assert "absorber 'Cu': the Fe K-edge model" in capsys.readouterr().err
    water = tmp_path / "water.xyz"
    water.write_text("3\nc\n8 0 0 0\n1 0.96 0 0\n1 -0.24 0.93 0\n")
    assert main(["predict", str(water), "-o", str(tmp_path / "w.npz")]) == 0  # no sites
    assert "0 sites from 1 structures, 1 structures without a Fe site" in capsys.readouterr().out
    assert main(["predict", str(water), "--absorber", "0", "-o", str(tmp_path / "w0.npz")]) == 1
    assert "site 0 is O, not Fe: the Fe K-edge model" in capsys.readouterr().err


# --- plots ---------------------------------------------------------------------------------


def test_plot_labels_the_calibrated_band_and_out_of_domain_sites(tmp_path) -> None:
    from ase.io import write

    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(sorted(EXAMPLES.glob("*.xyz"))[0], folder)
    write(folder / "rocksalt.extxyz", bulk("FeO", "rocksalt", a=4.33), format="extxyz")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        predict_batch(folder, tmp_path / "out", progress=False)
    name = sorted(EXAMPLES.glob("*.xyz"))[0].stem
    svg = tmp_path / "p.svg"
    assert main(["plot", str(tmp_path / "out"), "--ids", name, "rocksalt", "-o", str(svg)]) == 0
    text = svg.read_text()
    assert "±1σ calibrated interval" in text
    assert "rocksalt (outside training domain)" in text
    assert f"{name} (outside training domain)" not in text


# --- data-set commands (importance, plot --xyz/--xanes): atom 0 is the absorber -------------


@pytest.mark.parametrize("command", ["plot", "importance"])
def test_dataset_commands_refuse_an_absorber_of_another_element(
    tmp_path, command, capsys, monkeypatch
) -> None:
    from pathlib import Path

    monkeypatch.setenv("XANESNET_CACHE", str(tmp_path / "cache"))
    spectra = Path(__file__).parents[1] / "data" / "spectra" / "processed"
    xyz, xanes = tmp_path / "xyz", tmp_path / "xanes"
    xyz.mkdir()
    xanes.mkdir()
    for spectrum in sorted(spectra.glob("*.txt")):
        shutil.copy(spectrum, xanes)
        shutil.copy(EXAMPLES / f"{spectrum.stem}.xyz", xyz)
    victim = sorted(xyz.glob("*.xyz"))[1]
    lines = victim.read_text().splitlines()
    fe = next(i for i in range(2, len(lines)) if lines[i].split()[0] in ("26", "Fe"))
    other = next(i for i in range(2, len(lines)) if lines[i].split()[0] not in ("26", "Fe"))
    lines[fe], lines[other] = lines[other], lines[fe]  # atom 0 is no longer Fe
    victim.write_text("\n".join(lines) + "\n")
    args = [command, "--xyz", str(xyz), "--xanes", str(xanes), "-o", str(tmp_path / "out")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"structure {victim.stem}: site 0 is" in err and "the Fe K-edge model" in err


def test_float32_domain_score_matches_the_float64_definition(model, complexes) -> None:
    features, _ = model.descriptor.compute(complexes, "Fe", n_threads=1)
    features = np.concatenate([features, features * 1.3])  # in and far outside the domain
    domain = model.trust_model.domain
    fast = model.trust_model.fast_domain.score(features)
    # float32 standardised distances of ~|z| ≲ 1e3: a few float32 ulps of |z|² relative
    np.testing.assert_allclose(fast, domain.score_features(features), rtol=1e-4)
    no_sigma = model.trust(features[:4], np.ones((4, 226)), np.ones((4, 226)), sigma=False)
    assert no_sigma.sigma is None and no_sigma.domain_score.shape == (4,)


def test_domain_score_bits_do_not_depend_on_threads_or_chunking(model, complexes) -> None:
    """A Dask worker (one thread) and this process (a pool) must store the same bits."""
    import torch

    features, _ = model.descriptor.compute(complexes, "Fe", n_threads=1)
    features = np.concatenate([features * (1 + 0.01 * i) for i in range(40)])
    fast = model.trust_model.fast_domain
    before = torch.get_num_threads()
    try:
        scores = {}
        for threads in (1, 2):
            torch.set_num_threads(threads)
            scores[threads] = fast.score(features)
    finally:
        torch.set_num_threads(before)
    np.testing.assert_array_equal(scores[1], scores[2])
    np.testing.assert_array_equal(fast.score(features[5:17]), scores[1][5:17])
