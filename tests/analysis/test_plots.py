"""Figures: each plot function writes a readable image; ``xanesnet plot`` in both modes."""

from __future__ import annotations

import shutil

import matplotlib.image
import matplotlib.legend
import numpy as np
import pytest
from helpers import EXAMPLES, TEST_DATA

from xanesnet.analysis import (
    ENERGY_LABEL,
    best_median_worst,
    plot_best_median_worst,
    plot_delta_mu_histogram,
    plot_spectra,
)
from xanesnet.cli.main import main

E_REL = np.linspace(-15.0, 60.0, 226)


def _spectra(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0.0, 30.0, size=(n, 1))
    edge = 1.0 / (1.0 + np.exp(-(E_REL - centres / 10.0)))
    return edge + 0.3 * np.exp(-((E_REL - centres) ** 2) / 20.0)


def _png_size(path) -> tuple[int, int]:
    image = matplotlib.image.imread(path)
    return image.shape[1], image.shape[0]  # width, height in pixels


def test_plot_spectra_png(tmp_path):
    pred = _spectra(3)
    path = tmp_path / "s.png"
    fig = plot_spectra(E_REL, pred, pred * 1.02, 0.01 * pred, ["a", "b", "c"], path=path)
    assert path.stat().st_size > 0
    assert _png_size(path) == (700, 450)
    ax = fig.axes[0]
    assert ax.get_xlabel() == ENERGY_LABEL
    assert "μ" in ax.get_ylabel()
    assert ax.get_xlim() == (-15.0, 60.0)
    legend_texts = [t.get_text() for t in ax.get_legend().get_texts()]
    # the names, then what the line styles and bands mean
    assert legend_texts == ["a", "b", "c", "predicted", "mean ± spread", "reference"]
    assert len(ax.collections) == 3  # one spread band per structure


def test_plot_spectra_single_without_reference(tmp_path):
    fig = plot_spectra(E_REL, _spectra(1)[0], path=tmp_path / "one.png")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["predicted"]
    assert not ax.collections


def test_plot_spectra_svg_has_labels(tmp_path):
    path = tmp_path / "s.svg"
    plot_spectra(E_REL, _spectra(2), _spectra(2, seed=1), labels=["x", "y"], path=path)
    text = path.read_text()
    assert text.lstrip().startswith("<?xml") and "<svg" in text
    assert "E − E0 (eV)" in text  # kept as a comment beside the glyphs


def test_plot_spectra_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError, match="unsupported image format"):
        plot_spectra(E_REL, _spectra(1), path=tmp_path / "s.jpg")
    with pytest.raises(ValueError, match="shape"):
        plot_spectra(E_REL, _spectra(2), _spectra(3), path=tmp_path / "s.png")
    with pytest.raises(ValueError, match="labels"):
        plot_spectra(E_REL, _spectra(2), labels=["only one"], path=tmp_path / "s.png")


def test_delta_mu_histogram(tmp_path):
    values = np.random.default_rng(3).gamma(2.0, 2.0, size=200)
    path = tmp_path / "h.png"
    fig = plot_delta_mu_histogram(values, path=path)
    assert _png_size(path) == (600, 400)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "Δμ (%)"
    assert ax.get_ylabel() == "number of spectra"
    annotation = "\n".join(t.get_text() for t in ax.texts)
    assert f"Δμ avg = {values.mean():.2f} %" in annotation
    assert "skew = " in annotation
    svg = tmp_path / "h.svg"
    plot_delta_mu_histogram(values, path=svg)
    assert "Δμ (%)" in svg.read_text()
    with pytest.raises(ValueError, match="no finite"):
        plot_delta_mu_histogram([np.nan], path=tmp_path / "x.png")


def test_best_median_worst(tmp_path):
    pred = _spectra(5)
    ref = _spectra(5, seed=1)
    dmu = np.array([3.0, 1.0, np.nan, 9.0, 4.0])
    assert best_median_worst(dmu) == (1, 4, 3)
    path = tmp_path / "bmw.png"
    ids = [f"id{i}" for i in range(5)]
    fig = plot_best_median_worst(E_REL, pred, ref, dmu, ids, path=path, spread=0.01 * pred)
    assert _png_size(path) == (1300, 400)
    assert len(fig.axes) == 3
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[0].startswith("best: id1") and "1.00 %" in titles[0]
    assert titles[1].startswith("median: id4")
    assert titles[2].startswith("worst: id3")
    assert all(ax.get_xlabel() == ENERGY_LABEL for ax in fig.axes)
    assert "μ" in fig.axes[0].get_ylabel()


