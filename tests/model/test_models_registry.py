"""The registry of shipped models and ``xanesnet models``."""

from __future__ import annotations

import json
import zipfile

import pytest

from xanesnet.cli import models as models_cli
from xanesnet.cli.main import main as xanesnet_main
from xanesnet.model.pretrained import (
    REGISTRY,
    ShippedModel,
    available_models,
    default_model,
    default_model_path,
    find_model,
    read_metadata,
    resolve_model_path,
    shipped_models,
)


def test_every_registry_row_is_a_shipped_file_that_agrees_with_its_metadata():
    assert len({(r.element, r.edge, r.variant) for r in REGISTRY}) == len(REGISTRY)
    assert len({r.file for r in REGISTRY}) == len(REGISTRY)
    for row in REGISTRY:
        assert row.path.is_file(), row.file
        meta = read_metadata(row.path)
        assert (meta["element"], meta["edge"]) == (row.element, row.edge)
        summary = row.summary()
        first, last, n = summary["grid_ev"]
        assert n == meta["n_energies"] == len(meta["energies"])
        assert first < meta["e0"] < last
        assert summary["size_bytes"] == row.path.stat().st_size
        # every shipped model records its validation figures
        assert summary["validation"]["delta_mu_avg"] > 0
        assert summary["validation"]["n_spectra"] > 0
        # written by save_model: the metadata (and kernel centres) deflated, so that the files
        # stay a few MB
        with zipfile.ZipFile(row.path) as archive:
            metadata = [i for i in archive.infolist() if i.filename.endswith("/xanesnet.json")]
            assert [i.compress_type for i in metadata] == [zipfile.ZIP_DEFLATED]


@pytest.mark.parametrize("row", REGISTRY, ids=lambda r: f"{r.element}-{r.edge}-{r.variant}")
def test_every_shipped_model_carries_sigma_and_domain(row, recwarn):
    """Every shipped prediction has a calibrated σ, predicted Δμ and domain score: each file's
    trust entries parse and fit its network (a misfit would be dropped with a warning)."""
    import numpy as np

    model = default_model(row.element, row.edge, row.variant)
    trust = model.trust_model
    assert trust.calibration is not None and trust.domain is not None, row.file
    assert not [w for w in recwarn if "metadata entry ignored" in str(w.message)]
    rng = np.random.default_rng(0)
    n_features = model.metadata["n_features"]
    features = rng.normal(size=(3, n_features)).astype(np.float32) * 0.01
    spectra, spread = model.predict_features(features, n_threads=1)
    assessed = trust.assess(features, spectra, spread)
    assert np.isfinite(assessed.predicted_delta_mu).all()
    assert np.isfinite(assessed.domain_score).all()


def test_default_models_by_element_and_edge():
    assert ("Fe", "K") in available_models() and ("V", "K") in available_models()
    assert default_model_path("V", "K").name == "V_K_edge.pt"
    assert find_model("V", "K").training_data == "molecules"
    model = default_model("V", "K")
    assert (model.element, model.edge) == ("V", "K")
    # an element symbol as --model picks that element's K-edge model
    assert resolve_model_path("V") == default_model_path("V", "K")
    with pytest.raises(ValueError, match="no shipped fast model for the V K-edge"):
        default_model_path("V", "K", "fast")
    with pytest.raises(ValueError, match="shipped: Fe K default"):
        find_model("Zn", "K")
    assert shipped_models("Zn") == []


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("variant", "tiny", "variant"),
        ("training_data", "gas", "training_data"),
        ("code", "X", "code"),
    ],
)
def test_registry_rows_are_checked(field, value, message):
    fields = {
        "element": "V",
        "edge": "K",
        "variant": "default",
        "file": "V_K_edge.pt",
        "training_data": "molecules",
        "code": "FDMNES",
        "recipe": "",
    }
    with pytest.raises(ValueError, match=message):
        ShippedModel(**{**fields, field: value})


def test_read_metadata_refuses_other_files(tmp_path):
    path = tmp_path / "not_a_model.pt"
    path.write_bytes(b"plain text")
    with pytest.raises(ValueError, match="not a xanesnet model file"):
        read_metadata(path)


def test_models_command_lists_the_table(capsys):
    assert xanesnet_main(["models"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].startswith("| element | edge | variant | training data | grid (eV) |")
    assert len(table) == 2 + len(shipped_models())
    v_row = next(line for line in table if line.startswith("| V | K | default |"))
    assert "molecules, FDMNES" in v_row and "V_K_edge.pt" in v_row


def test_models_command_json_and_filters(capsys):
    assert models_cli.main(["--json", "--element", "V"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["element"], r["edge"], r["variant"]) for r in rows] == [("V", "K", "default")]
    assert rows[0]["grid_ev"][2] == 226
    assert models_cli.main(["--element", "Zn"]) == 1
    assert "no shipped model for Zn" in capsys.readouterr().err
