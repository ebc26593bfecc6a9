"""The descriptor of the V K-edge model equals the one its training features were made with.

The featurised V set (tmQM, ``k_edge_v.npz``) was computed by the Rankine 2025 implementation;
its vectors for three Fe structures are the ``rankine2025_…_rawZ`` entries of the committed
reference JSON. That implementation applies the raw cosine ``½(cos(π r/r_max) + 1)`` to the
neighbour–neighbour distance r_jk without zeroing it beyond r_max (``rjk_cutoff="raw"``), so
``WACSF(r_min=0, n_g2=32, n_g4=64, zetas=(1, 2, 4, 8), weight_scale=1.0)`` with the default
zeroed r_jk cutoff matches it only where no neighbour pair is more than r_max apart.

Tolerance: every entry is a sum of non-negative float64 terms (G1, G2, and G4 with
(1 ± cos θ)^ζ ≥ 0), at most n(n−1)/2 ≈ 1000 of them here, so the relative rounding error is
bounded by about 1000 · 2⁻⁵³ ≈ 1e-13 plus a few ulps from exp/cos; 1e-12 covers both.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import EXAMPLES, TEST_DATA, read_xanesnet_xyz
from v_complexes import V_MODEL_CONFIG

from xanesnet import WACSF

KEY = "rankine2025_xanesnet_2021_yaml_rmin0_rmax6_g2_32_g4_64_zeta_1_2_4_8_rawZ"
REFERENCE = json.loads((TEST_DATA / "wacsf" / "wacsf_reference_values.json").read_text())
NAMES = sorted(REFERENCE)
FLOAT64_RTOL = 1e-12

#: The descriptor of the issue, and the one the V model ships (same, with the raw r_jk cutoff).
ISSUE_CONFIG = WACSF(r_min=0.0, n_g2=32, n_g4=64, zetas=(1, 2, 4, 8), weight_scale=1.0)


def _features(config: WACSF, name: str, backend: str) -> np.ndarray:
    atoms = read_xanesnet_xyz(EXAMPLES / f"{name}.xyz")
    features, index = config.compute(atoms, absorber=0, backend=backend)
    assert index.tolist() == [[0, 0]]
    return features[0]


def _has_pair_beyond_cutoff(name: str, r_max: float) -> bool:
    """Whether two neighbours of the absorber (atom 0) are more than r_max apart."""
    atoms = read_xanesnet_xyz(EXAMPLES / f"{name}.xyz")
    r = np.linalg.norm(atoms.positions - atoms.positions[0], axis=1)
    near = atoms.positions[(r > 0) & (r < r_max)]
    pairs = np.linalg.norm(near[:, None] - near[None], axis=-1)
    return bool((pairs > r_max).any())


@pytest.mark.parametrize("name", NAMES)
def test_v_model_descriptor_reproduces_rankine2025_vectors(backend, name):
    expected = np.asarray(REFERENCE[name][KEY])
    features = _features(V_MODEL_CONFIG, name, backend)
    assert features.shape == expected.shape == (97,)
    np.testing.assert_allclose(features, expected, rtol=FLOAT64_RTOL, atol=0)


@pytest.mark.parametrize("name", NAMES)
def test_issue_config_differs_only_by_the_rjk_cutoff(backend, name):
    """The issue's configuration (r_jk cutoff zeroed beyond r_max) equals the reference to
    float64 rounding where no neighbour pair exceeds r_max, and otherwise only in G4 (the far
    pairs' terms are damped by exp(−η r_jk²), here below 1e-6 relative)."""
    expected = np.asarray(REFERENCE[name][KEY])
    features = _features(ISSUE_CONFIG, name, backend)
    if not _has_pair_beyond_cutoff(name, ISSUE_CONFIG.r_max):
        np.testing.assert_allclose(features, expected, rtol=FLOAT64_RTOL, atol=0)
        return
    n_radial = 1 + ISSUE_CONFIG.n_g2
    np.testing.assert_allclose(features[:n_radial], expected[:n_radial], rtol=FLOAT64_RTOL)
    relative = np.abs(features[n_radial:] - expected[n_radial:]) / np.abs(expected[n_radial:])
    assert relative.max() > FLOAT64_RTOL  # the difference is real, not rounding
    assert relative.max() < 1e-5
    # far pairs only ever drop out: the zeroed cutoff gives smaller G4 values
    assert np.all(features[n_radial:] <= expected[n_radial:] * (1 + FLOAT64_RTOL))


def test_every_reference_case_is_covered():
    # one structure without pairs beyond r_max and two with them: both branches above run
    beyond = [_has_pair_beyond_cutoff(n, ISSUE_CONFIG.r_max) for n in NAMES]
    assert any(beyond) and not all(beyond)