# --------------------------------------------------------------------------------------------
# CLI


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    """3 shipped example structures with their committed processed spectra."""
    root = tmp_path_factory.mktemp("plotdata")
    xyz, xanes = root / "xyz", root / "xanes"
    xyz.mkdir()
    xanes.mkdir()
    for spectrum in sorted((TEST_DATA / "spectra" / "processed").glob("*.txt")):
        shutil.copy(spectrum, xanes / spectrum.name)
        shutil.copy(EXAMPLES / f"{spectrum.stem}.xyz", xyz / f"{spectrum.stem}.xyz")
    return xyz, xanes


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XANESNET_CACHE", str(tmp_path / "cache"))


def test_cli_dataset_mode(tmp_path, tiny_dataset, capsys):
    xyz, xanes = tiny_dataset
    out = tmp_path / "figs"
    args = ["plot", "--xyz", str(xyz), "--xanes", str(xanes), "-o", str(out), "--threads", "1"]
    assert main(args) == 0
    for name in ("spectra", "delta_mu_hist", "best_median_worst"):
        assert (out / f"{name}.png").stat().st_size > 0
    assert _png_size(out / "best_median_worst.png") == (1300, 400)
    assert "3 spectra" in capsys.readouterr().out
    # chosen ids, SVG
    chosen = "ACODUR_C8H5FeNO2"
    assert main([*args, "--ids", chosen, "--format", "svg"]) == 0
    assert chosen in (out / "spectra.svg").read_text()
    # unknown id, bad format, missing folder: exit 2 with a clear message
    assert main([*args, "--ids", "NOPE"]) == 2
    err = capsys.readouterr().err
    assert "--ids: not found: NOPE" in err and chosen in err
    assert main([*args, "--format", "gif"]) == 2
    assert "--format: unsupported 'gif'" in capsys.readouterr().err
    bad = ["plot", "--xyz", str(tmp_path / "none"), "--xanes", str(xanes), "-o", str(out)]
    assert main(bad) == 2
    assert "--xyz: folder not found" in capsys.readouterr().err
    assert main(["plot", "--xyz", str(xyz), "-o", str(out)]) == 2
    assert "--xyz and --xanes" in capsys.readouterr().err


def test_cli_names_file(tmp_path, tiny_dataset, capsys):
    xyz, xanes = tiny_dataset
    names = tmp_path / "split.json"
    names.write_text('{"validation": ["ABIHUO_C19H21FeNO6", "ACNCFE_C16H8FeO4"]}')
    out = tmp_path / "figs"
    argv = ["plot", "--xyz", str(xyz), "--xanes", str(xanes), "-o", str(out), "--threads", "1"]
    assert main([*argv, "--names", f"{names}:validation"]) == 0
    assert "2 spectra" in capsys.readouterr().out
    assert main([*argv, "--names", f"{names}:test"]) == 2
    assert "has no list 'test'" in capsys.readouterr().err


@pytest.fixture(scope="module")
def batch_output(tmp_path_factory):
    from xanesnet import predict_batch

    out = tmp_path_factory.mktemp("batch") / "out"
    predict_batch(EXAMPLES, out, chunk_size=50, progress=False, n_threads=1)
    return out


def test_cli_batch_mode(tmp_path, batch_output, capsys):
    from xanesnet.store import read_predictions

    ids = ["ACODUR_C8H5FeNO2", "ABIHUO_C19H21FeNO6"]
    image = tmp_path / "b.png"
    assert main(["plot", str(batch_output), "--ids", *ids, "-o", str(image)]) == 0
    assert _png_size(image) == (700, 450)
    assert str(image) in capsys.readouterr().out
    svg = tmp_path / "b.svg"
    assert main(["plot", str(batch_output), "--ids", ids[0], "-o", str(svg)]) == 0
    text = svg.read_text()
    assert ids[0] in text and "E − E0 (eV)" in text
    if read_predictions(batch_output).spread is not None:
        # the shipped model carries an uncertainty calibration: the band is its ±1σ
        assert "±1σ calibrated interval" in text


