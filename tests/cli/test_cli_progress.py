"""Progress of the long commands: a plain line every so often off a terminal, no carriage
returns; quiet is silent."""

from __future__ import annotations

import io

from xanesnet.cli._progress import Progress, TrainingProgress


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_plain_lines_off_a_terminal() -> None:
    stream, clock = io.StringIO(), Clock()
    progress = Progress(100, "importance", "feature", stream=stream, log_interval=10, clock=clock)
    for _ in range(50):
        clock.now += 1.0
        progress.update(1)
    progress.close()
    text = stream.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    # one line each 10 s over 50 s, and a last one at the end
    assert len(lines) == 6
    assert lines[0].startswith("importance: 10/100 feature (10 %), 10 s, about 1.5 min left")
    assert lines[-1] == "importance: 50/100 feature (50 %), 50 s"


def test_quiet_is_silent() -> None:
    stream = io.StringIO()
    with Progress(3, "evaluate", "step", quiet=True, stream=stream) as progress:
        progress.update(3)
    assert stream.getvalue() == ""


def test_training_progress_one_count_per_member() -> None:
    stream = io.StringIO()
    progress = TrainingProgress(4, stream=stream)
    for member in range(2):
        for epoch in range(4):
            progress(member, epoch, 0.5, None if member else 0.25)
    progress.close()
    lines = stream.getvalue().splitlines()
    assert lines == [
        "member 0: 4/4 epoch (100 %), 0 s; train 0.5000 val 0.2500",
        "member 1: 4/4 epoch (100 %), 0 s; train 0.5000",
    ]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_bar_on_a_terminal() -> None:
    stream = Terminal()
    with Progress(4, "importance", "feature", stream=stream) as progress:
        assert progress.bar is not None
        progress.update_to(4, "last")
    assert "importance" in stream.getvalue() and "4/4" in stream.getvalue()
