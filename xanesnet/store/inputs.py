"""What identifies a job's inputs, so that a resume over changed inputs is refused.

A job's output names its inputs (paths, globs, folders). Between a kill and the resume the files
behind those names may change: an edited file would leave stale spectra, an added or deleted
file would shift every later chunk (a structure never predicted, another written twice). So the
output records, for every input file, its location, size and modification time (one ``stat``,
about a second for a million files) in ``OUT/inputs.tsv.gz``, and their digest in the manifest;
a resume compares them and names what changed. Database files are covered the same way: any
write to an SQLite file changes its size or modification time.
"""

from __future__ import annotations

import gzip
import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

INPUTS_NAME = "inputs.tsv.gz"


@dataclass(frozen=True)
class InputFingerprint:
    """Location, size (bytes; -1: not a file) and modification time (ns) of every input."""

    entries: tuple[tuple[str, int, int], ...]

    @classmethod
    def of(cls, locations: Iterable[str]) -> InputFingerprint:
        """Stat every distinct input location (files read several times count once)."""
        stat = os.stat
        entries = []
        for location in dict.fromkeys(map(str, locations)):  # in order, each once
            try:
                info = stat(location)
                entries.append((location, info.st_size, info.st_mtime_ns))
            except (OSError, ValueError):  # URLs, in-memory items: named, not stat-ed
                entries.append((location, -1, 0))
        return cls(tuple(entries))

    @property
    def digest(self) -> str:
        h = hashlib.sha256()
        for location, size, mtime in self.entries:
            h.update(f"{location}\0{size}\0{mtime}\n".encode("utf-8", "surrogateescape"))
        return h.hexdigest()

    def summary(self) -> dict[str, object]:
        """The manifest's record: count and digest."""
        return {"count": len(self.entries), "sha256": self.digest}

    def write(self, folder: Path) -> None:
        """Write the full table next to the manifest (compressed TSV, one input a line)."""
        tmp = folder / f".{INPUTS_NAME}.partial"
        try:
            # one compressor call per block of lines (a write per line cost 5 µs per input),
            # at the fastest level: the table is read only to name what changed
            with gzip.open(tmp, "wb", compresslevel=1) as out:
                for start in range(0, len(self.entries), 8192):
                    block = "".join(
                        f"{_escape(location)}\t{size}\t{mtime}\n"
                        for location, size, mtime in self.entries[start : start + 8192]
                    )
                    out.write(block.encode("utf-8", "surrogateescape"))
            os.replace(tmp, folder / INPUTS_NAME)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    @classmethod
    def read(cls, folder: Path) -> InputFingerprint | None:
        """The table written by :meth:`write`, or None when absent or unreadable."""
        try:
            with gzip.open(
                folder / INPUTS_NAME, "rt", encoding="utf-8", errors="surrogateescape"
            ) as lines:
                entries = []
                for line in lines:
                    location, size, mtime = line.rstrip("\n").rsplit("\t", 2)
                    entries.append((_unescape(location), int(size), int(mtime)))
        except (OSError, ValueError, EOFError):
            return None
        return cls(tuple(entries))


def describe_change(old: InputFingerprint | None, new: InputFingerprint, most: int = 5) -> str:
    """What changed between two fingerprints, naming up to ``most`` inputs of each kind."""
    if old is None:
        return f"{new.summary()['count']} inputs now; the output's input table is missing"
    before = {e[0]: e[1:] for e in old.entries}
    after = {e[0]: e[1:] for e in new.entries}
    added = [k for k in after if k not in before]
    removed = [k for k in before if k not in after]
    changed = [k for k in after if k in before and after[k] != before[k]]
    parts = []
    for label, names in (("added", added), ("removed", removed), ("modified", changed)):
        if names:
            shown = ", ".join(names[:most]) + (
                f" (+{len(names) - most} more)" if len(names) > most else ""
            )
            parts.append(f"{label}: {shown}")
    if not parts:
        parts.append("the order of the inputs changed")
    return "; ".join(parts)


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def _unescape(text: str) -> str:
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            out.append({"t": "\t", "n": "\n"}.get(text[i + 1], text[i + 1]))
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)
