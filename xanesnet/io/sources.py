"""Lazily built lists of input sources, so that a folder of a million files costs only its
sorted file names in memory (about 70 MB), not a million source records (several hundred MB).

:class:`FolderSources` is one folder's structure files as a sequence of ``_Source`` records made
on demand; :class:`SourceList` chains such folders and single sources into one sequence (length,
iteration, integer and slice indexing) that also knows which source kinds it holds without
building every record.
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Iterator, Sequence
from itertools import chain
from typing import Any, overload

__all__ = ["FolderSources", "SourceList"]

_KINDS_BY_SUFFIX = {".db": "db", ".xyz": "xyz"}


class FolderSources(Sequence[Any]):
    """A folder's picked structure files, sorted by name, as ``_Source`` records.

    Args:
        folder: the folder path (as given, user expanded).
        names: the picked file names, sorted.
        fmt: the ``format`` argument of ``read_structures`` (None: by suffix).
        make: the ``_Source`` constructor (kind, location, display, stem).
        suffixes: the names' lower-case suffixes ("" for none), if known.
    """

    def __init__(
        self,
        folder: str,
        names: list[str],
        fmt: str | None,
        make: Any,
        suffixes: set[str] | None = None,
    ) -> None:
        self._prefix = os.path.join(folder, "")
        self._names = names
        self._fmt = fmt
        self._make = make
        if fmt is None:
            if suffixes is None:  # not collected while listing the folder
                suffixes = set(self._suffixes())
            self.kinds = frozenset(self._kind(suffix) for suffix in suffixes)
        else:
            self.kinds = frozenset([fmt if fmt in ("db", "xanesnet") else "ase"])

    def _suffixes(self) -> Iterator[str]:
        for name in self._names:
            head, dot, tail = name.rpartition(".")
            yield dot + tail.lower() if dot else ""

    def _kind(self, suffix_or_name: str) -> str:
        return _KINDS_BY_SUFFIX.get(suffix_or_name, "ase")

    def _source(self, name: str) -> Any:
        head, dot, tail = name.rpartition(".")
        stem, suffix = (head, dot + tail.lower()) if dot else (name, "")
        path = self._prefix + name
        if self._fmt is None:
            kind = _KINDS_BY_SUFFIX.get(suffix, "ase")
        else:
            kind = self._fmt if self._fmt in ("db", "xanesnet") else "ase"
        return self._make(kind, path, path, stem)

    def __len__(self) -> int:
        return len(self._names)

    def columns(self, start: int, stop: int) -> tuple[list[str], list[str]]:
        """(locations, stems) of sources start..stop-1, as their records would give them,
        without making the records (a third of the cost of reading a small file)."""
        names = self._names[start:stop]
        prefix = self._prefix
        stems = []
        for name in names:
            head, dot, _ = name.rpartition(".")
            stems.append(head if dot else name)
        return [prefix + name for name in names], stems

    @overload
    def __getitem__(self, index: int) -> Any: ...

    @overload
    def __getitem__(self, index: slice) -> list[Any]: ...

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return [self._source(name) for name in self._names[index]]
        return self._source(self._names[index])

    def __iter__(self) -> Iterator[Any]:
        return (self._source(name) for name in self._names)


class SourceList(Sequence[Any]):
    """Single sources and :class:`FolderSources` chained in input order."""

    def __init__(self, items: Sequence[Any]) -> None:
        self._segments: list[Sequence[Any]] = []
        run: list[Any] = []
        for item in items:
            if isinstance(item, FolderSources):
                if run:
                    self._segments.append(run)
                    run = []
                self._segments.append(item)
            else:
                run.append(item)
        if run:
            self._segments.append(run)
        self._ends: list[int] = []
        total = 0
        for segment in self._segments:
            total += len(segment)
            self._ends.append(total)

    @property
    def segments(self) -> list[Sequence[Any]]:
        """The runs of single sources and the :class:`FolderSources`, in input order."""
        return list(self._segments)

    @property
    def kinds(self) -> frozenset[str]:
        """The source kinds present ("xyz", "xanesnet", "ase", "db")."""
        out: set[str] = set()
        for segment in self._segments:
            if isinstance(segment, FolderSources):
                out |= segment.kinds
            else:
                out |= {source.kind for source in segment}
        return frozenset(out)

    def __len__(self) -> int:
        return self._ends[-1] if self._ends else 0

    def _locate(self, i: int) -> tuple[int, int]:
        segment = bisect.bisect_right(self._ends, i)
        start = self._ends[segment - 1] if segment else 0
        return segment, i - start

    @overload
    def __getitem__(self, index: int) -> Any: ...

    @overload
    def __getitem__(self, index: slice) -> list[Any]: ...

    def __getitem__(self, index: int | slice) -> Any:
        n = len(self)
        if isinstance(index, slice):
            start, stop, step = index.indices(n)
            if step != 1:
                return [self[i] for i in range(start, stop, step)]
            out: list[Any] = []
            while start < stop:
                segment, offset = self._locate(start)
                part = self._segments[segment][offset : offset + (stop - start)]
                out.extend(part)
                start += len(part)
            return out
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError("source index out of range")
        segment, offset = self._locate(index)
        return self._segments[segment][offset]

    def __iter__(self) -> Iterator[Any]:
        return chain.from_iterable(self._segments)


def locations_and_stems(
    sources: Sequence[Any], start: int, stop: int
) -> tuple[list[str], list[str]]:
    """(locations, stems) of ``sources[start:stop]``: straight from the file names for folder
    segments of a :class:`SourceList`, from the records otherwise."""
    if not isinstance(sources, SourceList):
        block = sources[start:stop]
        return [s.location for s in block], [s.stem for s in block]
    locations: list[str] = []
    stems: list[str] = []
    segments = sources.segments
    stop = min(stop, len(sources))
    while start < stop:
        index, offset = sources._locate(start)
        segment = segments[index]
        count = min(stop - start, len(segment) - offset)
        if isinstance(segment, FolderSources):
            more_locations, more_stems = segment.columns(offset, offset + count)
        else:
            block = segment[offset : offset + count]
            more_locations, more_stems = [s.location for s in block], [s.stem for s in block]
        locations += more_locations
        stems += more_stems
        start += count
    return locations, stems
