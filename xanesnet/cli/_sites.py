"""Shared by the commands that work site by site: input arguments and a chunked, failure-
tolerant stream of descriptors."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from xanesnet.descriptors.dispatch import BACKENDS
from xanesnet.descriptors.wacsf import WACSF


def add_model_argument(parser: argparse.ArgumentParser) -> None:
    """``--model``: a model file or a shipped variant (the commands that run a model)."""
    parser.add_argument(
        "--model",
        default=None,
        help='model file, or "default" / "ensemble" / "fast" for the shipped Fe K-edge '
        "models (default: default)",
    )


def add_precision_argument(parser: argparse.ArgumentParser) -> None:
    """``--precision``: the networks' arithmetic (the commands that run a model)."""
    parser.add_argument(
        "--precision",
        choices=("float32", "bfloat16"),  # xanesnet.model.precision.PRECISIONS, without torch
        default="float32",
        help="network arithmetic (default float32, the model file's own). bfloat16 is several "
        "times faster on CPUs with AMX / AVX-512 BF16 and on GPUs; spectra stay within "
        "~0.03 %% Δμ of float32",
    )


def _absorber(text: str) -> int | str:
    try:
        return int(text)
    except ValueError:
        return text


def add_input_arguments(parser: argparse.ArgumentParser) -> None:
    """Inputs, absorber selection and compute options."""
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
    parser.add_argument(
        "--absorber",
        type=_absorber,
        default=0,
        help="atom index in every structure (default 0, the XANESNET convention) or an element "
        "symbol (every site of that element)",
    )
    parser.add_argument("--select", default=None, help="ASE database selection string")
    parser.add_argument("--backend", choices=BACKENDS, default=None, help="default: best available")
    parser.add_argument("--threads", type=int, default=0, help="0 = all cores (default)")
    parser.add_argument("--chunk-size", type=int, default=4096, help="structures per batch")
    parser.add_argument("--quiet", action="store_true", help="print nothing but errors")


def example_paths() -> list[Path]:
    """The example Fe K-edge structures shipped inside the package."""
    folder = Path(__file__).resolve().parents[1] / "examples" / "fe_k_edge"
    return sorted(folder.glob("*.xyz"))


def resolve_inputs(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[Any]:
    """Checked input list (exits with status 2 on bad arguments)."""
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


@dataclass
class SiteStream:
    """Descriptors of every site of the inputs, chunk by chunk; failures are recorded.

    Iterating yields ``(features (n, n_features), ids (n,), sites (n,))`` per chunk.
    """

    inputs: list[Any]
    config: WACSF
    absorber: Any = 0
    select: str | None = None
    backend: str | None = None
    threads: int = 0
    chunk_size: int = 4096
    failures: list[tuple[str, str]] = field(default_factory=list)
    n_structures: int = 0

    def __iter__(self) -> Iterator[tuple[np.ndarray, list[str], np.ndarray]]:
        from xanesnet.descriptors.sites import compute_sites
        from xanesnet.io.chunks import iter_chunks
        from xanesnet.io.sources import resolve_sources

        sources, _ = resolve_sources(self.inputs, None, self.select, None)
        for chunk in iter_chunks(sources, self.chunk_size, select=self.select):
            self.failures += chunk.errors
            if not len(chunk.frames):
                continue
            result = compute_sites(
                self.config,
                chunk.frames,
                self.absorber,
                backend=self.backend,
                n_threads=self.threads,
            )
            self.n_structures += len(chunk.frames)
            self.failures += result.errors
            if result.ids:
                yield result.features, result.ids, result.sites