def test_cli_batch_mode_errors(tmp_path, batch_output, capsys):
    image = str(tmp_path / "b.png")
    assert main(["plot", str(batch_output), "--ids", "NOPE", "-o", image]) == 2
    err = capsys.readouterr().err
    assert "--ids: not found: NOPE" in err and "ABAXIK_C11H21FeIN3O2(1+)" in err
    assert main(["plot", str(tmp_path / "missing"), "--ids", "X", "-o", image]) == 2
    assert "OUT: folder not found" in capsys.readouterr().err
    assert main(["plot", str(batch_output), "--ids", "X", "-o", str(tmp_path / "b.gif")]) == 2
    assert "unsupported image format '.gif'" in capsys.readouterr().err
    assert main(["plot", str(batch_output), "-o", image]) == 2
    assert "--ids" in capsys.readouterr().err
    not_output = tmp_path / "plain"
    not_output.mkdir()
    assert main(["plot", str(not_output), "--ids", "X", "-o", image]) == 2
    assert "not a xanesnet prediction output" in capsys.readouterr().err


def test_g2_importance_one_sorted_line_per_radial_grid(tmp_path):
    from xanesnet.analysis import (
        DEFAULT_WINDOWS,
        ImportanceResult,
        feature_table,
        plot_g2_importance,
    )
    from xanesnet.descriptors import WACSF

    config = WACSF(n_g2=6, n_g4=2, g2_extra_grids=((1.0, 3.0, 5),))
    table = feature_table(config)
    assert sorted({f.grid for f in table if f.kind == "G2"}) == [0, 1]
    n = len(table)
    rng = np.random.default_rng(0)
    result = ImportanceResult(
        DEFAULT_WINDOWS, np.zeros(2), rng.random((n, 2)), np.zeros((n, 2)), repeats=1, seed=0
    )
    fig = plot_g2_importance(tmp_path / "g2.png", result, table, np.array([2.0]))
    assert (tmp_path / "g2.png").stat().st_size > 0
    top, bottom = fig.axes[:2]
    data_lines = [line for line in top.get_lines() if len(line.get_xdata()) > 2]
    assert len(data_lines) == 2 * 2  # windows x grids
    for line in data_lines + [ln for ln in bottom.get_lines() if len(ln.get_xdata()) > 2]:
        assert np.all(np.diff(line.get_xdata()) > 0), "μ drawn out of order"
    # the legend sits right of the data, not on it
    legend = top.get_legend()
    renderer = fig.canvas.get_renderer()
    assert legend.get_window_extent(renderer).x0 >= top.get_window_extent(renderer).x1


def test_site_groups_merge_equal_spectra():
    from xanesnet.analysis import site_groups

    base = _spectra(3)
    sites = np.stack([base[0], base[1], base[0] * (1 + 1e-7), base[2], base[1]])
    groups = site_groups(sites)
    assert [g.tolist() for g in groups] == [[0, 2], [1, 4], [3]]


def test_plot_spectra_range_band_and_legends_beside_the_axes(tmp_path):
    pred = _spectra(2)
    low, high = pred - 0.05, pred + 0.05
    low[1] = high[1] = np.nan  # no band for the second line
    fig = plot_spectra(
        E_REL, pred, labels=["mean of 6 sites", "one site"], path=tmp_path / "r.png",
        ranges=(low, high),
    )  # fmt: skip
    ax = fig.axes[0]
    texts = [
        t.get_text() for legend in ax.findobj(matplotlib.legend.Legend) for t in legend.get_texts()
    ]
    assert "min–max over sites" in texts and "mean of 6 sites" in texts
    renderer = fig.canvas.get_renderer()
    right = ax.get_window_extent(renderer).x1
    for legend in ax.findobj(matplotlib.legend.Legend):
        box = legend.get_window_extent(renderer)
        assert box.x0 >= right and box.x1 <= fig.bbox.x1 + 1  # beside the data, inside the figure
