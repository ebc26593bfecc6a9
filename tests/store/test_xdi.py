"""XDI 1.0 files of predicted spectra: header fields, columns, the export command."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import EXAMPLES

import xanesnet
from xanesnet.cli.main import main as xanesnet_main
from xanesnet.store.units import EDGE_STEP_NORMALISED, FDMNES_FE_UNNORMALISED
from xanesnet.store.xdi import read_xdi, site_file_name, write_xdi_files, xdi_text

ENERGIES = 7097.0 + np.arange(5) / 3.0
MU = np.array([0.0056, 0.0057, 0.5, 1.25, 0.43], dtype=np.float32)


def _lines(text: str) -> list[str]:
    return text.splitlines()


def test_header_sections_and_columns_follow_xdi_1_0():
    text = xdi_text(
        ENERGIES,
        MU,
        element="Fe",
        edge="K",
        structure_id="ACNCFE_C16H8FeO4",
        site=0,
        edge_energy=7112.0,
        units=FDMNES_FE_UNNORMALISED,
        model_name="Fe_K_edge.pt",
        model_sha256="abc123",
        version="9.9",
    )
    lines = _lines(text)
    assert lines[0] == "# XDI/1.0 xanesnet/9.9"
    assert "# Column.1: energy eV" in lines and "# Column.2: mutrans" in lines
    assert "# Element.symbol: Fe" in lines and "# Element.edge: K" in lines
    assert "# Scan.edge_energy: 7112 eV" in lines
    # free comments between '# ///' and '#----', then the column labels, then the data
    assert lines.index("# ///") < lines.index("#----") == len(lines) - len(MU) - 2
    assert lines[lines.index("#----") + 1] == "# energy mutrans"
    parsed = read_xdi_text(text)
    assert parsed.fields["XANESNET.structure_id"] == "ACNCFE_C16H8FeO4"
    assert parsed.fields["XANESNET.site"] == "0"
    assert parsed.fields["XANESNET.model_sha256"] == "abc123"
    assert parsed.fields["XANESNET.mu_units"] == "arbitrary"
    assert any("Fe_K_edge.pt" in c for c in parsed.comments)
    assert parsed.labels == ["energy", "mutrans"]
    np.testing.assert_allclose(parsed.data[:, 0], ENERGIES, rtol=0, atol=1e-5)
    # float32 values written with 9 significant digits read back exactly
    np.testing.assert_array_equal(parsed.data[:, 1].astype(np.float32), MU)


def read_xdi_text(text: str):
    """Parse XDI text through a temporary file (read_xdi reads files)."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "x.xdi"
        path.write_text(text)
        return read_xdi(path)


def test_sigma_column_and_normalised_label():
    sigma = np.full(len(MU), 0.01)
    text = xdi_text(
        ENERGIES, MU, element="V", edge="K", structure_id="s", site=3, sigma=sigma,
        units=EDGE_STEP_NORMALISED,
    )  # fmt: skip
    parsed = read_xdi_text(text)
    assert parsed.fields["Column.2"] == "normtrans" and parsed.fields["Column.3"] == "sigma"
    assert parsed.labels == ["energy", "normtrans", "sigma"]
    np.testing.assert_allclose(parsed.data[:, 2], sigma)
    assert "Scan.edge_energy" not in parsed.fields  # not known: not written


def test_bad_values_are_refused():
    with pytest.raises(ValueError, match="finite"):
        xdi_text(ENERGIES, np.r_[MU[:-1], np.nan], element="Fe", edge="K", structure_id="s", site=0)
    with pytest.raises(ValueError, match=r"s site 0: energies \(5,\), mu \(4,\)"):
        xdi_text(ENERGIES, MU[:4], element="Fe", edge="K", structure_id="s", site=0)


def test_file_names_are_safe_and_unique(tmp_path):
    assert site_file_name("run/CONTCAR", 3) == "run_CONTCAR_site3.xdi"
    assert site_file_name("hem:2", 0) == "hem_2_site0.xdi"
    paths = write_xdi_files(
        tmp_path, ENERGIES, np.stack([MU, MU]), ["a:1", "a_1"], [0, 0], element="Fe", edge="K"
    )
    assert [p.name for p in paths] == ["a_1_site0.xdi", "a_1_site0-2.xdi"]
    assert read_xdi(paths[1]).fields["XANESNET.structure_id"] == "a_1"


