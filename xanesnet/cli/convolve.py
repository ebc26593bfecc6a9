"""``xanesnet convolve RAW_DIR -o OUT_DIR``: broaden raw FDMNES or FEFF spectra onto a grid.

Reads every raw FDMNES ``.txt`` in RAW_DIR (edge energy E0 on line 1) or, for FEFF runs, every
``xmu.dat`` below RAW_DIR (E0 = ``omega - e``, see :mod:`xanesnet.io.feff`), broadens it with a
Lorentzian model (default: the fixed 1.25 eV recipe that made the published Fe set), optionally
normalises the edge step, resamples onto the grid E0+start … E0+stop and writes the processed
spectrum in OUT_DIR (2 header lines, ``energy mu`` rows): an FDMNES file under its own name, a
FEFF spectrum under a name made from its folders (:func:`feff_output_name`). FEFF's μ already
has its Fermi-level cut, so FEFF input is broadened without a second one. The settings go to
``OUT_DIR/convolve.json``. Spectra sharing an energy grid are broadened together with one
matrix. A file that fails is recorded and the job goes on; the exit status is 1 when any failed
(0 otherwise, 2 for bad arguments).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from xanesnet.spectra import (
    MODEL_DEFAULTS,
    Broadening,
    EnergyGrid,
    broaden,
    edge_step_normalise,
    read_fdmnes_spectrum,
    read_feff_spectrum,
    resample,
    write_processed_spectrum,
)

#: input format -> reader returning (e0, absolute energies, mu)
READERS = {"fdmnes": read_fdmnes_spectrum, "feff": read_feff_spectrum}

#: command-line option -> (parameter name, models that take it)
_MODEL_OPTIONS = {
    "gamma_hole": ("gamma_hole", ("arctan", "seah-dench")),
    "gamma_max": ("gamma_max", ("arctan",)),
    "e_cent": ("e_cent", ("arctan",)),
    "e_larg": ("e_larg", ("arctan",)),
    "a": ("a", ("seah-dench",)),
    "gamma_m": ("gamma_m", ("seah-dench",)),
    "e_fermi": ("e_fermi", ("fixed", "arctan", "seah-dench")),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xanesnet convolve",
        description="Broaden raw FDMNES or FEFF spectra and write them on an energy grid.",
    )
    parser.add_argument(
        "raw_dir", type=Path, help="folder of raw FDMNES .txt spectra, or of FEFF runs (**/xmu.dat)"
    )
    parser.add_argument(
        "--format",
        choices=("auto", "fdmnes", "feff"),
        default="auto",
        help="input spectra; auto (default): FDMNES when RAW_DIR holds .txt files, else FEFF",
    )
    parser.add_argument("-o", "--output", required=True, type=Path, help="output folder")
    parser.add_argument(
        "--model", choices=sorted(MODEL_DEFAULTS), default="fixed", help="default: fixed"
    )
    fixed = MODEL_DEFAULTS["fixed"]
    arctan = MODEL_DEFAULTS["arctan"]
    seah = MODEL_DEFAULTS["seah-dench"]
    group = parser.add_argument_group("broadening parameters (eV; defaults per model)")
    group.add_argument(
        "--gamma",
        type=float,
        default=None,
        help=f"fixed: Lorentzian FWHM (default {fixed['gamma']:g}); arctan, seah-dench: same as "
        "--gamma-hole",
    )
    group.add_argument(
        "--gamma-hole",
        type=float,
        default=None,
        help=f"core-hole width (default {arctan['gamma_hole']:g})",
    )
    group.add_argument(
        "--gamma-max",
        type=float,
        default=None,
        help=f"arctan Γ_max (default {arctan['gamma_max']:g})",
    )
    group.add_argument(
        "--e-cent", type=float, default=None, help=f"arctan E_cent (default {arctan['e_cent']:g})"
    )
    group.add_argument(
        "--e-larg", type=float, default=None, help=f"arctan E_larg (default {arctan['e_larg']:g})"
    )
    group.add_argument(
        "--a", type=float, default=None, help=f"seah-dench A (default {seah['a']:g})"
    )
    group.add_argument(
        "--gamma-m", type=float, default=None, help=f"seah-dench Γ_m (default {seah['gamma_m']:g})"
    )
    group.add_argument(
        "--e-fermi",
        type=float,
        default=None,
        help=f"Fermi level relative to E0: μ = 0 below it (default {fixed['e_fermi']:g} fixed, "
        f"{arctan['e_fermi']:g} arctan/seah-dench); FEFF input is not cut (its μ is already), "
        "e_F there only sets where the arctan/seah-dench widths grow",
    )
    group.add_argument(
        "--float64-input",
        action="store_true",
        help="do not round the raw data to float32 first (the published recipe does)",
    )
    grid = parser.add_argument_group("output grid (eV relative to E0)")
    grid.add_argument("--grid-start", type=float, default=-15.0, help="default -15")
    grid.add_argument("--grid-stop", type=float, default=60.0, help="default 60")
    grid.add_argument("--grid-points", type=int, default=226, help="default 226")
    parser.add_argument(
        "--normalise",
        action="store_true",
        help="edge-step normalisation (quadratic fit on E0+100…E0+400 eV of the broadened "
        "spectrum; the raw data must reach that far)",
    )
    parser.add_argument("--quiet", action="store_true", help="print nothing but errors")
    return parser


def broadening_from_args(args: argparse.Namespace, *, fermi_cut: bool = True) -> Broadening:
    """The :class:`Broadening` the options describe (``fermi_cut=False`` for FEFF input);
    ``ValueError`` for options of another model."""
    params: dict[str, float] = {}
    if args.gamma is not None:
        params["gamma" if args.model == "fixed" else "gamma_hole"] = args.gamma
    for option, (name, models) in _MODEL_OPTIONS.items():
        value = getattr(args, option)
        if value is None:
            continue
        if args.model not in models:
            flag = "--" + option.replace("_", "-")
            raise ValueError(f"{flag} does not apply to the {args.model} model")
        if name in params and params[name] != value:
            raise ValueError(f"--gamma and --{option.replace('_', '-')} disagree")
        params[name] = value
    return Broadening(args.model, params, float32_input=not args.float64_input, fermi_cut=fermi_cut)


def feff_output_name(xmu: Path, root: Path) -> str:
    """Output file name of a FEFF ``xmu.dat`` from its folders.

    In the OmniXAS layout, ``<material>/FEFF-XANES/<site>_<El>/xmu.dat`` gives
    ``<material>_<site>_<El>.txt`` (e.g. ``mp-1005792_008_Cu.txt``); elsewhere the folders from
    ``root`` down to the file, joined by ``_`` (``root``'s own name when the file lies in it).
    """
    folder = xmu.parent
    if folder.parent.name == "FEFF-XANES":
        return f"{folder.parent.parent.name}_{folder.name}.txt"
    parts = folder.relative_to(root).parts or (root.resolve().name,)
    return "_".join(parts) + ".txt"


def _relative(path: Path, root: Path) -> str:
    """How a failure names its input: the path below RAW_DIR (the file name for FDMNES)."""
    return path.relative_to(root).as_posix()


def collect_inputs(raw_dir: Path, input_format: str) -> tuple[str, list[tuple[str, Path]]]:
    """(format, [(output name, input file)]) of RAW_DIR: its ``*.txt`` files (FDMNES) or every
    ``**/xmu.dat`` below it (FEFF); ``"auto"`` is FDMNES when there are ``.txt`` files."""
    texts = sorted(p for p in raw_dir.glob("*.txt") if p.is_file())
    if input_format == "auto":
        input_format = "fdmnes" if texts else "feff"
    if input_format == "fdmnes":
        return input_format, [(p.name, p) for p in texts]
    found = sorted(p for p in raw_dir.glob("**/xmu.dat") if p.is_file())
    return input_format, [(feff_output_name(p, raw_dir), p) for p in found]


def _convolve_group(
    energies: np.ndarray,
    e0: float,
    mu: np.ndarray,
    broadening: Broadening,
    grid: EnergyGrid,
    normalise: bool,
) -> np.ndarray:
    """Broaden spectra sharing ``energies`` and ``e0``: (n_spectra, n_raw) -> (n_spectra, n_grid)."""
    if not normalise:
        return broaden(energies, mu, e0, broadening, grid)
    out = broaden(energies, mu, e0, broadening)
    out = edge_step_normalise(energies, out, e0)
    return resample(energies - e0, out, grid.relative + (grid.e0 - e0))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.raw_dir.is_dir():
        parser.error(f"{args.raw_dir}: not a folder")
    input_format, inputs = collect_inputs(args.raw_dir, args.format)
    try:
        broadening = broadening_from_args(args, fermi_cut=input_format != "feff")
        grid_template = EnergyGrid(0.0, args.grid_start, args.grid_stop, args.grid_points)
    except ValueError as exc:
        parser.error(str(exc))
    if args.output.resolve() == args.raw_dir.resolve():
        parser.error(
            "the output folder must differ from RAW_DIR (it would overwrite the raw files)"
        )
    if not inputs:
        wanted = ".txt files" if input_format == "fdmnes" else "FEFF xmu.dat files"
        print(f"xanesnet convolve: no {wanted} in {args.raw_dir}", file=sys.stderr)
        return 1
    args.output.mkdir(parents=True, exist_ok=True)

    failures: list[tuple[str, str]] = []
    # (e0, energies) -> list of (output name, mu): one broadening matrix per distinct raw grid
    groups: dict[tuple[float, bytes], tuple[np.ndarray, list[tuple[str, np.ndarray]]]] = {}
    source_of: dict[str, Path] = {}
    for name, path in inputs:
        where = _relative(path, args.raw_dir)
        if name in source_of:
            failures.append((where, f"output name {name} already taken by {source_of[name]}"))
            continue
        source_of[name] = path
        try:
            e0, energies, mu = READERS[input_format](path)
        except (OSError, ValueError) as exc:
            failures.append((where, str(exc)))
            continue
        key = (e0, energies.tobytes())
        groups.setdefault(key, (energies, []))[1].append((name, mu))

    written = 0
    for (e0, _), (energies, members) in groups.items():
        grid = EnergyGrid(e0, args.grid_start, args.grid_stop, args.grid_points)
        try:
            out = _convolve_group(
                energies, e0, np.stack([mu for _, mu in members]), broadening, grid, args.normalise
            )
        except ValueError as exc:
            failures += [
                (_relative(source_of[name], args.raw_dir), str(exc)) for name, _ in members
            ]
            continue
        for (name, _), spectrum in zip(members, out):
            try:
                write_processed_spectrum(args.output / name, grid.energies, spectrum)
                written += 1
            except OSError as exc:
                failures.append((_relative(source_of[name], args.raw_dir), str(exc)))

    settings = {
        "broadening": broadening.to_dict(),
        "label": broadening.label(),
        "grid": {k: v for k, v in grid_template.to_dict().items() if k != "e0"},
        "normalise": bool(args.normalise),
        "raw_dir": str(args.raw_dir),
        "format": input_format,
        "written": written,
        "failures": dict(failures),
    }
    (args.output / "convolve.json").write_text(json.dumps(settings, indent=2) + "\n")
    if not args.quiet:
        print(f"{broadening.label()}; wrote {written} spectra to {args.output}")
    if failures:
        print(f"{len(failures)} file(s) failed:", file=sys.stderr)
        for name, reason in failures:
            print(f"  {name}: {reason}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
