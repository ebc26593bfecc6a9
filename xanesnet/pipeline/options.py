"""The options of a batch job in one frozen object, and what a job reports when it ends."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "BatchOptions",
    "BatchSummary",
    "absorber_elements",
    "parse_shard",
]

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


def absorber_elements(absorber: int | str | Sequence[str] | None) -> list[str] | None:
    """The element symbols of a several-element absorber (``"Fe,Cu"`` or ``["Fe", "Cu"]``),
    in the order given, repeats dropped; None for one element, an index or None.

    Raises:
        ValueError: an empty entry (``"Fe,,Cu"``) or a list holding something else than symbols.
    """
    if isinstance(absorber, str):
        if "," not in absorber:
            return None
        parts = [p.strip() for p in absorber.split(",")]
    elif absorber is None or isinstance(absorber, int) or not isinstance(absorber, Sequence):
        return None
    else:
        parts = list(absorber)
        if not all(isinstance(p, str) for p in parts):
            return None  # index lists: the one-structure-per-list form of the descriptors
    if not parts or any(not p for p in parts):
        raise ValueError(f"absorber: expected element symbols such as Fe,Cu, got {absorber!r}")
    return list(dict.fromkeys(parts))


@dataclass(frozen=True)
class BatchOptions:
    """How a batch job runs; see :func:`~xanesnet.pipeline.batch.predict_batch` for each.

    ``shard`` may be given as ``"I/N"``; it is kept as ``(I, N)``. ``absorber`` may name
    several elements (``"Fe,Cu"``, ``["Fe", "Cu"]``): one job per element. Raises ValueError
    for a chunk size below 1 or a malformed shard.
    """

    model: str | os.PathLike | None = None
    absorber: int | str | Sequence[str] | None = None
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
    unique_sites: bool = False
    keep_info: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        from xanesnet.pipeline.columns import check_keep_info

        if self.chunk_size < 1:
            raise ValueError(f"chunk_size: expected a positive integer, got {self.chunk_size}")
        object.__setattr__(self, "keep_info", check_keep_info(self.keep_info))
        if isinstance(self.shard, str):
            object.__setattr__(self, "shard", parse_shard(self.shard))

    def in_shard(self, index: int) -> bool:
        """Whether chunk ``index`` belongs to this job's shard (every chunk without one)."""
        return self.shard is None or index % self.shard[1] == self.shard[0]


@dataclass(frozen=True)
class BatchSummary:
    """What a batch job did (this run only; earlier runs' chunks count as skipped).

    ``failed`` counts structures that failed (exit status 1 of the CLI); ``no_sites`` those
    without any site of the model's element (nothing to predict: not failures);
    ``outside_domain`` and ``unphysical`` the sites so flagged (see
    :class:`xanesnet.model.trust.SiteTrust`); ``element`` is the model's; ``represented``
    the sites the predicted ones stand for in a unique-sites job (sum of the multiplicities;
    0 otherwise).
    """

    output: Path
    sites: int
    structures: int
    failed: int
    chunks_written: int
    chunks_skipped: int
    seconds: float
    no_sites: int = 0
    outside_domain: int = 0
    unphysical: int = 0
    element: str = ""
    represented: int = 0

    @property
    def sites_per_second(self) -> float:
        return self.sites / self.seconds if self.seconds > 0 else float("inf")

    def line(self) -> str:
        no_sites = (
            f", {self.no_sites} structures without a {self.element or 'model element'} site"
            if self.no_sites
            else ""
        )
        flagged = (
            f"; {self.outside_domain} sites outside the training domain, "
            f"{self.unphysical} unphysical"
            if self.outside_domain or self.unphysical
            else ""
        )
        standing = f" (standing for {self.represented} by symmetry)" if self.represented else ""
        return (
            f"{self.sites} sites{standing} from {self.structures} structures, "
            f"{self.failed} failed"
            f"{no_sites}{flagged}, "
            f"{self.chunks_written} chunk(s) written, {self.chunks_skipped} already done; "
            f"{self.seconds:.1f} s, {self.sites_per_second:,.0f} sites/s -> {self.output}"
        )

    def domain_warning(self) -> str | None:
        """The once-per-run warning about sites outside the training domain (None: none)."""
        if not self.outside_domain:
            return None
        return (
            f"{self.outside_domain} of {self.sites} sites lie outside the training domain of "
            "the model (domain_score above its threshold): their spectra are extrapolations "
            "(the outside_domain column marks them)"
        )
