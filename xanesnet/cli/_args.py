"""Command-line arguments shared by the commands (commands never import each other)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from xanesnet.descriptors.dispatch import BACKENDS
from xanesnet.pipeline.options import DEFAULT_CHUNK_SIZE, BatchOptions

__all__ = [
    "INPUT_ERRORS",
    "absorber_value",
    "add_choice_argument",
    "add_prediction_arguments",
    "batch_options",
    "add_compute_arguments",
    "add_input_arguments",
    "add_model_argument",
    "add_precision_argument",
    "checked_inputs",
    "example_paths",
    "parse_inputs",
    "status_of",
]

#: The exceptions a command reports as bad input (one line on stderr, exit status 2).
INPUT_ERRORS: tuple[type[Exception], ...] = (FileNotFoundError, ValueError)


def status_of(
    prog: str, command: Callable[[], int], errors: tuple[type[Exception], ...] = INPUT_ERRORS
) -> int:
    """``command()``'s exit status, or 2 with the line "PROG: error: MESSAGE" on stderr when
    it raises one of ``errors`` (bad input: no traceback)."""
    try:
        return command()
    except errors as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2


def add_choice_argument(
    parser: argparse.ArgumentParser, flag: str, choices: Sequence[str], help: str
) -> None:
    """An option taking one of ``choices``; the first is the default."""
    parser.add_argument(flag, choices=choices, default=choices[0], help=help)


def add_model_argument(parser: argparse.ArgumentParser) -> None:
    """``--model``: a model file or a shipped variant (the commands that run a model)."""
    parser.add_argument(
        "--model",
        default=None,
        help='model file, "default" / "ensemble" / "fast" for the shipped Fe K-edge models, or '
        "an element symbol for its shipped model (default: the shipped model of the --absorber "
        "element, else Fe; `xanesnet models` lists them)",
    )


def add_precision_argument(parser: argparse.ArgumentParser) -> None:
    """``--precision``: the networks' arithmetic (the commands that run a model)."""
    add_choice_argument(
        parser,
        "--precision",
        ("float32", "bfloat16"),  # xanesnet.model.precision.PRECISIONS, without torch
        help="network arithmetic (default float32, the model file's own). bfloat16 is several "
        "times faster on CPUs with AMX / AVX-512 BF16 and on GPUs; spectra stay within "
        "~0.03 %% Δμ of float32",
    )


def absorber_value(text: str) -> int | str:
    """``--absorber``: an atom index, or an element symbol."""
    try:
        return int(text)
    except ValueError:
        return text


def add_input_arguments(
    parser: argparse.ArgumentParser, *, absorber: int | None, absorber_help: str
) -> None:
    """Inputs (``inputs``, ``--examples``, ``--select``) and ``--absorber`` (default
    ``absorber``; None: the model's element)."""
    parser.add_argument(
        "inputs",
        nargs="*",
        help="structure files, folders of .xyz, glob patterns or ASE databases (.db)",
    )
    parser.add_argument(
        "--examples",
        action="store_true",
        help="use the example Fe structures shipped with xanesnet",
    )
    parser.add_argument("--absorber", type=absorber_value, default=absorber, help=absorber_help)
    parser.add_argument("--select", default=None, help="ASE database selection string")


def add_compute_arguments(parser: argparse.ArgumentParser) -> None:
    """``--chunk-size``, ``--threads`` and ``--backend``."""
    parser.add_argument(
        "--chunk-size",
        type=int,
        default=DEFAULT_CHUNK_SIZE,
        help=f"structures per chunk (default {DEFAULT_CHUNK_SIZE})",
    )
    parser.add_argument(
        "--threads", type=int, default=0, help="descriptor threads; 0 = all cores (default)"
    )
    parser.add_argument("--backend", choices=BACKENDS, default=None, help="default: best available")


def example_paths() -> list[Path]:
    """The example Fe K-edge structures shipped inside the package."""
    folder = Path(__file__).resolve().parents[1] / "examples" / "fe_k_edge"
    return sorted(folder.glob("*.xyz"))


def checked_inputs(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[Any]:
    """The inputs of :func:`add_input_arguments`, with the compute arguments checked (exits
    with status 2 on bad arguments)."""
    inputs: list[Any] = list(args.inputs)
    if args.examples:
        inputs += example_paths()
    if not inputs:
        parser.error("no inputs: give structure files/folders/databases, or --examples")
    if args.chunk_size < 1:
        parser.error(f"--chunk-size: expected a positive integer, got {args.chunk_size}")
    if args.threads < 0:
        parser.error(f"--threads: expected an integer >= 0, got {args.threads}")
    return inputs


def parse_inputs(
    parser: argparse.ArgumentParser, argv: list[str] | None
) -> tuple[argparse.Namespace, list[Any]]:
    """``argv`` parsed, and the inputs of :func:`add_input_arguments` checked by
    :func:`checked_inputs` (exits with status 2 on bad arguments)."""
    args = parser.parse_args(argv)
    return args, checked_inputs(parser, args)


def add_prediction_arguments(parser: argparse.ArgumentParser) -> None:
    """What the commands that predict spectra share: inputs, ``--absorber`` (default: the
    model's element), the compute arguments, ``--model`` and ``--precision``."""
    add_input_arguments(
        parser,
        absorber=None,
        absorber_help="element symbol (default: the model's element: every such site; "
        "without --model it picks that element's shipped model), several as Fe,Cu (one "
        "model per element; xanesnet-batch writes OUT/Fe, OUT/Cu), or an atom index "
        "(XANESNET one-site convention)",
    )
    add_compute_arguments(parser)
    add_model_argument(parser)
    add_precision_argument(parser)
    parser.add_argument(
        "--unique-sites",
        action="store_true",
        help="crystals: predict each symmetry-unique absorbing site once (spglib) and write "
        "its multiplicity, plus each structure's multiplicity-weighted mean spectrum "
        "(structure_mean); default: every site",
    )


def batch_options(args: argparse.Namespace, **more: Any) -> BatchOptions:
    """The pipeline options of :func:`add_prediction_arguments` (and ``more`` options)."""
    return BatchOptions(
        model=args.model,
        absorber=args.absorber,
        select=args.select,
        chunk_size=args.chunk_size,
        n_threads=args.threads,
        backend=args.backend,
        precision=args.precision,
        unique_sites=args.unique_sites,
        **more,
    )
