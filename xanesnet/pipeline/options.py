"""The options of a batch job in one frozen object, and what a job reports when it ends."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DEFAULT_CHUNK_SIZE", "BatchOptions", "BatchSummary", "parse_shard"]

#: Structures per chunk of :func:`~xanesnet.pipeline.batch.predict_batch` and the CLI.
DEFAULT_CHUNK_SIZE = 4096


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"I/N"`` (0 <= I < N) -> (I, N); None stays None."""
    if text is None:
        return None
    try:
        i, n = (int(v) for v in str(text).split("/"))
    except ValueError as exc:
        raise ValueError(f"--shard: expected I/N such as 0/4, got {text!r}") from exc
    if not (n >= 1 and 0 <= i < n):
        raise ValueError(f"--shard: expected 0 <= I < N, got {text!r}")
    return i, n


@dataclass(frozen=True)
class BatchOptions:
    """How a batch job runs; see :func:`~xanesnet.pipeline.batch.predict_batch` for each.

    ``shard`` may be given as ``"I/N"``; it is kept as ``(I, N)``. Raises ValueError for a
    chunk size below 1 or a malformed shard.
    """

    model: str | os.PathLike | None = None
    absorber: int | str | None = None
    select: str | None = None
    chunk_size: int = DEFAULT_CHUNK_SIZE
    n_threads: int = 0
    backend: str | None = None
    device: str = "cpu"
    precision: str = "float32"
    shard: tuple[int, int] | None = None
    strict: bool = False
    progress: bool = True
    dask: str | None = None
    format: str = "hdf5"
    fast_xyz: bool | None = None

    def __post_init__(self) -> None:
        if self.chunk_size < 1:
            raise ValueError(f"chunk_size: expected a positive integer, got {self.chunk_size}")
        if isinstance(self.shard, str):
            object.__setattr__(self, "shard", parse_shard(self.shard))

    def in_shard(self, index: int) -> bool:
        """Whether chunk ``index`` belongs to this job's shard (every chunk without one)."""
        return self.shard is None or index % self.shard[1] == self.shard[0]


@dataclass(frozen=True)
class BatchSummary:
    """What a batch job did (this run only; earlier runs' chunks count as skipped)."""

    output: Path
    sites: int
    structures: int
    failed: int
    chunks_written: int
    chunks_skipped: int
    seconds: float

    @property
    def sites_per_second(self) -> float:
        return self.sites / self.seconds if self.seconds > 0 else float("inf")

    def line(self) -> str:
        return (
            f"{self.sites} sites from {self.structures} structures, {self.failed} failed, "
            f"{self.chunks_written} chunk(s) written, {self.chunks_skipped} already done; "
            f"{self.seconds:.1f} s, {self.sites_per_second:,.0f} sites/s -> {self.output}"
        )