@pytest.mark.parametrize("fmt", ["hdf5", "csv"])
def test_export_xdi_of_a_batch_output(tmp_path, fmt):
    inputs = [str(p) for p in sorted(EXAMPLES.glob("*.xyz"))[:3]]
    out = tmp_path / "out"
    xanesnet.predict_batch(inputs, out, progress=False, n_threads=1, format=fmt)
    stored = xanesnet.read_predictions(out)
    assert xanesnet_main(["export-xdi", str(out), "-o", str(tmp_path / "xdi")]) == 0
    files = sorted((tmp_path / "xdi").glob("*.xdi"))
    assert len(files) == len(stored.ids) == 3
    # another model than the job's is refused, naming the file
    assert xanesnet_main(["export-xdi", str(out), "-o", str(tmp_path / "x2"), "--model", "V"]) == 2
    for structure_id, site, spectrum in zip(stored.ids, stored.sites, stored.spectra, strict=True):
        parsed = read_xdi(tmp_path / "xdi" / site_file_name(structure_id, site))
        # the shipped model is found by the SHA-256 the job records
        assert parsed.fields["XANESNET.model"] == "Fe_K_edge.pt"
        assert parsed.fields["Scan.edge_energy"] == "7112 eV"
        assert "FDMNES" in parsed.fields["XANESNET.normalisation"]
        np.testing.assert_array_equal(parsed.data[:, 1].astype(np.float32), spectrum)
        np.testing.assert_allclose(parsed.data[:, 0], stored.energies, rtol=0, atol=1e-5)
        # the shipped Fe model carries an uncertainty calibration: a positive sigma column
        assert parsed.labels == ["energy", "mutrans", "sigma"]
        assert np.all(parsed.data[:, 2] > 0)


def test_export_xdi_errors_name_the_problem(tmp_path, capsys):
    assert xanesnet_main(["export-xdi", str(tmp_path / "missing"), "-o", str(tmp_path)]) == 2
    assert "xanesnet export-xdi: error:" in capsys.readouterr().err


def test_model_metadata_spectrum_units_reach_the_xdi_files(tmp_path):
    from xanesnet.model import update_model_metadata
    from xanesnet.model.pretrained import default_model_path

    units = {"mu": "normalised", "edge_step_normalised": True, "description": "test set"}
    model = tmp_path / "model.pt"
    update_model_metadata(default_model_path("Fe", "K"), model, {"spectrum_units": units})
    assert xanesnet.load_model(model).metadata["spectrum_units"] == units
    out = tmp_path / "out"
    inputs = [str(sorted(EXAMPLES.glob("*.xyz"))[0])]
    xanesnet.predict_batch(inputs, out, model=model, progress=False, n_threads=1)
    args = ["export-xdi", str(out), "-o", str(tmp_path / "xdi"), "--model", str(model)]
    assert xanesnet_main(args) == 0
    (path,) = (tmp_path / "xdi").glob("*.xdi")
    parsed = read_xdi(path)
    # the shipped model's calibrated uncertainty came along with the copy
    assert parsed.labels == ["energy", "normtrans", "sigma"]
    assert parsed.fields["XANESNET.normalisation"] == "test set"
    assert parsed.fields["XANESNET.model"] == "model.pt"
    bad = tmp_path / "bad.pt"
    with pytest.raises(ValueError, match="spectrum_units: expected a JSON object"):
        update_model_metadata(default_model_path("Fe", "K"), bad, {"spectrum_units": "eV"})
        xanesnet.load_model(bad)


@pytest.mark.parametrize("fmt", ["hdf5", "zarr"])
def test_outputs_carry_units(tmp_path, fmt):
    inputs = [str(sorted(EXAMPLES.glob("*.xyz"))[0])]
    xanesnet.predict_batch(inputs, tmp_path, progress=False, n_threads=1, format=fmt)
    if fmt == "hdf5":
        import h5py

        with h5py.File(tmp_path / "predictions.h5") as f:
            attrs = {name: dict(f[name].attrs) for name in ("energies", "spectra", "spread")}
    else:
        import zarr

        root = zarr.open_group(tmp_path / "predictions.zarr", mode="r")
        attrs = {name: dict(root[name].attrs) for name in ("energies", "spectra", "spread")}
    assert attrs["energies"]["units"] == "eV"
    for name in ("spectra", "spread"):
        # the shipped Fe model, recognised by the job's SHA-256
        assert attrs[name]["units"] == "arbitrary"
        assert not attrs[name]["edge_step_normalised"]
        assert "FDMNES" in attrs[name]["normalisation"]
