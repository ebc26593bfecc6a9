"""``xanesnet models [--element X] [--edge K] [--json]``: list the shipped pretrained models.

One row per model file of the registry (:mod:`xanesnet.model.pretrained`): element, edge,
variant, kind of training structures and spectrum code, energy grid, file size and the
validation figures recorded in the file (Δμ_avg with its post-broadening value, skew, ΔE, R²
of peak energies; definitions of shared/spec/metrics.md, on each model's own validation split).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xanesnet models", description="List the pretrained models shipped with xanesnet."
    )
    parser.add_argument("--element", default=None, help="only this absorbing element (e.g. V)")
    parser.add_argument("--edge", default=None, help="only this edge (e.g. K)")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    return parser


def _number(value: Any, digits: int) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def format_table(rows: list[dict[str, Any]]) -> str:
    """The rows of :meth:`ShippedModel.summary` as a Markdown table."""
    header = (
        "| element | edge | variant | training data | grid (eV) | size | "
        "Δμ_avg % (post-broadening) | skew | ΔE eV | R² | validation | file |"
    )
    lines = [header, "|" + " --- |" * (header.count("|") - 1)]
    for row in rows:
        first, last, n = row["grid_ev"]
        v = row["validation"]
        dmu = _number(v["delta_mu_avg"], 2)
        if v["post_broadening_delta_mu_avg"] is not None:
            dmu += f" ({v['post_broadening_delta_mu_avg']:.2f})"
        cells = [
            row["element"],
            row["edge"],
            row["variant"],
            f"{row['training_data']}, {row['code']}",
            f"{first:g}–{last:g} ({n})",
            f"{row['size_bytes'] / 1e6:.1f} MB",
            dmu,
            _number(v["skew"], 3),
            _number(v["delta_e_avg"], 2),
            _number(v["r2_peaks"], 3),
            "–" if v["n_spectra"] is None else f"{v['n_spectra']} spectra",
            row["file"],
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from xanesnet.model.pretrained import shipped_models

    try:
        rows = [m.summary() for m in shipped_models(args.element, args.edge)]
    except (OSError, ValueError) as exc:
        print(f"xanesnet models: error: {exc}", file=sys.stderr)
        return 2
    if not rows:
        wanted = " ".join(x for x in (args.element, args.edge) if x) or "any"
        print(f"xanesnet models: no shipped model for {wanted}", file=sys.stderr)
        return 1
    print(json.dumps(rows, indent=1) if args.json else format_table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
