"""``xanesnet importance --model M --xyz DIR --xanes DIR -o OUT``: permutation importance.

Shuffles each descriptor feature across the data set and measures how much the mean absolute
error grows in each energy window (default: near edge −3..+3 eV and high energy +50..+56 eV
relative to the edge). Writes ``importance.csv``, ``g2_importance.png`` (G2 importance
against radial centre μ, coordination shells marked) and ``pair_distribution.png``
(absorber–neighbour distances by neighbour group), and prints a summary.
"""

from __future__ import annotations

import argparse
import sys
from functools import partial
from pathlib import Path

from xanesnet.cli._args import INPUT_ERRORS, status_of
from xanesnet.cli._dataset import add_dataset_arguments
from xanesnet.cli._progress import Progress

_TOP = 5


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xanesnet importance",
        description="Permutation feature importance of a model per energy window.",
    )
    add_dataset_arguments(parser)
    parser.add_argument(
        "--windows",
        default="-3:3,50:56",
        metavar="LO:HI[,LO:HI...]",
        help="energy windows relative to the edge, eV (default -3:3,50:56)",
    )
    parser.add_argument("--repeats", type=int, default=5, help="shuffles per feature (default 5)")
    parser.add_argument("--seed", type=int, default=0, help="shuffle seed (default 0)")
    parser.add_argument("-o", "--out", type=Path, required=True, help="output folder")
    parser.add_argument("--cache-dir", type=Path, default=None, help="descriptor cache folder")
    parser.add_argument("--threads", type=int, default=0, help="descriptor threads (0 = all)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def _join_negative_values(argv: list[str]) -> list[str]:
    """``--windows -3:3`` -> ``--windows=-3:3`` (argparse reads a leading '-' as an option)."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        if argv[i] == "--windows" and i + 1 < len(argv):
            out.append(f"--windows={argv[i + 1]}")
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(_join_negative_values(argv))
    return status_of("xanesnet importance", partial(run, args), (*INPUT_ERRORS, KeyError))


def run(args: argparse.Namespace) -> int:
    from xanesnet.analysis import (
        absorber_distances,
        feature_table,
        parse_windows,
        permutation_importance,
        plot_g2_importance,
        plot_pair_distribution,
        shell_peaks,
        weighted_mean_mu,
        write_csv,
    )
    from xanesnet.cli._dataset import load_model_and_dataset
    from xanesnet.io import read_structures

    windows = parse_windows(args.windows)
    if args.repeats < 1:
        raise ValueError(f"--repeats must be >= 1, got {args.repeats}")
    model, data = load_model_and_dataset(
        args.model,
        args.xyz,
        args.xanes,
        args.names,
        n_threads=args.threads,
        cache_dir=args.cache_dir,
    )
    print(f"{len(data.names)} spectra, {data.features.shape[1]} features, {len(windows)} windows")

    def predict(x):
        return model.predict_features(x)[0]

    n_features = data.features.shape[1]
    with Progress(n_features, "importance", "feature", quiet=args.quiet) as progress:
        result = permutation_importance(
            predict,
            data.features,
            data.spectra,
            model.energies - model.e0,
            windows,
            repeats=args.repeats,
            seed=args.seed,
            progress=lambda done, _total: progress.update_to(done),
        )
    table = feature_table(model.descriptor)

    r_max = float(model.descriptor.r_max)
    structures = read_structures([args.xyz / f"{n}.xyz" for n in data.names])
    distances, numbers = absorber_distances(structures, r_max)
    shells = shell_peaks(distances, r_max)

    args.out.mkdir(parents=True, exist_ok=True)
    write_csv(args.out / "importance.csv", result, table)
    label = f"{model.element} {model.edge}-edge, {len(data.names)} spectra"
    plot_g2_importance(
        args.out / "g2_importance.png",
        result,
        table,
        shells,
        title=f"G2 permutation importance ({label}, {args.repeats} repeats)",
    )
    plot_pair_distribution(
        args.out / "pair_distribution.png",
        distances,
        numbers,
        r_max,
        shells,
        title=f"Absorber–neighbour distances ({label})",
    )

    print(f"shells (Å): {', '.join(f'{r:.2f}' for r in shells) or 'none found'}")
    for w, window in enumerate(windows):
        print(
            f"\n{window.label} ({window.lo:+g}..{window.hi:+g} eV): "
            f"baseline MAE {result.baseline[w]:.4g}; top {_TOP} features:"
        )
        for j in result.ranking(w)[:_TOP]:
            print(f"  {j:4d} {table[j].name:<40} {result.mean[j, w]:+.4g} ± {result.std[j, w]:.2g}")
    blocks = [("Z-weighted G2 block", "")]
    if model.descriptor.g2_element_groups:
        blocks.append(("per-group G2 summed over groups", None))
    print("\nimportance-weighted mean μ of G2 (negative importances as zero):")
    lo_w = min(range(len(windows)), key=lambda i: windows[i].lo)
    hi_w = max(range(len(windows)), key=lambda i: windows[i].lo)
    for block, group in blocks:
        mus = [weighted_mean_mu(result, table, w, group) for w in range(len(windows))]
        cells = ", ".join(f"{window.label} {mu:.2f} Å" for window, mu in zip(windows, mus))
        print(f"  {block}: {cells}")
        if len(windows) >= 2:
            holds = mus[hi_w] < mus[lo_w]
            print(
                f"    published finding (highest window weighs G2 closer to the absorber than "
                f"the lowest): {'HOLDS' if holds else 'DOES NOT HOLD'} "
                f"({mus[hi_w]:.2f} Å vs {mus[lo_w]:.2f} Å)"
            )
    print(f"\nwrote {args.out}/importance.csv, g2_importance.png, pair_distribution.png")
    return 0
