"""Analysis of predicted spectra: the published metrics, permutation importance, figures.

Every public name of the modules below is importable from here:

* :mod:`~xanesnet.analysis.metrics`: :func:`evaluate_spectra`, :class:`SpectrumMetrics` (the
  seed table), built on :mod:`~xanesnet.analysis.scores` (Δμ, skew, R², MSE) and
  :mod:`~xanesnet.analysis.peaks` (peaks, ΔE);
* :mod:`~xanesnet.analysis.importance`: permutation importance per energy window, with
  :mod:`~xanesnet.analysis.features` (what each descriptor column means, CSV table) and
  :mod:`~xanesnet.analysis.shells` (coordination shells);
* :mod:`~xanesnet.analysis.plotting` (spectra) and :mod:`~xanesnet.analysis.importance_plots`:
  every figure, on the canvas of :mod:`~xanesnet.analysis.figures` (matplotlib is imported only
  when one is drawn, on its own Agg canvas).
"""

from __future__ import annotations

from xanesnet.analysis.features import (
    CSV_COLUMNS,
    FeatureInfo,
    feature_table,
    g2_block,
    g2_grids,
    g2_groups,
    weighted_mean_mu,
    write_csv,
)
from xanesnet.analysis.figures import FORMATS, image_path
from xanesnet.analysis.importance import (
    DEFAULT_WINDOWS,
    ImportanceResult,
    Window,
    parse_windows,
    permutation_importance,
    window_masks,
)
from xanesnet.analysis.importance_plots import plot_g2_importance, plot_pair_distribution
from xanesnet.analysis.metrics import SpectrumMetrics, evaluate_spectra
from xanesnet.analysis.peaks import (
    PEAK_MODES,
    PeakMode,
    Peaks,
    PeakShift,
    find_peaks,
    peak_shift,
)
from xanesnet.analysis.plotting import (
    CALIBRATED_LABEL,
    ENERGY_LABEL,
    MAX_SITE_LINES,
    OUTSIDE_DOMAIN_NOTE,
    RANGE_LABEL,
    SPREAD_LABEL,
    best_median_worst,
    plot_best_median_worst,
    plot_delta_mu_histogram,
    plot_spectra,
    site_groups,
)
from xanesnet.analysis.scores import (
    DELTA_MU_NORMS,
    DeltaMuNorm,
    delta_mu,
    mse,
    r2_score,
    skewness,
)
from xanesnet.analysis.shells import (
    NEIGHBOUR_GROUPS,
    absorber_distances,
    neighbour_group,
    shell_peaks,
)

__all__ = [
    "CSV_COLUMNS",
    "DEFAULT_WINDOWS",
    "CALIBRATED_LABEL",
    "DELTA_MU_NORMS",
    "ENERGY_LABEL",
    "FORMATS",
    "MAX_SITE_LINES",
    "NEIGHBOUR_GROUPS",
    "OUTSIDE_DOMAIN_NOTE",
    "PEAK_MODES",
    "RANGE_LABEL",
    "SPREAD_LABEL",
    "DeltaMuNorm",
    "FeatureInfo",
    "ImportanceResult",
    "PeakMode",
    "PeakShift",
    "Peaks",
    "SpectrumMetrics",
    "Window",
    "absorber_distances",
    "best_median_worst",
    "delta_mu",
    "evaluate_spectra",
    "feature_table",
    "find_peaks",
    "g2_block",
    "g2_grids",
    "g2_groups",
    "image_path",
    "mse",
    "neighbour_group",
    "parse_windows",
    "peak_shift",
    "permutation_importance",
    "plot_best_median_worst",
    "plot_delta_mu_histogram",
    "plot_g2_importance",
    "plot_pair_distribution",
    "plot_spectra",
    "r2_score",
    "shell_peaks",
    "site_groups",
    "skewness",
    "weighted_mean_mu",
    "window_masks",
    "write_csv",
]
