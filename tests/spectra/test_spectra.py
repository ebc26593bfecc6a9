"""Spectra: grids, readers/writer, resampling, broadening models, normalisation, convolve CLI."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import shared_data_dir

from xanesnet.cli import convolve as convolve_cli
from xanesnet.cli.main import COMMANDS
from xanesnet.spectra import (
    K_EDGE_ENERGIES,
    Broadening,
    EnergyGrid,
    arctan_width,
    broaden,
    broaden_arctan,
    broaden_fixed_lorentzian,
    broaden_seah_dench,
    broadening_matrix,
    edge_step_normalise,
    lorentzian_kernel,
    read_fdmnes_spectrum,
    read_processed_spectrum,
    resample,
    seah_dench_width,
    snap_to_grid,
    write_processed_spectrum,
)

FIXTURES = Path(__file__).resolve().parents[1] / "data" / "spectra"
RAW = FIXTURES / "raw"
PROCESSED = FIXTURES / "processed"
#: Print precision of the processed files (8 significant digits), as the spec states it.
PRINT_RTOL = 5e-8


def shared_data() -> Path:
    """The shared reference data (helpers.shared_data_dir); skip when absent."""
    return shared_data_dir()


def fwhm(x: np.ndarray, y: np.ndarray) -> float:
    """Full width at half maximum of a single peak sampled on ``x`` (linear interpolation)."""
    k = int(np.argmax(y))
    half = y[k] / 2
    left = np.nonzero(y[:k] < half)[0][-1]
    right = k + np.nonzero(y[k:] < half)[0][0]
    xl = np.interp(half, [y[left], y[left + 1]], [x[left], x[left + 1]])
    xr = np.interp(half, [y[right], y[right - 1]], [x[right], x[right - 1]])
    return float(xr - xl)


# ---------------------------------------------------------------------------------------------
# grids
# ---------------------------------------------------------------------------------------------


def test_standard_grid_and_round_trip():
    grid = EnergyGrid.standard(K_EDGE_ENERGIES["Fe"])
    assert grid.n_points == 226 and grid.e0 == 7112.0
    assert grid.step == pytest.approx(1 / 3)
    assert grid.energies[0] == 7097.0 and grid.energies[-1] == 7172.0
    np.testing.assert_allclose(np.diff(grid.relative), 1 / 3, rtol=1e-12)
    again = EnergyGrid.from_dict(json.loads(json.dumps(grid.to_dict())))
    assert again == grid
    np.testing.assert_array_equal(again.energies, grid.energies)
    assert set(K_EDGE_ENERGIES) == {"Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn"}


@pytest.mark.parametrize("kwargs", [{"n_points": 1}, {"start": 5.0, "stop": 5.0}])
def test_bad_grid(kwargs):
    with pytest.raises(ValueError):
        EnergyGrid(7112.0, **kwargs)
    with pytest.raises(ValueError, match="unknown keys"):
        EnergyGrid.from_dict({"e0": 1.0, "width": 2})


def test_snap_to_grid():
    grid = EnergyGrid.standard(7112.0)
    printed = np.round(grid.energies, 2)
    assert not np.array_equal(printed, grid.energies)
    np.testing.assert_array_equal(snap_to_grid(printed, grid), grid.energies)
    with pytest.raises(ValueError, match="from the grid"):
        snap_to_grid(printed + 0.01, grid)
    with pytest.raises(ValueError, match="do not match"):
        snap_to_grid(printed[:-1], grid)


# ---------------------------------------------------------------------------------------------
# files
# ---------------------------------------------------------------------------------------------


def test_read_fixtures():
    name = "ACNCFE_C16H8FeO4.txt"
    e0, energies, mu = read_fdmnes_spectrum(RAW / name)
    assert e0 == 7112.0 and energies.shape == mu.shape == (376,)
    np.testing.assert_allclose(np.diff(energies), 0.2, atol=1e-9)
    energies, mu = read_processed_spectrum(PROCESSED / name)
    assert energies.shape == mu.shape == (226,)
    assert energies[1] == 7097.33  # as printed
    np.testing.assert_array_equal(
        snap_to_grid(energies, EnergyGrid.standard(e0)), EnergyGrid.standard(e0).energies
    )


def test_write_matches_published_layout(tmp_path):
    for path in sorted(PROCESSED.glob("*.txt")):
        energies, mu = read_processed_spectrum(path)
        write_processed_spectrum(tmp_path / path.name, energies, mu)
        assert (tmp_path / path.name).read_bytes() == path.read_bytes()


def test_write_read_round_trip(tmp_path):
    grid = EnergyGrid.standard(7709.0)
    mu = np.linspace(-1e-3, 2.5, grid.n_points) ** 3
    write_processed_spectrum(tmp_path / "s.txt", grid.energies, mu)
    energies, back = read_processed_spectrum(tmp_path / "s.txt")
    np.testing.assert_array_equal(snap_to_grid(energies, grid), grid.energies)
    np.testing.assert_allclose(back, mu, rtol=PRINT_RTOL, atol=1e-300)


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("", "empty file"),
        ("   \n\n", "empty file"),
        ("  FDMNES\n  energy <xanes>\n 1.0 2.0\n 1.5 abc\n", r"line 4: non-numeric"),
        ("  FDMNES\n  energy <xanes>\n 1.0 2.0\n", "too few rows"),
        ("  FDMNES\n  energy <xanes>\n 1.0 2.0\n 1.0 3.0\n", r"line 4: energies not strictly"),
        ("  FDMNES\n  energy <xanes>\n 1.0 2.0\n 3.0\n", r"line 4: expected 'energy mu'"),
        ("  FDMNES\n  energy <xanes>\n 1.0 2.0\n 2.0 nan\n", r"line 4: non-finite"),
    ],
)
def test_processed_reader_errors(tmp_path, text, pattern):
    path = tmp_path / "bad(1+).txt"
    path.write_text(text)
    with pytest.raises(ValueError, match=pattern) as info:
        read_processed_spectrum(path)
    assert "bad(1+).txt" in str(info.value)


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("", "empty file"),
        ("Energy <xanes>\n 1.0 2.0\n", r"line 1: expected the edge energy"),
        ("7112.0 26 1\n", "too few rows"),
        ("7112.0 26 1\n Energy <xanes>\n 7000 1e-3\n 7000.2 x\n", r"line 4: non-numeric"),
        ("7112.0 26 1\n Energy <xanes>\n 7000 1e-3\n 6999 2e-3\n", r"line 4: energies not"),
    ],
)
def test_fdmnes_reader_errors(tmp_path, text, pattern):
    path = tmp_path / "raw.txt"
    path.write_text(text)
    with pytest.raises(ValueError, match=pattern) as info:
        read_fdmnes_spectrum(path)
    assert "raw.txt" in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.txt"):
        read_fdmnes_spectrum(tmp_path / "nothere.txt")
    with pytest.raises(FileNotFoundError, match="nothere.txt"):
        read_processed_spectrum(tmp_path / "nothere.txt")


# ---------------------------------------------------------------------------------------------
# resampling
# ---------------------------------------------------------------------------------------------


def test_resample_linear_and_vectorised():
    x = np.linspace(0.0, 10.0, 51)
    mu = np.stack([3.0 * x - 1.0, x**2, np.sin(x)])
    new = np.array([-1.0, 0.0, 0.05, 3.3, 9.99, 10.0, 12.0])
    out = resample(x, mu, new)
    assert out.shape == (3, new.size)
    np.testing.assert_allclose(out[0, 1:-1], 3.0 * new[1:-1] - 1.0, rtol=1e-13)
    assert out[0, 0] == mu[0, 0] and out[0, -1] == mu[0, -1]  # constant beyond the ends
    for k in range(3):
        np.testing.assert_allclose(out[k], np.interp(new, x, mu[k]), rtol=1e-13)
        np.testing.assert_allclose(resample(x, mu[k], new), out[k], rtol=1e-15)
    np.testing.assert_array_equal(resample(x, mu, x), mu)
    with pytest.raises(ValueError, match="strictly increasing"):
        resample(x[::-1], mu, new)


# ---------------------------------------------------------------------------------------------
# broadening
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("gamma", [0.5, 1.25, 3.0])
def test_lorentzian_of_delta(gamma):
    step = 0.02
    e = np.arange(-20.0, 20.0 + step / 2, step)
    mu = np.zeros_like(e)
    mu[e.size // 2] = 1.0  # delta at e = 0
    out = lorentzian_kernel(e, gamma) @ mu
    assert fwhm(e, out) == pytest.approx(gamma, rel=1e-3)
    assert out.max() == pytest.approx(2.0 / gamma, rel=1e-12)  # unnormalised: peak 2/Γ
    # area π (no 1/π), up to the tails beyond ±20 eV
    expected_area = 2.0 * math.atan(20.0 / (gamma / 2))
    assert out.sum() * step == pytest.approx(expected_area, rel=1e-3)


@pytest.mark.parametrize("gamma", [1.25, 2.5])
def test_fixed_broadening_of_delta_through_pipeline(gamma):
    options = {"aux_start": -20.0, "aux_stop": 65.0, "aux_step": 0.05, "float32_input": False}
    broadening = Broadening.fixed(gamma, e_fermi=-100.0, **options)
    energies = 7112.0 + np.arange(-15.0, 60.0 + 1e-9, 0.05)
    mu = np.zeros_like(energies)
    k = int(np.argmin(np.abs(energies - 7132.0)))
    mu[k] = 1.0
    out = broaden(energies, mu, 7112.0, broadening)
    assert energies[np.argmax(out)] == energies[k]
    assert fwhm(energies, out) == pytest.approx(gamma, rel=2e-3)
    # unnormalised: the sum over the aux grid of a unit source is ~π / step
    assert out.sum() == pytest.approx(math.pi / 0.05, rel=0.05)
    normalised = Broadening.fixed(gamma, -100.0, normalised=True, **options)
    out_n = broaden(energies, mu, 7112.0, normalised)
    np.testing.assert_allclose(out_n, out * 0.05 / math.pi, rtol=1e-12)


def test_fixed_broadening_of_constant():
    gamma, c = 1.25, 0.7
    broadening = Broadening.fixed(gamma, e_fermi=-1000.0, float32_input=False, normalised=True)
    grid = EnergyGrid.standard(7112.0)
    energies = 7112.0 + np.arange(-15.0, 60.0 + 1e-9, 0.2)
    out = broaden(energies, np.full(energies.size, c), 7112.0, broadening, grid)
    # a unit-area Lorentzian summed over the finite aux grid -50…150 eV
    e = grid.relative
    covered = (np.arctan((150.0 - e) / (gamma / 2)) - np.arctan((-50.0 - e) / (gamma / 2))) / np.pi
    np.testing.assert_allclose(out, c * covered, rtol=2e-3)
    assert np.all(out < c)


def test_fermi_level_cut():
    broadening = Broadening.fixed(1.0, e_fermi=-1.0, float32_input=False, normalised=True)
    energies = 7112.0 + np.arange(-15.0, 60.0 + 1e-9, 0.2)
    out = broaden(energies, np.ones(energies.size), 7112.0, broadening)
    rel = energies - 7112.0
    assert np.all(out[rel < -8.0] < 0.05)
    assert np.all(np.abs(out[(rel > 6.0) & (rel < 40.0)] - 1.0) < 0.05)
    # at e_F (kept: μ is zeroed strictly below it) half the area plus half the point's own weight
    at_fermi = out[np.argmin(np.abs(rel + 1.0))]
    assert at_fermi == pytest.approx(0.5 + 0.2 / (math.pi * 1.0), abs=0.005)


def test_no_fermi_cut_keeps_the_pre_edge():
    # For spectra that carry their own cut (FEFF): fermi_cut=False is the same operation as an
    # e_F below the auxiliary grid; the arctangent width still starts to grow at e_F.
    energies = 7112.0 + np.arange(-15.0, 60.0 + 1e-9, 0.2)
    mu = np.ones(energies.size)
    kept = Broadening.fixed(1.0, e_fermi=-1.0, fermi_cut=False)
    below_grid = Broadening.fixed(1.0, e_fermi=-100.0)
    np.testing.assert_array_equal(
        broaden(energies, mu, 7112.0, kept), broaden(energies, mu, 7112.0, below_grid)
    )
    arctan = Broadening.arctan(fermi_cut=False)
    assert broadening_matrix(energies, 7112.0, arctan)[0].sum() > 1.0
    assert not np.allclose(
        arctan.width(energies - 7112.0), Broadening.arctan(e_fermi=-100.0).width(energies - 7112.0)
    )
    assert "no Fermi cut" in arctan.label() and "no Fermi cut" not in below_grid.label()


def test_widths():
    e = np.linspace(-20.0, 500.0, 2000)
    arctan = arctan_width(e)
    assert np.all(np.diff(arctan) >= 0)
    assert np.all(arctan[e <= -5.0] == 2.0)
    assert arctan_width(np.array([1e6]))[0] == pytest.approx(17.0, rel=1e-4)  # Γ_hole + Γ_max
    assert arctan_width(np.array([25.0]))[0] == pytest.approx(2.0 + 7.5)  # x = 1: half Γ_max
    sd = seah_dench_width(e)
    assert np.all(np.diff(sd) >= 0) and np.all(sd[e <= -5.0] == 2.0)
    assert seah_dench_width(np.array([-5.0 + 1e-4]))[0] == pytest.approx(2.0 + 1e-4, rel=1e-6)
    assert seah_dench_width(np.array([1e9]))[0] == pytest.approx(17.0, rel=1e-6)
    assert seah_dench_width(np.array([10.0]), a=2.0)[0] == pytest.approx(2.0 + 2 * 15 * 15 / 45)


@pytest.mark.parametrize("model", ["arctan", "seah-dench"])
def test_energy_dependent_width_taken_at_source(model):
    broadening = Broadening(model, {}, aux_start=-15.0, aux_stop=120.0, aux_step=0.1)
    energies = 7112.0 + np.arange(-15.0, 120.0 + 1e-9, 0.1)
    for source in (10.0, 40.0):
        mu = np.zeros_like(energies)
        k = int(np.argmin(np.abs(energies - 7112.0 - source)))
        mu[k] = 1.0
        out = broaden(energies, mu, 7112.0, broadening)
        width = broadening.width(np.array([energies[k] - 7112.0]))[0]
        assert fwhm(energies, out) == pytest.approx(width, rel=2e-3)


def test_model_wrappers_and_vectorisation():
    e0, energies, mu = read_fdmnes_spectrum(RAW / "ABIHUO_C19H21FeNO6.txt")
    batch = np.stack([mu, 2 * mu, mu[::-1]])
    grid = EnergyGrid.standard(e0)
    for function in (broaden_fixed_lorentzian, broaden_arctan, broaden_seah_dench):
        out = function(energies, batch, e0, grid=grid)
        assert out.shape == (3, 226) and np.all(np.isfinite(out))
        np.testing.assert_allclose(function(energies, mu, e0, grid=grid), out[0], rtol=1e-12)
        np.testing.assert_allclose(out[1], 2 * out[0], rtol=1e-6)  # float32 rounding of 2μ
    arctan = broaden_arctan(energies, mu, e0, grid=grid, gamma_max=10.0)
    assert not np.allclose(arctan, broaden_arctan(energies, mu, e0, grid=grid))
    assert broadening_matrix(energies, e0, grid=grid).shape == (226, 376)


def test_broadening_config():
    configs = (Broadening.fixed(), Broadening.arctan(e_fermi=-3.0), Broadening.seah_dench())
    for config in (*configs, Broadening.seah_dench(fermi_cut=False)):
        again = Broadening.from_dict(json.loads(json.dumps(config.to_dict())))
        assert again == config
    config = Broadening.arctan(gamma_max=12.0, aux_step=0.1)
    assert config.params == {
        "gamma_hole": 2.0,
        "gamma_max": 12.0,
        "e_cent": 30.0,
        "e_larg": 30.0,
        "e_fermi": -5.0,
    }
    assert config.aux_step == 0.1
    assert "Γ_max=12" in config.label() and "arctan" in config.label()
    assert Broadening().params == {"gamma": 1.25, "e_fermi": -1.0}
    with pytest.raises(ValueError, match="has no parameter"):
        Broadening("fixed", {"gamma_max": 3.0})
    with pytest.raises(ValueError, match="unknown broadening model"):
        Broadening("gaussian")
    with pytest.raises(ValueError, match="must be > 0"):
        Broadening.fixed(gamma=0.0)


def test_fixed_recipe_reproduces_fixtures():
    for path in sorted(RAW.glob("*.txt")):
        e0, energies, mu = read_fdmnes_spectrum(path)
        out = broaden_fixed_lorentzian(energies, mu, e0, grid=EnergyGrid.standard(e0))
        _, expected = read_processed_spectrum(PROCESSED / path.name)
        np.testing.assert_allclose(out, expected, rtol=PRINT_RTOL, atol=0)


# ---------------------------------------------------------------------------------------------
# normalisation
# ---------------------------------------------------------------------------------------------


def test_edge_step_normalise():
    e0 = 8979.0
    energies = e0 + np.linspace(-30.0, 450.0, 961)
    rel = energies - e0
    post = 1.0 + 1e-3 * rel - 1.5e-6 * rel**2  # quadratic through q(E0) = 1
    mu = np.stack([2.0 * post, 0.5 * post])
    out = edge_step_normalise(energies, mu, e0)
    np.testing.assert_allclose(out, np.stack([post, post]), rtol=1e-10)
    np.testing.assert_allclose(edge_step_normalise(energies, mu[0], e0), post, rtol=1e-10)
    fe = 7112.0 + np.arange(-15.0, 60.0 + 1e-9, 0.2)
    with pytest.raises(ValueError, match=r"needs spectra covering E0\+100…E0\+400"):
        edge_step_normalise(fe, np.ones(fe.size), 7112.0)


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------


def test_convolve_registered():
    assert COMMANDS["convolve"][0] == "xanesnet.cli.convolve"


def test_cli_reproduces_fixtures(tmp_path, capsys):
    out = tmp_path / "out"
    assert convolve_cli.main([str(RAW), "-o", str(out), "--quiet"]) == 0
    names = sorted(p.name for p in RAW.glob("*.txt"))
    assert sorted(p.name for p in out.glob("*.txt")) == names
    for name in names:
        energies, mu = read_processed_spectrum(out / name)
        ref_energies, ref_mu = read_processed_spectrum(PROCESSED / name)
        np.testing.assert_array_equal(energies, ref_energies)
        np.testing.assert_allclose(mu, ref_mu, rtol=PRINT_RTOL, atol=0)
        assert (out / name).read_bytes() == (PROCESSED / name).read_bytes()
    settings = json.loads((out / "convolve.json").read_text())
    assert Broadening.from_dict(settings["broadening"]) == Broadening.fixed()
    assert settings["written"] == len(names) and settings["failures"] == {}


def test_cli_records_failures_and_carries_on(tmp_path, capsys):
    raw = tmp_path / "raw"
    shutil.copytree(RAW, raw)
    (raw / "broken(1-).txt").write_text("7112.000 26\n Energy <xanes>\n 7097.0 abc\n 7097.2 1\n")
    (raw / "empty.txt").write_text("")
    out = tmp_path / "out"
    assert convolve_cli.main([str(raw), "-o", str(out), "--model", "arctan", "--gamma", "1.5"]) == 1
    err = capsys.readouterr().err
    assert "2 file(s) failed" in err and "broken(1-).txt" in err and "line 3" in err
    assert len(list(out.glob("*.txt"))) == 3
    settings = json.loads((out / "convolve.json").read_text())
    assert settings["broadening"]["params"]["gamma_hole"] == 1.5
    assert set(settings["failures"]) == {"broken(1-).txt", "empty.txt"}


def test_cli_grid_and_normalise_options(tmp_path, capsys):
    out = tmp_path / "out"
    argv = [str(RAW), "-o", str(out), "--model", "seah-dench", "--grid-start", "-10"]
    argv += ["--grid-stop", "50", "--grid-points", "121", "--a", "2"]
    assert convolve_cli.main(argv) == 0
    energies, mu = read_processed_spectrum(out / "ACNCFE_C16H8FeO4.txt")
    assert energies.size == 121 and energies[0] == 7102.0 and energies[-1] == 7162.0
    # the Fe raw spectra stop at E0 + 60 eV: normalisation must fail for every file
    assert convolve_cli.main([str(RAW), "-o", str(tmp_path / "n"), "--normalise"]) == 1
    assert "needs spectra covering" in capsys.readouterr().err


@pytest.mark.parametrize(
    "extra", [["--model", "fixed", "--gamma-max", "3"], ["--grid-points", "1"], ["--gamma", "-1"]]
)
def test_cli_bad_arguments(tmp_path, extra):
    with pytest.raises(SystemExit) as info:
        convolve_cli.main([str(RAW), "-o", str(tmp_path / "o"), *extra])
    assert info.value.code == 2


# ---------------------------------------------------------------------------------------------
# the whole published set (../shared/data)
# ---------------------------------------------------------------------------------------------


@pytest.mark.shared_data
def test_reproduce_all_processed_spectra():
    fe = shared_data() / "fe_k_edge"
    raw_dir = fe / "xanesnet_2022_default" / "xanes_train"
    processed_dir = fe / "xanesnet_2022_preconv" / "xanes_train"
    names = sorted(p.name for p in raw_dir.glob("*.txt"))
    assert len(names) == 4079
    raw = [read_fdmnes_spectrum(raw_dir / name) for name in names]
    e0, energies = raw[0][0], raw[0][1]
    assert all(r[0] == e0 and np.array_equal(r[1], energies) for r in raw)
    grid = EnergyGrid.standard(e0)
    out = broaden_fixed_lorentzian(energies, np.stack([r[2] for r in raw]), e0, grid=grid)
    expected = np.empty_like(out)
    for k, name in enumerate(names):
        printed, expected[k] = read_processed_spectrum(processed_dir / name)
        snap_to_grid(printed, grid)
    rel = np.abs(out - expected) / np.abs(expected)
    print(f"max relative error over {len(names)} spectra: {rel.max():.3e}")
    assert rel.max() <= PRINT_RTOL
