"""``xanesnet plot``: figures of predicted spectra.

Two modes:

* ``xanesnet plot --model M --xyz DIR --xanes DIR [--names FILE[:KEY]] [--ids ...] -o OUTDIR``
  evaluates a model (default: the shipped Fe K-edge model) on (structure, spectrum) pairs and
  writes ``spectra.EXT`` (the given ids, or the first 4), ``delta_mu_hist.EXT`` and
  ``best_median_worst.EXT`` into ``OUTDIR``.
* ``xanesnet plot OUT --ids ID ... -o FILE.png`` plots spectra straight from a
  ``xanesnet-batch`` output folder, with the ensemble spread band when the output has one.

The band is the calibrated ±1σ interval where the model file carries an uncertainty
calibration (labelled so; about 68 % of held-out points fall inside, see README "Which
predictions to trust"), else the raw ensemble spread (labelled "mean ± spread"). Sites outside
the model's training domain are drawn dotted with a cross-hatched band and named so.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

from xanesnet.cli._dataset import add_dataset_arguments

N_DEFAULT_SPECTRA = 4


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xanesnet plot",
        description="Plot predicted spectra: evaluate a model on a data set (--xyz/--xanes) "
        "or read a xanesnet-batch output folder (OUT).",
    )
    parser.add_argument(
        "output_dir",
        nargs="?",
        type=Path,
        default=None,
        metavar="OUT",
        help="a xanesnet-batch output folder to plot from (mode 2)",
    )
    add_dataset_arguments(parser, required=False)
    parser.add_argument(
        "--ids",
        nargs="+",
        default=None,
        metavar="ID",
        help="structures to plot (mode 1 default: the first 4; mode 2: required)",
    )
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        required=True,
        help="mode 1: output folder; mode 2: output image (.png or .svg)",
    )
    parser.add_argument(
        "--format",
        default=None,
        help="mode 1: image format, png (default) or svg",
    )
    parser.add_argument(
        "--e0",
        type=float,
        default=None,
        help="mode 2: edge energy in eV (default: the model's E0, when the output's model is "
        "a shipped one)",
    )
    parser.add_argument("--threads", type=int, default=0, help="descriptor threads (0 = all)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.output_dir is not None:
            if args.xyz is not None or args.xanes is not None:
                raise ValueError("give either an output folder OUT or --xyz/--xanes, not both")
            return run_batch_output(args)
        if args.xyz is None or args.xanes is None:
            raise ValueError("give a xanesnet-batch output folder OUT, or both --xyz and --xanes")
        return run_dataset(args)
    except (FileNotFoundError, ValueError, KeyError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"xanesnet plot: error: {message}", file=sys.stderr)
        return 2


def _missing_ids_message(missing: list[str], available: Any) -> str:
    shown = list(dict.fromkeys(str(a) for a in available))
    preview = ", ".join(shown[:5]) + (f", ... ({len(shown)} in all)" if len(shown) > 5 else "")
    return f"--ids: not found: {', '.join(missing)} (available: {preview or 'none'})"


def _require_folder(path: Path, option: str) -> None:
    if not path.is_dir():
        raise FileNotFoundError(f"{option}: folder not found: {path}")


def run_dataset(args: argparse.Namespace) -> int:
    """Mode 1: evaluate a model on a data set and write the three figures."""
    from xanesnet.analysis import (
        FORMATS,
        delta_mu,
        plot_best_median_worst,
        plot_delta_mu_histogram,
        plot_spectra,
    )
    from xanesnet.cli._dataset import load_model_and_dataset

    fmt = (args.format or "png").lower()
    if fmt not in FORMATS:
        raise ValueError(f"--format: unsupported {args.format!r} (choose {' or '.join(FORMATS)})")
    if args.output.exists() and not args.output.is_dir():
        raise ValueError(f"-o: {args.output} exists and is not a folder")
    model, data = load_model_and_dataset(
        args.model, args.xyz, args.xanes, args.names, n_threads=args.threads
    )
    if len(data.names) == 0:
        raise ValueError(f"no structure in {args.xyz} has a spectrum in {args.xanes}")
    index = {name: i for i, name in enumerate(data.names)}
    if args.ids:
        missing = [i for i in args.ids if i not in index]
        if missing:
            raise ValueError(_missing_ids_message(missing, data.names))
        chosen = [index[i] for i in args.ids]
    else:
        chosen = list(range(min(N_DEFAULT_SPECTRA, len(data.names))))
    mean, spread = model.predict_features(data.features)
    mean = np.asarray(mean, dtype=np.float64)
    spread = np.asarray(spread, dtype=np.float64) if model.has_spread else None
    trust = model.trust(data.features, mean, spread)
    band, band_label = _band(model.trust_model.calibration, spread, len(mean))
    dmu = np.atleast_1d(delta_mu(mean, data.spectra))
    e_rel = np.asarray(model.energies, dtype=np.float64) - model.e0
    label = f"{model.element} {model.edge}-edge, {len(data.names)} spectra"
    args.output.mkdir(parents=True, exist_ok=True)
    written = []
    path = args.output / f"spectra.{fmt}"
    plot_spectra(
        e_rel,
        mean[chosen],
        data.spectra[chosen],
        None if band is None else band[chosen],
        [data.names[i] for i in chosen],
        path=path,
        title=f"{model.element} {model.edge}-edge: predicted vs reference",
        band_label=band_label,
        outside_domain=trust.outside_domain[chosen],
    )
    written.append(path)
    path = args.output / f"delta_mu_hist.{fmt}"
    plot_delta_mu_histogram(dmu, path=path, title=label)
    written.append(path)
    path = args.output / f"best_median_worst.{fmt}"
    plot_best_median_worst(
        e_rel, mean, data.spectra, dmu, list(data.names), path=path, spread=spread, title=label
    )
    written.append(path)
    print(
        f"{len(data.names)} spectra, Δμ avg {float(np.nanmean(dmu)):.2f} % "
        f"(model {model.path.name})"
    )
    for p in written:
        print(f"wrote {p}")
    return 0


def _band(calibration: Any, spread: np.ndarray | None, n: int) -> tuple[Any, str]:
    """(band (n, n_e) or None, its legend label): the calibrated σ where the model has a
    calibration, else the raw spread."""
    from xanesnet.analysis import CALIBRATED_LABEL, SPREAD_LABEL

    if calibration is None:
        return spread, SPREAD_LABEL
    return calibration.sigma(spread, n), CALIBRATED_LABEL


def _job_model(metadata: dict[str, Any]) -> Any:
    """The shipped model that made a batch output (None: another model, or unknown)."""
    job = metadata.get("job", {})
    model = job.get("model", {})
    element, edge = model.get("element"), model.get("edge")
    if not element or not edge:
        return None
    from xanesnet.checksums import file_sha256
    from xanesnet.model.pretrained import default_model_path

    try:
        path = default_model_path(element, edge)
    except ValueError:
        return None
    if job.get("model_sha256") not in (None, file_sha256(path)):
        return None
    from xanesnet.model.files import load_model

    return load_model(path)


def _edge_energy(metadata: dict[str, Any], model: Any) -> float | None:
    """E0 of the model that made a batch output: recorded, or that of the shipped ``model``."""
    job = metadata.get("job", {})
    for source in (metadata, job, job.get("model", {})):
        if isinstance(source, dict) and isinstance(source.get("e0"), (int, float)):
            return float(source["e0"])
    return None if model is None else float(model.e0)


def _site_lines(
    predictions: Any, rows: np.ndarray, name: str
) -> list[tuple[str, np.ndarray, np.ndarray | None, np.ndarray, bool]]:
    """What to draw for the sites ``rows`` of one structure: (label, μ, spread or None,
    (2, n_e) min–max band, NaN for none, whether any of its sites is outside the training
    domain) per line.

    One site: its spectrum. Several: one line per distinct spectrum (symmetry-equivalent sites
    predict the same one; the label names the first atom and how many share it), or, beyond
    MAX_SITE_LINES distinct ones, their mean with the min–max band over all sites.
    """
    from xanesnet.analysis import MAX_SITE_LINES, site_groups

    spectra = np.asarray(predictions.spectra[rows], dtype=np.float64)
    spread = None if predictions.spread is None else predictions.spread[rows]
    flags = predictions.outside_domain
    outside = np.zeros(len(rows), dtype=bool) if flags is None else np.asarray(flags[rows])
    no_band = np.full((2, spectra.shape[1]), np.nan)
    if len(rows) == 1:
        return [(name, spectra[0], None if spread is None else spread[0], no_band, outside[0])]
    groups = site_groups(spectra)
    if len(groups) > MAX_SITE_LINES:
        band = np.stack([spectra.min(axis=0), spectra.max(axis=0)])
        label = f"{name} (mean of {len(rows)} sites, {len(groups)} distinct)"
        mean_spread = None if spread is None else np.asarray(spread, dtype=np.float64).mean(0)
        return [(label, spectra.mean(axis=0), mean_spread, band, bool(outside.any()))]
    out = []
    for group in groups:
        first = int(group[0])
        atom = int(predictions.sites[rows[first]])
        label = f"{name} (atom {atom}" + (
            f", {len(group)} equivalent sites)" if len(group) > 1 else ")"
        )
        sd = None if spread is None else spread[first]
        out.append((label, spectra[first], sd, no_band, bool(outside[group].any())))
    return out


def run_batch_output(args: argparse.Namespace) -> int:
    """Mode 2: plot spectra of a xanesnet-batch output folder."""
    from xanesnet.analysis import image_path, plot_spectra
    from xanesnet.store import read_predictions

    if args.format is not None:
        raise ValueError("--format is for --xyz/--xanes mode; here the suffix of -o decides")
    if args.names is not None or args.model is not None:
        raise ValueError("--names and --model are for --xyz/--xanes mode")
    _require_folder(args.output_dir, "OUT")
    if not args.ids:
        raise ValueError("--ids: give the structure ids to plot from a batch output")
    out = image_path(args.output)
    predictions = read_predictions(args.output_dir)
    ids = np.asarray(predictions.ids).astype(str)
    missing = [i for i in args.ids if i not in set(ids)]
    if missing:
        raise ValueError(_missing_ids_message(missing, ids))
    job_model = _job_model(predictions.metadata)
    e0 = args.e0 if args.e0 is not None else _edge_energy(predictions.metadata, job_model)
    energies = np.asarray(predictions.energies, dtype=np.float64)
    lines = [
        line
        for wanted in args.ids
        for line in _site_lines(predictions, np.flatnonzero(ids == wanted), wanted)
    ]
    labels = [line[0] for line in lines]
    spectra = np.stack([line[1] for line in lines])
    ranges = np.stack([line[3] for line in lines], axis=1)
    spread = None
    if predictions.spread is not None:
        spread = np.stack([line[2] for line in lines]).astype(np.float64)
    calibration = None if job_model is None else job_model.trust_model.calibration
    band, band_label = _band(calibration, spread, len(lines))
    if predictions.spread is None and calibration is None:
        band = None
    fig = plot_spectra(
        energies - (e0 or 0.0),
        spectra,
        None,
        band,
        labels,
        path=out,
        title=f"predicted spectra from {args.output_dir.name}",
        ranges=(ranges[0], ranges[1]),
        band_label=band_label,
        outside_domain=[line[4] for line in lines],
    )
    if e0 is None:
        # the edge energy is unknown: show absolute energies rather than a wrong offset
        fig.axes[0].set_xlabel("E (eV)")
        fig.savefig(out, format=out.suffix.lower().lstrip("."))
        print("xanesnet plot: note: E0 unknown (give --e0); absolute energies shown")
    print(f"wrote {out}")
    return 0
