"""Spectra computed with different numbers of torch threads agree to float32 rounding (they are
bit-identical only at one thread count: see ``conftest.torch_on_one_thread``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import EXAMPLES, float32_atol

import xanesnet


@pytest.mark.parametrize("threads", [2, 4])
def test_more_torch_threads_agree_to_float32_rounding(threads):
    model = xanesnet.default_model("Fe", "K")
    structures = list(xanesnet.read_structures(sorted(EXAMPLES.glob("*.xyz"))[:40]))
    features, _ = model.descriptor.compute(structures, absorber="Fe")
    one = model.predict_features(features)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        many = model.predict_features(features)
    finally:
        torch.set_num_threads(before)
    widest = max(features.shape[1], 512)  # the longest sum in a layer
    for a, b in zip(one, many, strict=True):
        if a is None:
            continue
        np.testing.assert_allclose(b, a, rtol=0, atol=float32_atol(a, reduction_length=widest))
