"""Progress of the long commands (``train``, ``distill``, ``evaluate``, ``importance``).

On a terminal: a tqdm bar, redrawn at most every :data:`TERMINAL_INTERVAL_S` seconds. When
stderr is not a terminal (a log file, a batch system, a pipe): no carriage returns, but one
plain line every :data:`LOG_INTERVAL_S` seconds and one at the end.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

__all__ = ["LOG_INTERVAL_S", "TERMINAL_INTERVAL_S", "Progress", "TrainingProgress"]

#: least seconds between two redraws of the terminal bar
TERMINAL_INTERVAL_S = 0.5
#: least seconds between two plain progress lines when stderr is not a terminal
LOG_INTERVAL_S = 30.0


def _duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


class Progress:
    """Counts ``total`` units of work; see the module docstring for what is shown.

    Parameters
    ----------
    total
        units of work in all.
    desc
        what is counted, first on each line (e.g. "importance").
    unit
        the unit's name (e.g. "feature").
    quiet
        show nothing.
    initial
        units already done (a resumed run).
    stream
        where to write (default ``sys.stderr`` at the time of the call).
    log_interval
        seconds between plain lines when ``stream`` is not a terminal.
    clock
        monotonic seconds (tests pass their own).
    """

    def __init__(
        self,
        total: int,
        desc: str,
        unit: str,
        *,
        quiet: bool = False,
        initial: int = 0,
        stream: TextIO | None = None,
        log_interval: float = LOG_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = int(total)
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
                total=self.total,
                desc=desc,
                unit=unit,
                initial=initial,
                file=self.stream,
                disable=None,
                mininterval=TERMINAL_INTERVAL_S,
                dynamic_ncols=True,
            )

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

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _line(self, now: float, final: bool = False) -> None:
        elapsed = now - self.started
        text = f"{self.desc}: {self.done}/{self.total} {self.unit}"
        if self.total > 0:
            text += f" ({100.0 * self.done / self.total:.0f} %)"
        text += f", {_duration(elapsed)}"
        rate_done = self.done - self.initial
        if not final and 0 < rate_done and self.done < self.total:
            left = elapsed / rate_done * (self.total - self.done)
            text += f", about {_duration(left)} left"
        if self.postfix:
            text += f"; {self.postfix}"
        print(text, file=self.stream, flush=True)
        self.last_line = now
        self.lines += 1


def _is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # closed stream
        return False


class TrainingProgress:
    """The ``progress`` callback of ``train_ensemble``/``train_student``: one
    :class:`Progress` per ensemble member, counting epochs, with the last losses."""

    def __init__(self, epochs: int, *, quiet: bool = False, stream: TextIO | None = None) -> None:
        self.epochs = int(epochs)
        self.quiet = quiet
        self.stream = stream
        self.member = -1
        self.progress: Progress | None = None

    def __call__(self, member: int, epoch: int, train_loss: float, val_loss: float | None) -> None:
        if member != self.member:
            self.close()
            self.member = member
            # called after each epoch with its 0-based index: ``epoch`` were done before it
            self.progress = Progress(
                self.epochs,
                f"member {member}",
                "epoch",
                quiet=self.quiet,
                initial=epoch,
                stream=self.stream,
            )
        text = f"train {train_loss:.4f}" + ("" if val_loss is None else f" val {val_loss:.4f}")
        assert self.progress is not None
        self.progress.update_to(epoch + 1, text)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.close()
            self.progress = None
