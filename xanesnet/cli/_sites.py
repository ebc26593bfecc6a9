"""Shared by the commands that write site-by-site results to one file: a chunked,
failure-tolerant stream of descriptors, and writing/reporting helpers."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from xanesnet.pipeline.options import DEFAULT_CHUNK_SIZE

__all__ = ["SiteStream", "report_failures", "save_npz"]


@dataclass
class SiteStream:
    """Descriptors of every site of the inputs, chunk by chunk, as the batch pipeline reads and
    computes them (:mod:`xanesnet.io.chunks`, :func:`xanesnet.descriptors.sites.compute_sites`);
    failures are recorded.

    Iterating yields ``(features (n, n_features), ids (n,), sites (n,))`` per chunk.
    """

    inputs: list[Any]
    config: Any
    absorber: Any = 0
    select: str | None = None
    backend: str | None = None
    threads: int = 0
    chunk_size: int = DEFAULT_CHUNK_SIZE
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


def save_npz(path: Path, **arrays: np.ndarray) -> None:
    """Write an .npz so that it appears complete or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(path)


def report_failures(failures: list[tuple[str, str]]) -> None:
    """Print each failed structure (or input) and why, and how many, to stderr."""
    for item, reason in failures:
        print(f"failed: {item}: {reason}", file=sys.stderr)
    if failures:
        print(f"{len(failures)} structure(s) failed", file=sys.stderr)
