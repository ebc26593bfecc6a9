"""Straightforward NumPy wACSF: one structure at a time, full distance matrix.

This is the way upstream XANESNET computes the descriptor. It is slow and kept only as an
independent check for the tests and as the baseline of ``benchmarks/``. Molecules only (no
periodic images).
"""

from __future__ import annotations

import numpy as np

from xanesnet.descriptors.wacsf import WACSF


def wacsf_numpy(
    config: WACSF, positions: np.ndarray, numbers: np.ndarray, absorber: int = 0
) -> np.ndarray:
    """wACSF of one absorber in a molecule.

    Args:
        config: descriptor configuration.
        positions: (n_atoms, 3) float, Å.
        numbers: (n_atoms,) atomic numbers.
        absorber: index of the absorbing atom.

    Returns:
        (n_features,) float64: G1, G2, G4 and element channels (no charge/spin extras).
    """
    positions = np.asarray(positions, dtype=np.float64)
    numbers = np.asarray(numbers)
    r_max = config.r_max
    dist = np.linalg.norm(positions[:, None, :] - positions[None, :, :], axis=-1)
    r = dist[absorber]
    mask = (r > 0.0) & (r < r_max)
    mask[absorber] = False
    idx = np.nonzero(mask)[0]
    n_groups = len(config.g2_element_groups)
    out = np.zeros(config.n_descriptor_features + n_groups * config.n_g2_total)
    if idx.size == 0:
        return out
    rij = r[idx]
    w = config.weight_scale * numbers[idx].astype(np.float64)
    fc = 0.5 * (np.cos(np.pi * rij / r_max) + 1.0)
    out[0] = fc.sum()
    g2_eta, g2_mu = config.g2_eta, config.g2_mu
    out[1 : 1 + config.n_g2_total] = (
        w[None, :] * np.exp(-g2_eta[:, None] * (rij[None, :] - g2_mu[:, None]) ** 2) * fc[None, :]
    ).sum(axis=1)

    vec = positions[idx] - positions[absorber]
    rjk = dist[np.ix_(idx, idx)]
    cos_t = (vec @ vec.T) / (rij[:, None] * rij[None, :])
    fc_jk = 0.5 * (np.cos(np.pi * rjk / r_max) + 1.0)
    if config.rjk_cutoff == "zero":
        fc_jk = np.where(rjk < r_max, fc_jk, 0.0)
    upper = np.triu(np.ones((idx.size, idx.size), dtype=bool), k=1)
    col = 1 + config.n_g2_total
    for eta, mu in zip(config.g4_eta, config.g4_mu):
        e_ij = np.exp(-eta * (rij - mu) ** 2) * fc
        e_jk = np.exp(-eta * (rjk - mu) ** 2) * fc_jk
        radial = (w * e_ij)[:, None] * (w * e_ij)[None, :] * e_jk
        for lam in config.lambdas:
            for zeta in config.zetas:
                ang = (1.0 + lam * cos_t) ** zeta
                out[col] = 2.0 ** (1.0 - zeta) * (radial * ang)[upper].sum()
                col += 1
    gauss = np.exp(-g2_eta[:, None] * (rij[None, :] - g2_mu[:, None]) ** 2) * fc[None, :]
    for weights in config.group_weights:
        out[col : col + config.n_g2_total] = (weights[numbers[idx]][None, :] * gauss).sum(axis=1)
        col += config.n_g2_total
    return out
