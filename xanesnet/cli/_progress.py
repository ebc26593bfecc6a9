"""Progress of the long commands (``train``, ``distill``, ``evaluate``, ``importance``).

On a terminal: a tqdm bar, redrawn at most every :data:`TERMINAL_INTERVAL_S` seconds. When
stderr is not a terminal (a log file, a batch system, a pipe): no carriage returns, but one
plain line every :data:`LOG_INTERVAL_S` seconds and one at the end.
"""

from __future__ import annotations

from typing import TextIO

# the one implementation, shared with the batch job (cli imports pipeline, never the reverse)
from xanesnet.pipeline.progress import LOG_INTERVAL_S, TERMINAL_INTERVAL_S
from xanesnet.pipeline.progress import ProgressCounter as Progress

__all__ = ["LOG_INTERVAL_S", "TERMINAL_INTERVAL_S", "Progress", "TrainingProgress"]


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
