"""Permutation importance: synthetic ranking, CSV output and the ``importance`` CLI."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest

from xanesnet import default_model
from xanesnet.analysis import (
    CSV_COLUMNS,
    DEFAULT_WINDOWS,
    Window,
    feature_table,
    parse_windows,
    permutation_importance,
    shell_peaks,
    weighted_mean_mu,
    write_csv,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "xanesnet" / "examples" / "fe_k_edge"
SPECTRA = ROOT / "tests" / "data" / "spectra" / "processed"

# grid relative to the edge: windows -3..3 and 50..56 eV hold 7 points each
E_REL = np.arange(-10.0, 61.0, 1.0)
NEAR = (E_REL >= -3) & (E_REL <= 3)
HIGH = (E_REL >= 50) & (E_REL <= 56)


def _synthetic_predict(x: np.ndarray) -> np.ndarray:
    """Near-edge points depend on features 2 and 5, high-energy points on feature 7."""
    out = np.zeros((len(x), len(E_REL)))
    out[:, NEAR] = (2.0 * x[:, 2] + np.sin(3.0 * x[:, 5]) + x[:, 5] ** 2)[:, None]
    out[:, HIGH] = np.tanh(1.5 * x[:, 7])[:, None]
    return out


@pytest.fixture(scope="module")
def synthetic():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 10))
    y = _synthetic_predict(x) + 0.01 * rng.normal(size=(200, len(E_REL)))
    return x, y, permutation_importance(_synthetic_predict, x, y, E_REL, repeats=3, seed=0)


def test_synthetic_ranking(synthetic) -> None:
    _, _, result = synthetic
    assert result.mean.shape == result.std.shape == (10, 2)
    assert set(result.ranking(0)[:2]) == {2, 5}
    assert result.ranking(1)[0] == 7
    irrelevant = [j for j in range(10) if j not in (2, 5, 7)]
    assert np.allclose(result.mean[irrelevant], 0.0)
    assert np.allclose(result.mean[7, 0], 0.0) and np.allclose(result.mean[[2, 5], 1], 0.0)
    assert np.all(result.mean[[2, 5], 0] > 0.5) and result.mean[7, 1] > 0.3
    assert np.all(result.std >= 0) and np.all(result.baseline < 0.02)


def test_seeded_and_batched(synthetic) -> None:
    x, y, result = synthetic
    calls = []

    def counting(features: np.ndarray) -> np.ndarray:
        calls.append(len(features))
        return _synthetic_predict(features)

    again = permutation_importance(counting, x, y, E_REL, repeats=3, seed=0)
    np.testing.assert_allclose(again.mean, result.mean)
    assert calls == [200] + [600] * 10  # baseline, then all repeats of one feature per call
    small = permutation_importance(_synthetic_predict, x, y, E_REL, repeats=3, max_rows=250)
    np.testing.assert_allclose(small.mean, result.mean)


def test_bad_inputs() -> None:
    x = np.zeros((5, 3))
    with pytest.raises(ValueError, match="holds no point"):
        permutation_importance(lambda f: np.zeros((len(f), 4)), x, np.zeros((5, 4)), E_REL[:4])
    with pytest.raises(ValueError, match="repeats"):
        permutation_importance(_synthetic_predict, x, np.zeros((5, 71)), E_REL, repeats=0)


def test_parse_windows() -> None:
    assert parse_windows("-3:3,50:56") == DEFAULT_WINDOWS
    (w,) = parse_windows("10:20.5")
    assert (w.lo, w.hi) == (10.0, 20.5) and w.label == "+10..+20.5 eV"
    for bad in ("3", "a:b", "5:1", "1:2:3", ""):
        with pytest.raises(ValueError, match="--windows"):
            parse_windows(bad)


def test_feature_table_and_csv(synthetic, tmp_path: Path) -> None:
    from xanesnet.descriptors import WACSF

    config = WACSF(n_g2=4, n_g4=8, g2_element_groups=("H", "C,N,O"))
    table = feature_table(config)
    assert [f.name for f in table] == config.feature_names
    kinds = [f.kind for f in table]
    assert kinds[0] == "G1" and kinds.count("G2") == 4 * 3 and kinds.count("G4") == 8
    assert [t.mu for t in table[1:5]] == pytest.approx(list(config.g2_mu))
    g4 = [f for f in table if f.kind == "G4"]
    assert {f.lambda_ for f in g4} == {1.0, -1.0} and not np.isnan(g4[0].zeta)
    assert [f.group for f in table[-4:]] == ["C,N,O"] * 4

    _, _, result = synthetic
    fake = [
        type(table[0])(i, f"G2[mu={i}]", "G2", mu=float(i), eta=1.0) if i else table[0]
        for i in range(10)
    ]
    path = tmp_path / "importance.csv"
    write_csv(path, result, fake)
    with path.open() as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) == 10 * 2
    assert {r["window"] for r in rows} == {"near edge", "high energy"}
    row = next(r for r in rows if r["feature_index"] == "7" and r["window"] == "high energy")
    assert float(row["importance_mean"]) == pytest.approx(result.mean[7, 1], rel=1e-5)
    assert row["lambda"] == "" and row["mu"] == "7"
    # features 2 and 5 (μ 2, 5 Å) carry the near edge, 7 (μ 7 Å) the high-energy window
    assert 2.0 <= weighted_mean_mu(result, fake, 0) <= 5.0
    assert weighted_mean_mu(result, fake, 1) == pytest.approx(7.0)


def test_shell_peaks() -> None:
    rng = np.random.default_rng(0)
    d = np.concatenate([rng.normal(2.0, 0.03, 600), rng.normal(3.0, 0.03, 900)])
    np.testing.assert_allclose(shell_peaks(d, 6.0), [2.0, 3.0], atol=0.06)


def test_window_validation() -> None:
    with pytest.raises(ValueError):
        Window(3.0, -3.0)


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("tiny")
    xyz, xanes = root / "xyz", root / "xanes"
    xyz.mkdir()
    xanes.mkdir()
    for spectrum in sorted(SPECTRA.glob("*.txt")):
        shutil.copy(spectrum, xanes)
        shutil.copy(EXAMPLES / f"{spectrum.stem}.xyz", xyz)
    assert len(list(xyz.iterdir())) == 3
    return xyz, xanes


def test_cli_tiny(tiny_dataset, tmp_path: Path, capsys) -> None:
    import matplotlib.image

    from xanesnet.cli.main import main

    xyz, xanes = tiny_dataset
    out = tmp_path / "out"
    args = ["importance", "--xyz", str(xyz), "--xanes", str(xanes), "--repeats", "1"]
    args += ["--windows", "-3:3,50:56", "--cache-dir", str(tmp_path / "cache"), "-o", str(out)]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "near edge" in text and "high energy" in text and "published finding" in text
    with (out / "importance.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == default_model().descriptor.n_features * 2
    for name in ("g2_importance.png", "pair_distribution.png"):
        image = matplotlib.image.imread(out / name)
        assert image.shape[0] > 200 and image.shape[1] > 400
        assert image.std() > 0.01


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--windows", "3-5"], "--windows"),
        (["--windows=1:0"], "--windows"),
        (["--model", "/nonexistent/model.pt"], "file not found"),
    ],
)
def test_cli_bad_arguments(tiny_dataset, tmp_path: Path, capsys, extra, message) -> None:
    from xanesnet.cli.main import main

    xyz, xanes = tiny_dataset
    args = ["importance", "--xyz", str(xyz), "--xanes", str(xanes), "-o", str(tmp_path), *extra]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "xanesnet importance: error:" in err and message in err


def test_package_import_does_not_load_matplotlib() -> None:
    import subprocess
    import sys

    code = (
        "import sys, xanesnet, xanesnet.analysis, xanesnet.cli.importance;"
        "print('matplotlib' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
