"""FEFF data through the command line: ``convolve`` on FEFF folders, ``train``/``evaluate`` from
FEFF folders or a table of (structure, spectrum, absorber) files (committed tests/data/feff)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import TEST_DATA

from xanesnet.cli._dataset import load_split_sets
from xanesnet.cli.main import main
from xanesnet.descriptors.wacsf import WACSF
from xanesnet.spectra import (
    Broadening,
    EnergyGrid,
    broaden,
    read_feff_spectrum,
    read_processed_spectrum,
)

FEFF_DATA = TEST_DATA / "feff"
with open(FEFF_DATA / "index.csv", newline="") as _index:
    INDEX = list(csv.DictReader(_index))
#: the model grid of the tiny runs: absolute eV inside every fixture's FEFF range
GRID = {"start": 8990.0, "stop": 9040.0, "n_points": 51}
DESCRIPTOR = WACSF(n_g2=4, n_g4=4)


def test_convolve_feff_folders_names_outputs_from_their_folders(tmp_path, capsys):
    out = tmp_path / "out"
    args = ["convolve", str(FEFF_DATA), "-o", str(out), "--grid-start", "-10"]
    assert main([*args, "--grid-stop", "60", "--grid-points", "141", "--quiet"]) == 0
    names = sorted(p.name for p in out.glob("*.txt"))
    assert names == sorted(f"{row['material']}_{row['site']}_Cu.txt" for row in INDEX)
    settings = json.loads((out / "convolve.json").read_text())
    assert settings["format"] == "feff" and settings["written"] == 5
    # FEFF's mu already has its Fermi cut: the broadening makes none (same as an e_F below
    # the auxiliary grid), on a grid relative to each file's E0 = omega - e.
    assert settings["broadening"]["fermi_cut"] is False
    row = INDEX[0]
    e0, energies, mu = read_feff_spectrum(FEFF_DATA / row["xmu_path"])
    grid = EnergyGrid(e0, -10.0, 60.0, 141)
    expected = broaden(energies, mu, e0, Broadening.fixed(e_fermi=-100.0), grid)
    written_e, written_mu = read_processed_spectrum(out / f"{row['key']}_Cu.txt")
    np.testing.assert_allclose(written_e, grid.energies, atol=0.005)
    np.testing.assert_allclose(written_mu, expected, rtol=5e-8, atol=1e-12)


def test_convolve_feff_other_layouts_and_bad_files(tmp_path, capsys):
    raw = tmp_path / "runs"
    source = FEFF_DATA / INDEX[0]["xmu_path"]
    for folder in ("a", "b/c"):
        (raw / folder).mkdir(parents=True)
        shutil.copy(source, raw / folder / "xmu.dat")
    (raw / "broken").mkdir()
    (raw / "broken" / "xmu.dat").write_text("# not a FEFF spectrum\n1 2\n")
    code = main(["convolve", str(raw), "-o", str(tmp_path / "out"), "--format", "feff"])
    assert code == 1
    assert sorted(p.name for p in (tmp_path / "out").glob("*.txt")) == ["a.txt", "b_c.txt"]
    assert "broken/xmu.dat" in capsys.readouterr().err
    failures = json.loads((tmp_path / "out" / "convolve.json").read_text())["failures"]
    assert list(failures) == ["broken/xmu.dat"]


def test_convolve_fdmnes_folder_is_still_the_default(tmp_path):
    raw = tmp_path / "raw"
    shutil.copytree(TEST_DATA / "spectra" / "raw", raw)
    assert main(["convolve", str(raw), "-o", str(tmp_path / "out"), "--quiet"]) == 0
    settings = json.loads((tmp_path / "out" / "convolve.json").read_text())
    assert settings["format"] == "fdmnes" and settings["broadening"]["fermi_cut"] is True
    assert sorted(p.name for p in (tmp_path / "out").glob("*.txt")) == sorted(
        p.name for p in raw.glob("*.txt")
    )


def _pair_table(folder: Path) -> Path:
    """The fixture sites as a (structure, spectrum, absorber) table: POSCAR cell, site index."""
    table = folder / "pairs.csv"
    with open(table, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["structure", "spectrum", "absorber", "name", "group"])
        for row in INDEX:
            xmu = FEFF_DATA / row["xmu_path"]
            poscar = xmu.parent.parent.parent / "POSCAR"
            writer.writerow([poscar, xmu, int(row["site"]), row["key"], row["material"]])
    return table


def test_feff_folders_and_a_pair_table_give_the_same_training_set(tmp_path, monkeypatch):
    monkeypatch.setenv("XANESNET_CACHE", str(tmp_path / "cache"))
    split = tmp_path / "split.json"
    materials = {"train": ["mp-1196135", "mp-1212085"], "validation": ["mp-1211660"]}
    split.write_text(json.dumps({"materials": materials}))
    common = {"split": str(split), "grid": GRID}
    sets = []
    for source in ({"feff_dir": str(FEFF_DATA)}, {"pairs": str(_pair_table(tmp_path))}):
        data = {**source, **common}
        sets.append(load_split_sets(data, tmp_path, DESCRIPTOR))
    (whole_a, train_a, val_a), (whole_b, train_b, val_b) = sets
    assert train_a.names == train_b.names and len(train_a.names) == 4
    assert val_a.names == val_b.names == ("mp-1211660_002",)
    np.testing.assert_array_equal(whole_a.features, whole_b.features)
    np.testing.assert_array_equal(whole_a.spectra, whole_b.spectra)
    np.testing.assert_allclose(whole_a.energies, np.linspace(8990.0, 9040.0, 51))


def _write_config(folder: Path, data_lines: str) -> Path:
    config = folder / "train.toml"
    config.write_text(
        f"""
