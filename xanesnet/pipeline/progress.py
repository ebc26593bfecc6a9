"""Progress of long work, shown the same way by the batch job and the commands.

On a terminal: a tqdm bar, redrawn at most every :data:`TERMINAL_INTERVAL_S` seconds. When
stderr is not a terminal (a log file, a batch system, a pipe): no carriage returns, but one
plain line every :data:`LOG_INTERVAL_S` seconds and one at the end (:class:`ProgressCounter`).
A batch job (:class:`Progress`) counts sites, with failures and an ETA from the number of
structures the inputs hold where that is cheap to know.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from xanesnet.io.ase_db import count_db_rows
from xanesnet.io.sources import FolderSources

__all__ = [
    "LOG_INTERVAL_S",
    "ONE_STRUCTURE_BYTES",
    "TERMINAL_INTERVAL_S",
    "Progress",
    "ProgressCounter",
    "expected_structures",
]

#: least seconds between two redraws of the terminal bar
TERMINAL_INTERVAL_S = 0.5
#: least seconds between two plain progress lines when stderr is not a terminal
LOG_INTERVAL_S = 30.0

#: A single file larger than this may hold many frames: its structure count is not guessed.
ONE_STRUCTURE_BYTES = 1 << 20


def _duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # closed stream
        return False


class ProgressCounter:
    """Counts units of work; see the module docstring for what is shown.

    Args:
        total: units of work in all (None: unknown; settable later through :attr:`total`).
        desc: what is counted, first on each line (e.g. "importance").
        unit: the unit's name (e.g. "feature").
        quiet: show nothing.
        initial: units already done (a resumed run).
        stream: where to write (default ``sys.stderr`` at the time of the call).
        log_interval: seconds between plain lines when ``stream`` is not a terminal.
        clock: monotonic seconds (tests pass their own).
        unit_scale: the terminal bar shows large counts as 12.3k (tqdm's ``unit_scale``).
    """

    def __init__(
        self,
        total: int | None,
        desc: str,
        unit: str,
        *,
        quiet: bool = False,
        initial: int = 0,
        stream: TextIO | None = None,
        log_interval: float = LOG_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
        unit_scale: bool = False,
    ) -> None:
        self._total = None if total is None else int(total)
        self.desc = desc
        self.unit = unit
        self.done = int(initial)
        self.postfix = ""
        self.stream = sys.stderr if stream is None else stream
        self.log_interval = float(log_interval)
        self.clock = clock
        self.started = clock()
        self.initial = int(initial)
        self.last_line = self.started
        self.quiet = quiet
        self.lines = 0
        self.bar: Any = None
        if not quiet and _is_terminal(self.stream):
            from tqdm import tqdm

            # disable=None: tqdm switches itself off should the stream stop being a terminal
            self.bar = tqdm(
                total=self._total,
                desc=desc,
                unit=unit,
                initial=initial,
                file=self.stream,
                disable=None,
                mininterval=TERMINAL_INTERVAL_S,
                dynamic_ncols=True,
                unit_scale=unit_scale,
                smoothing=0.1,
            )

    @property
    def total(self) -> int | None:
        """Units of work in all (None: unknown)."""
        return self._total

    @total.setter
    def total(self, value: int | None) -> None:
        self._total = None if value is None else int(value)
        if self.bar is not None:
            self.bar.total = self._total
            self.bar.refresh()

    def update(self, n: int = 1, postfix: str | None = None) -> None:
        """``n`` more units done; ``postfix`` (e.g. the current loss) shown after the count."""
        self.done += n
        if postfix is not None:
            self.postfix = postfix
        if self.quiet:
            return
        if self.bar is not None:
            if postfix is not None:
                self.bar.set_postfix_str(postfix, refresh=False)
            self.bar.update(n)
            return
        now = self.clock()
        if now - self.last_line >= self.log_interval:
            self._line(now)

    def update_to(self, done: int, postfix: str | None = None) -> None:
        """Set the count of units done to ``done``."""
        self.update(done - self.done, postfix)

    def close(self) -> None:
        """End the bar; off a terminal, a last line with the count and the time taken."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        elif not self.quiet:
            self._line(self.clock(), final=True)
        self.quiet = True  # nothing more after closing

    def __enter__(self) -> ProgressCounter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _line(self, now: float, final: bool = False) -> None:
        elapsed = now - self.started
        total = self._total
        text = f"{self.desc}: {self.done}" + ("" if total is None else f"/{total}")
        text += f" {self.unit}"
        if total is not None and total > 0:
            text += f" ({100.0 * self.done / total:.0f} %)"
        text += f", {_duration(elapsed)}"
        rate_done = self.done - self.initial
        if not final and total is not None and 0 < rate_done and self.done < total:
            left = elapsed / rate_done * (total - self.done)
            text += f", about {_duration(left)} left"
        if self.postfix:
            text += f"; {self.postfix}"
        print(text, file=self.stream, flush=True)
        self.last_line = now
        self.lines += 1


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
    """The progress of a batch job (a :class:`ProgressCounter` of sites, with failures) with an
    ETA: its total is the structures still to do, from :func:`expected_structures`, times the
    sites per structure seen so far (exact from the start when the absorber is an atom index).
    Off a terminal it prints a plain line every :data:`LOG_INTERVAL_S` seconds, no ``\\r``."""

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
        self.bar = ProgressCounter(None, "predicting", "site", stream=sys.stderr, unit_scale=True)

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

    def update(self, sites: int, structures: int, failed: int) -> None:
        """A chunk is done: ``sites`` predicted from ``structures``; ``failed`` so far."""
        self.sites += sites
        self.structures += structures
        self._open()
        if self.bar is None:
            return
        self._set_total()
        self.bar.update(sites, f"failed {failed}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
