"""FEFF readers (xanesnet.io.feff) and FEFF spectra on the OmniXAS target grid."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import numpy as np
import pytest
from ase.io import read as ase_read
from helpers import SHARED_DATA, TEST_DATA

from xanesnet.io.feff import FEFF_ENERGY_PRINT_PRECISION, read_feff_inp, read_xmu
from xanesnet.spectra import (
    BOHR_RADIUS_ANGSTROM,
    OMNIXAS_CU_GRID,
    Broadening,
    broaden,
    omnixas_target,
    read_feff_spectrum,
    resample_feff,
)

FEFF_DATA = TEST_DATA / "feff"
INDEX = list(csv.DictReader(open(FEFF_DATA / "index.csv", newline="")))
SITE_DIRS = [FEFF_DATA / Path(row["xmu_path"]).parent for row in INDEX]


@pytest.mark.parametrize("row", INDEX, ids=lambda row: row["key"])
def test_read_xmu_columns_and_edge_energy(row):
    spectrum = read_xmu(FEFF_DATA / row["xmu_path"])
    assert spectrum.n_points == int(row["npts"]) == 173
    for name in ("omega", "e", "k", "mu", "mu0", "chi"):
        assert getattr(spectrum, name).shape == (173,)
        assert getattr(spectrum, name).dtype == np.float64
    # The edge energy is omega - e: the index's E0 column, and e within print precision.
    assert spectrum.e0 == pytest.approx(float(row["E0_eV"]), abs=FEFF_ENERGY_PRINT_PRECISION)
    np.testing.assert_allclose(spectrum.relative_energies, spectrum.e, atol=0.0011)
    assert spectrum.e[0] == pytest.approx(float(row["e_rel_min"]), abs=1e-9)
    assert spectrum.e[-1] == pytest.approx(float(row["e_rel_max"]), abs=1e-9)
    # k = 0 at the Fermi level e = Mu, k = sqrt(2 m (e - Mu)) / hbar above it, negative below
    # it (hbar^2 / 2m = 3.80998 eV A^2); chi = mu - mu0 (print precision).
    mu_level = spectrum.fermi_level
    assert -12.0 < mu_level < -5.0
    assert spectrum.threshold_energy == pytest.approx(spectrum.e0 + mu_level)
    assert spectrum.e[spectrum.k == 0.0] == pytest.approx([mu_level], abs=0.0011)
    assert np.all((spectrum.k < 0) == (spectrum.e < mu_level))
    above = spectrum.k > 0
    expected_k = np.sqrt((spectrum.e[above] - mu_level) / 3.80998)
    np.testing.assert_allclose(spectrum.k[above], expected_k, atol=0.006)
    np.testing.assert_allclose(spectrum.mu - spectrum.mu0, spectrum.chi, atol=2e-5)
    # mu is normalised 50 eV above the Fermi level.
    assert np.interp(mu_level + 50.0, spectrum.e, spectrum.mu0) == pytest.approx(1.0, abs=0.01)
    assert 2e-4 < spectrum.xsedge < 3e-4
    assert spectrum.absorber_z == 29
    assert spectrum.feff_version == "9.9.1"
    assert spectrum.core_hole_width == pytest.approx(1.729)
    assert spectrum.fms_radius == pytest.approx(9.0)
    assert spectrum.header[-1].split()[1:7] == ["omega", "e", "k", "mu", "mu0", "chi"]


def test_read_xmu_header_values():
    spectrum = read_xmu(FEFF_DATA / INDEX[0]["xmu_path"])
    text = (FEFF_DATA / INDEX[0]["xmu_path"]).read_text()
    line = next(x for x in text.splitlines() if "xsedge+ 50" in x)
    assert spectrum.xsedge == float(line.split()[-1])
    assert spectrum.omega[0] == float(text.splitlines()[len(spectrum.header)].split()[0])
    assert set(spectrum.potentials.values()) | {29} >= {29}
    assert spectrum.s02 == pytest.approx(0.95)


def _xmu_with(tmp_path: Path, edit) -> Path:
    source = FEFF_DATA / INDEX[0]["xmu_path"]
    lines = source.read_text().splitlines()
    target = tmp_path / "xmu.dat"
    target.write_text("\n".join(edit(lines)) + "\n")
    return target


def test_read_xmu_tolerates_blank_lines_and_extra_columns(tmp_path):
    reference = read_xmu(FEFF_DATA / INDEX[0]["xmu_path"])
    path = _xmu_with(tmp_path, lambda lines: [*lines[:30], "", *(x + " 7.0" for x in lines[30:])])
    spectrum = read_xmu(path)
    np.testing.assert_array_equal(spectrum.mu, reference.mu)
    assert spectrum.e0 == reference.e0


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda lines: [*lines[:40], "  8990.0  1.0  2.0", *lines[41:]], "line 41: expected 6"),
        (
            lambda lines: [*lines[:40], lines[40].replace("E", "X", 1), *lines[41:]],
            "line 41: non-numeric",
        ),
        (
            lambda lines: [*lines[:40], lines[41], lines[40], *lines[42:]],
            "line 42: omega not strictly",
        ),
        (lambda lines: [x for x in lines if x.startswith("#")], "0 data rows"),
        (
            lambda lines: [
                *lines[:40],
                lines[40].replace(lines[40].split()[1], "5.000", 1),
                *lines[41:],
            ],
            "line 41: omega - e",
        ),
    ],
)
def test_read_xmu_errors_name_file_and_line(tmp_path, edit, message):
    path = _xmu_with(tmp_path, edit)
    with pytest.raises(ValueError, match=message) as info:
        read_xmu(path)
    assert str(path) in str(info.value)


def test_read_xmu_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="xmu.dat"):
        read_xmu(tmp_path / "xmu.dat")


@pytest.mark.parametrize("row", INDEX, ids=lambda row: row["key"])
def test_read_feff_inp_cluster_matches_poscar(row):
    site_dir = FEFF_DATA / Path(row["xmu_path"]).parent
    cluster = read_feff_inp(site_dir / "feff.inp")
    assert len(cluster) == int(row["cluster_atoms"])
    assert cluster.numbers[0] == 29
    assert not cluster.pbc.any()
    assert cluster.info["absorber"] == 0
    assert cluster.arrays["feff_ipot"][0] == 0
    np.testing.assert_allclose(cluster.positions[0], 0.0, atol=1e-12)
    # Every cluster atom sits on an image of a POSCAR atom of the same element, placed
    # relative to the absorber site given in the index.
    crystal = ase_read(FEFF_DATA / "Cu" / row["material"] / "POSCAR", format="vasp")
    site = int(row["site"])
    assert crystal.numbers[site] == 29
    relative = cluster.positions[:, None, :] + crystal.positions[site] - crystal.positions[None]
    fractional = relative @ np.linalg.inv(crystal.cell.array)
    off_lattice = np.abs(fractional - np.round(fractional)).max(axis=2)
    nearest = off_lattice.argmin(axis=1)
    assert off_lattice.min(axis=1).max() < 1e-4
    np.testing.assert_array_equal(crystal.numbers[nearest], cluster.numbers)


def test_read_feff_inp_moves_absorber_first(tmp_path):
    source = SITE_DIRS[0] / "feff.inp"
    lines = source.read_text().splitlines()
    start = next(i for i, x in enumerate(lines) if x.strip() == "ATOMS") + 3
    assert lines[start].split()[3] == "0"
    lines[start], lines[start + 1] = lines[start + 1], lines[start]
    (tmp_path / "feff.inp").write_text("\n".join(lines) + "\n")
    reference = read_feff_inp(source)
    swapped = read_feff_inp(tmp_path / "feff.inp")
    np.testing.assert_array_equal(swapped.positions, reference.positions)
    np.testing.assert_array_equal(swapped.numbers, reference.numbers)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda s: s.replace("\nPOTENTIALS", "\nXPOTENTIALS"), "no POTENTIALS block"),
        (
            lambda s: s.replace("     0   29  Cu", "     0   29  Cu\n      9   199  Xx"),
            "atomic number 199",
        ),
        (
            lambda s: s.replace("       0  Cu         0               0", "       7  Cu         0"),
            "potential index 7",
        ),
        (
            lambda s: s.replace("       0  Cu         0               0", "       2  Cu         0"),
            "exactly one absorber",
        ),
        (lambda s: s.replace("ATOMS\n", "ATOMS\n  1.0  2.0  zz  1\n"), "expected 'x y z ipot"),
    ],
)
def test_read_feff_inp_errors(tmp_path, edit, message):
    text = (SITE_DIRS[0] / "feff.inp").read_text()
    edited = edit(text)
    assert edited != text
    path = tmp_path / "feff.inp"
    path.write_text(edited)
    with pytest.raises(ValueError, match=message) as info:
        read_feff_inp(path)
    assert str(path) in str(info.value)


@pytest.mark.shared_data
def test_fixtures_are_byte_copies_of_the_data():
    """The committed fixtures equal their source files (tests/make_feff_fixtures.py)."""
    source = SHARED_DATA / "cu_k_edge_feff_omnixas"
    if not source.is_dir():
        pytest.skip("../shared not present")
    for row in INDEX:
        for name in ("xmu.dat", "feff.inp"):
            relative = Path(row["xmu_path"]).with_name(name)
            assert (FEFF_DATA / relative).read_bytes() == (source / relative).read_bytes()


# --------------------------------------------------------------------------------------------
# FEFF spectra on model grids (xanesnet.spectra)
# --------------------------------------------------------------------------------------------


def _spectra():
    return [read_xmu(FEFF_DATA / row["xmu_path"]) for row in INDEX]


def test_resample_feff_absolute_and_relative_grids():
    spectra = _spectra()
    # On its own rows the resampling returns the file's mu exactly.
    first = spectra[0]
    np.testing.assert_array_equal(resample_feff(first, first.omega), first.mu)
    relative_grid = np.linspace(-10.0, 60.0, 281)
    stacked = resample_feff(spectra, relative_grid, relative=True)
    assert stacked.shape == (len(spectra), 281)
    for row, spectrum in zip(stacked, spectra):
        # Relative to E0 = absolute at E0 + e: the same numbers.
        absolute = resample_feff(spectrum, spectrum.e0 + relative_grid)
        np.testing.assert_allclose(row, absolute, rtol=0, atol=1e-12)
        np.testing.assert_allclose(
            row, np.interp(relative_grid, spectrum.e, spectrum.mu), atol=1e-3
        )
    # Linear between rows: the midpoint of two rows is their mean.
    middle = 0.5 * (first.omega[50] + first.omega[51])
    expected = 0.5 * (first.mu[50] + first.mu[51])
    assert resample_feff(first, np.array([middle]))[0] == pytest.approx(expected, rel=1e-12)


def test_resample_feff_outside_the_data():
    spectrum = _spectra()[0]
    grid = np.array([-20.0, 0.0, 200.0])
    held = resample_feff(spectrum, grid, relative=True)
    assert held[0] == spectrum.mu[0] and held[-1] == spectrum.mu[-1]
    with pytest.raises(ValueError, match="leaves the spectrum") as info:
        resample_feff(spectrum, grid, relative=True, outside="error")
    assert spectrum.path in str(info.value)
    with pytest.raises(ValueError, match="outside"):
        resample_feff(spectrum, grid, outside="zero")


def test_omnixas_grid_and_target_definition():
    assert OMNIXAS_CU_GRID.shape == (141,)
    assert OMNIXAS_CU_GRID[0] == pytest.approx(8983.173)
    assert OMNIXAS_CU_GRID[-1] == pytest.approx(9018.173)
    np.testing.assert_allclose(np.diff(OMNIXAS_CU_GRID), 0.25, atol=1e-9)
    for spectrum in _spectra():
        target = omnixas_target(spectrum)
        scale = 1000.0 * spectrum.xsedge / BOHR_RADIUS_ANGSTROM**2
        assert target.shape == (141,)
        inside = (OMNIXAS_CU_GRID >= spectrum.omega[0]) & (OMNIXAS_CU_GRID <= spectrum.omega[-1])
        np.testing.assert_allclose(
            target[inside], scale * np.interp(OMNIXAS_CU_GRID[inside], spectrum.omega, spectrum.mu)
        )
        # Below the first row (the window starts ~1.3 eV before these spectra) the first
        # value is held.
        np.testing.assert_allclose(target[~inside], scale * spectrum.mu[0], rtol=1e-14)
        # Extrapolated: on the line through the first two rows.
        extrapolated = omnixas_target(spectrum, extrapolate=True)
        np.testing.assert_array_equal(extrapolated[inside], target[inside])
        slope = (spectrum.mu[1] - spectrum.mu[0]) / (spectrum.omega[1] - spectrum.omega[0])
        line = spectrum.mu[0] + slope * (OMNIXAS_CU_GRID[~inside] - spectrum.omega[0])
        np.testing.assert_allclose(extrapolated[~inside], scale * line, rtol=1e-12)
    with pytest.raises(ValueError, match="xsedge"):
        omnixas_target(dataclasses.replace(spectrum, xsedge=None))


def test_omnixas_target_drops_rows_with_nonpositive_mu():
    spectrum = _spectra()[0]
    mu = spectrum.mu.copy()
    where = int(np.searchsorted(spectrum.omega, 8995.0))
    mu[where] = -1.0
    target = omnixas_target(dataclasses.replace(spectrum, mu=mu))
    keep = np.arange(mu.size) != where
    scale = 1000.0 * spectrum.xsedge / BOHR_RADIUS_ANGSTROM**2
    expected = scale * np.interp(OMNIXAS_CU_GRID, spectrum.omega[keep], spectrum.mu[keep])
    np.testing.assert_allclose(target, expected)


def test_read_feff_spectrum_feeds_the_broadening():
    e0, energies, mu = read_feff_spectrum(FEFF_DATA / INDEX[0]["xmu_path"])
    spectrum = read_xmu(FEFF_DATA / INDEX[0]["xmu_path"])
    assert e0 == spectrum.e0
    np.testing.assert_array_equal(energies, spectrum.omega)
    # The non-uniform FEFF grid goes through the broadening like any other. FEFF's mu already
    # has its Fermi cut: e_fermi below the auxiliary grid keeps the pre-edge, a cut at Mu
    # removes it; far above the edge both agree (the cut only reaches there through the
    # Lorentzian tails).
    grid = e0 + np.linspace(-10.0, 60.0, 141)
    no_cut = broaden(energies, mu, e0, Broadening.fixed(1.0, -100.0, normalised=True), grid)
    cut = broaden(
        energies, mu, e0, Broadening.fixed(1.0, spectrum.fermi_level, normalised=True), grid
    )
    assert no_cut.shape == (141,) and np.all(np.isfinite(no_cut))
    below = grid - e0 < spectrum.fermi_level - 2.0
    above = grid - e0 > spectrum.fermi_level + 20.0
    assert below.any() and np.all(cut[below] < 0.5 * no_cut[below])
    np.testing.assert_allclose(cut[above], no_cut[above], rtol=1e-3)
    # A 1 eV Lorentzian changes the smooth region above the edge by a few percent at most.
    np.testing.assert_allclose(no_cut[above], np.interp(grid[above], energies, mu), rtol=0.05)


@pytest.mark.shared_data
@pytest.mark.slow
def test_omnixas_target_reproduces_the_mean_spectrum_baseline():
    """MSE of OmniXAS's val targets against the mean train target: 0.01422 (issue 19)."""
    source = SHARED_DATA / "cu_k_edge_feff_omnixas"
    if not source.is_dir():
        pytest.skip("../shared not present")
    with open(source / "index.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    targets: dict[str, list[np.ndarray]] = {"train": [], "val": []}
    for row in rows:
        if row["omnixas_split"] in targets:
            targets[row["omnixas_split"]].append(omnixas_target(read_xmu(source / row["xmu_path"])))
    train, val = np.array(targets["train"]), np.array(targets["val"])
    assert train.shape == (3340, 141) and val.shape == (416, 141)
    # Quoted to 4 figures; 0.0142146 here (0.0142152 with linear extrapolation below the
    # first FEFF row).
    assert np.mean((val - train.mean(axis=0)) ** 2) == pytest.approx(0.01422, abs=1e-5)