[data]
{data_lines}
element = "Cu"
grid = {{ start = {GRID["start"]}, stop = {GRID["stop"]}, n_points = {GRID["n_points"]} }}

[descriptor]
n_g2 = 4
n_g4 = 4

[training]
epochs = 3
batch_size = 2
n_members = 1

[training.network]
hidden = [8]

[output]
model = "model.pt"
"""
    )
    return config


def test_train_from_feff_folders_then_evaluate(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("XANESNET_CACHE", str(tmp_path / "cache"))
    split = tmp_path / "split.json"
    materials = {"train": ["mp-1196135", "mp-1212085"], "validation": ["mp-1211660"]}
    split.write_text(json.dumps({"materials": materials}))
    config = _write_config(tmp_path, f'feff_dir = "{FEFF_DATA}"\nsplit = "split.json"')
    assert main(["train", str(config), "--quiet", "--threads", "1"]) == 0
    assert "model written to" in capsys.readouterr().out
    from xanesnet.model import load_model

    model = load_model(tmp_path / "model.pt")
    assert model.element == "Cu" and model.edge == "K"
    assert model.e0 == 8979.0  # tabulated Cu K edge when [data] gives no e0
    np.testing.assert_allclose(model.energies, np.linspace(8990.0, 9040.0, 51))
    assert model.metadata["training_set_size"] == 4
    assert model.metadata["validation_size"] == 1
    report = tmp_path / "metrics.json"
    args = ["evaluate", "--model", str(tmp_path / "model.pt"), "--feff", str(FEFF_DATA)]
    assert main([*args, "--json", str(report), "--quiet"]) == 0
    assert "Cu K (5 spectra)" in capsys.readouterr().out
    assert json.loads(report.read_text())["n_spectra"] == 5


def test_train_from_a_pair_table_then_evaluate(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("XANESNET_CACHE", str(tmp_path / "cache"))
    table = _pair_table(tmp_path)
    config = _write_config(tmp_path, 'pairs = "pairs.csv"')
    assert main(["train", str(config), "--quiet", "--threads", "1"]) == 0
    capsys.readouterr()
    args = ["evaluate", "--model", str(tmp_path / "model.pt"), "--pairs", str(table)]
    names = tmp_path / "names.txt"
    names.write_text("mp-1196135_012\nmp-1211660_002\n")
    assert main([*args, "--names", str(names), "--quiet"]) == 0
    assert "Cu K (2 spectra)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("data_lines", "message"),
    [
        (f'feff_dir = "{FEFF_DATA}"\npairs = "pairs.csv"', "needs one source"),
        (f'feff_dir = "{FEFF_DATA}"\ngrid = [9000.0]', "at least 2 energies"),
    ],
)
def test_train_refuses_unclear_data_tables(tmp_path, capsys, data_lines, message):
    config = tmp_path / "train.toml"
    config.write_text(f'[data]\n{data_lines}\nelement = "Cu"\n[output]\nmodel = "m.pt"\n')
    assert main(["train", str(config), "--quiet"]) == 2
    assert message in capsys.readouterr().err


def test_evaluate_wants_exactly_one_data_set(tmp_path, capsys):
    args = ["evaluate", "--feff", str(FEFF_DATA), "--pairs", str(tmp_path / "t.csv")]
    assert main(args) == 2
    assert "give one data set" in capsys.readouterr().err
    assert main(["evaluate"]) == 2
    assert "give one data set" in capsys.readouterr().err
