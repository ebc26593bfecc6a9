"""Progress of a batch job: a tqdm bar of sites, sites/s and failures, with an ETA from the
number of structures the inputs hold where that is cheap to know."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

from xanesnet.io.ase_db import count_db_rows
from xanesnet.io.sources import FolderSources

__all__ = ["ONE_STRUCTURE_BYTES", "Progress", "expected_structures"]

#: A single file larger than this may hold many frames: its structure count is not guessed.
ONE_STRUCTURE_BYTES = 1 << 20


def expected_structures(sources: Sequence[Any], select: str | None = None) -> int | None:
    """How many structures the inputs hold, where that is cheap to know, for the ETA.

    One per file of a folder (the XANESNET layout) and per single file of at most
    :data:`ONE_STRUCTURE_BYTES`; the selected rows of each database (``count``). None when a
    larger file may hold many frames or a database cannot be counted.

    Args:
        sources: resolved sources (:func:`xanesnet.io.sources.resolve_sources`).
        select: ASE database selection.
    """
    total = 0
    for segment in getattr(sources, "segments", [sources]):
        if isinstance(segment, FolderSources):
            total += len(segment)
            continue
        for source in segment:
            if source.kind == "db":
                try:  # read-only: counting must not write ase.db's schema into the file
                    total += count_db_rows(source, select)
                except (OSError, ValueError):  # an unreadable database fails later, named
                    return None
            else:
                try:
                    if os.path.getsize(source.location) > ONE_STRUCTURE_BYTES:
                        return None
                except OSError:
                    pass  # fails later, recorded as one structure's error
                total += 1
    return total


class Progress:
    """The tqdm bar of a job (sites, sites/s, failures) with an ETA: its total is the
    structures still to do, from :func:`expected_structures`, times the sites per structure
    seen so far (exact from the start when the absorber is an atom index)."""

    def __init__(
        self,
        enabled: bool,
        absorber: Any,
        chunk_size: int,
        done: Any,
        shard: tuple[int, int] | None,
    ) -> None:
        self.enabled = enabled
        self.bar: Any = None  # made at the first chunk or count, so input errors print alone
        self.one_site_each = isinstance(absorber, int)
        self.chunk_size = chunk_size
        self.done = done
        self.shard = shard
        self.to_do: int | None = None  # structures this run will read
        self.sites = self.structures = 0

    def expect(self, n_structures: int | None) -> None:
        """The inputs hold ``n_structures`` (None: unknown); this run does the chunks that are
        neither committed already nor another shard's."""
        if n_structures is None:
            return
        to_do = 0
        for k in range(-(-n_structures // self.chunk_size)):
            if k in self.done or (self.shard and k % self.shard[1] != self.shard[0]):
                continue
            to_do += min(self.chunk_size, n_structures - k * self.chunk_size)
        self.to_do = to_do
        self._set_total()

    def _open(self) -> None:
        if self.bar is not None or not self.enabled:
            return
        try:
            from tqdm import tqdm
        except ImportError:
            self.enabled = False
            return
        self.bar = tqdm(
            unit="site", unit_scale=True, desc="predicting", file=sys.stderr, smoothing=0.1
        )

    def _set_total(self) -> None:
        self._open()
        if self.bar is None or self.to_do is None:
            return
        if self.structures > self.to_do:  # more frames than files: the guess was wrong
            self.to_do = None
            self.bar.total = None
        elif self.one_site_each:
            self.bar.total = self.to_do
        elif self.structures:
            estimate = round(self.sites / self.structures * self.to_do)
            self.bar.total = max(estimate, self.sites)
        self.bar.refresh()

    def update(self, sites: int, structures: int, failed: int) -> None:
        """A chunk is done: ``sites`` predicted from ``structures``; ``failed`` so far."""
        self.sites += sites
        self.structures += structures
        self._open()
        if self.bar is None:
            return
        self.bar.update(sites)
        self.bar.set_postfix_str(f"failed {failed}", refresh=False)
        self._set_total()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
