"""Inputs to sources: paths, folders, glob patterns and database URLs become one list of
:class:`Source` records, each naming the reader that takes it.

The reader of a source is decided in one place, :func:`reader_kind` (the table
:data:`READER_BY_SUFFIX`, URL schemes :data:`DB_SCHEMES`, or the ``format`` given). A folder of
a million files costs only its sorted file names in memory (about 70 MB): :class:`FolderSources`
makes its records on demand, and :class:`SourceList` chains folders and single sources into one
sequence that knows which reader kinds it holds without building every record.
"""

from __future__ import annotations

import bisect
import glob
import os
import re
import stat
import warnings
from collections.abc import Iterable, Iterator, Sequence
from itertools import chain
from pathlib import Path
from typing import Any, NamedTuple, overload

__all__ = [
    "DB_SCHEMES",
    "FOLDER_NAMES",
    "FOLDER_SUFFIXES",
    "READER_BY_SUFFIX",
    "FolderSources",
    "SkippedFilesWarning",
    "Source",
    "SourceList",
    "file_source",
    "folder_sources",
    "locations_and_stems",
    "parse_index",
    "reader_kind",
    "redact_url",
    "resolve_sources",
    "unique_stems",
]

#: File suffixes (lower case) picked up when a folder is given. Other files are skipped, and
#: named in one :class:`SkippedFilesWarning` per folder (not ``.json``: stray JSON files that
#: are no structures would each be a failure; name such files or give a glob to read them).
FOLDER_SUFFIXES: tuple[str, ...] = (".xyz", ".extxyz", ".cif", ".vasp", ".pdb", ".traj")
#: Exact file names also picked up in a folder (VASP conventions).
FOLDER_NAMES: tuple[str, ...] = ("POSCAR", "CONTCAR")
#: URL schemes read as ASE databases (server backends need their Python driver installed).
DB_SCHEMES: tuple[str, ...] = ("postgresql", "postgres", "mysql", "mariadb")
#: The reader of a file by its lower-case suffix when no format is given: "db" (ASE database),
#: "xyz" (XANESNET xyz, or standard xyz/extxyz when its rows start with element symbols); any
#: other suffix: "ase" (``ase.io``). A ``format`` given names the reader: "db", "xanesnet"
#: (XANESNET xyz, no detection), anything else an ``ase.io`` format ("ase").
READER_BY_SUFFIX: dict[str, str] = {".db": "db", ".xyz": "xyz"}

_GLOB_CHARS = re.compile(r"[*?\[]")
_URL = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://")

PathInput = str | os.PathLike
IndexInput = int | slice | str | None
#: skipped file names listed by name in the warning about a folder (the rest are counted)
SKIPPED_SHOWN = 5


class SkippedFilesWarning(UserWarning):
    """A folder given as input holds files that are not read (their suffix is not one of
    :data:`FOLDER_SUFFIXES`); said once per folder and call, naming a few of them."""


class Source(NamedTuple):
    """One thing to read: a file or a database (file or URL)."""

    kind: str  # the reader (see reader_kind): "xyz", "xanesnet", "ase" or "db"
    location: str  # path or URL passed to the reader
    display: str  # shown in info["source"] and in messages (URL password removed)
    stem: str  # base of the ids


def reader_kind(suffix: str, fmt: str | None) -> str:
    """The reader of a file with lower-case ``suffix`` ("" for none) read as ``fmt``."""
    if fmt is None:
        return READER_BY_SUFFIX.get(suffix, "ase")
    return fmt if fmt in ("db", "xanesnet") else "ase"


def _split_suffix(name: str) -> tuple[str, str]:
    """(stem, lower-case suffix with its dot) of a file name; the suffix is "" for none."""
    head, dot, tail = name.rpartition(".")
    return (head, dot + tail.lower()) if dot else (name, "")


def redact_url(url: str) -> str:
    """Drop the password from ``scheme://user:password@host/...``."""
    return re.sub(r"^([A-Za-z][A-Za-z0-9+.-]*://[^:/@]*):[^@/]*@", r"\1:***@", url)


def _url_stem(url: str) -> str:
    tail = url.rstrip("/").rsplit("/", 1)[-1]
    return tail.split("?", 1)[0] or "db"


def file_source(path: str, fmt: str | None) -> Source:
    """The record of one file read as ``fmt`` (None: by its suffix)."""
    stem, suffix = os.path.splitext(os.path.basename(path))
    return Source(reader_kind(suffix.lower(), fmt), path, path, stem)


def folder_sources(folder: str, fmt: str | None) -> FolderSources:
    """Sources of a folder's structure files, sorted by name; hidden files and subfolders are
    skipped. Item i equals ``file_source(os.path.join(folder, name_i), fmt)``; records are made
    on demand from the sorted names (a million files cost ~70 MB, not several hundred)."""
    names: list[str] = []
    skipped: list[str] = []
    suffixes: set[str] = set()
    with os.scandir(folder) as entries:
        for entry in entries:
            name = entry.name
            if name.startswith("."):
                continue
            _, dot, tail = name.rpartition(".")  # _split_suffix, inlined: once per file
            suffix = dot + tail.lower() if dot else ""
            if suffix in FOLDER_SUFFIXES or name in FOLDER_NAMES:
                if entry.is_file():
                    names.append(name)
                    suffixes.add(suffix)
            elif entry.is_file():
                skipped.append(name)
    names.sort()
    skipped.sort()
    return FolderSources(folder, names, fmt, suffixes, skipped)


def skipped_files_message(folder: str, skipped: Sequence[str]) -> str:
    """The one line saying which files of ``folder`` were not read."""
    shown = ", ".join(skipped[:SKIPPED_SHOWN]) + (" ..." if len(skipped) > SKIPPED_SHOWN else "")
    return (
        f"skipped {len(skipped)} files in {folder} with unsupported suffixes: {shown} (a folder "
        f"is read for {', '.join('*' + s for s in FOLDER_SUFFIXES)}, {', '.join(FOLDER_NAMES)}; "
        "name other files explicitly or by a glob pattern such as DIR/*.json)"
    )


def _resolve_one(item: Any, fmt: str | None, out: list[Any]) -> None:
    """Append ``item``'s sources to ``out``: :class:`Source` records, or a lazy
    :class:`FolderSources` per folder."""
    if isinstance(item, (list, tuple)):
        for sub in item:
            _resolve_one(sub, fmt, out)
        return
    if not isinstance(item, (str, os.PathLike)):
        raise TypeError(
            f"read_structures: expected a path, glob pattern, database URL or a list of them, "
            f"got {type(item).__name__}"
        )
    text = os.fsdecode(os.fspath(item))
    match = _URL.match(text) if isinstance(item, str) else None
    if match and match.group("scheme").lower() in DB_SCHEMES:
        out.append(Source("db", text, redact_url(text), _url_stem(text)))
        return
    path = os.path.expanduser(text)
    try:
        mode = os.stat(path).st_mode
    except OSError:
        mode = 0
    if stat.S_ISDIR(mode):
        files = folder_sources(path, fmt)
        if not files:
            found = f" (found only {', '.join(files.skipped[:SKIPPED_SHOWN])}" + (
                " ...)" if len(files.skipped) > SKIPPED_SHOWN else ")"
            )
            raise ValueError(
                f"{path}: folder holds no structure files (empty input); looked for "
                f"{', '.join('*' + s for s in FOLDER_SUFFIXES)}, {', '.join(FOLDER_NAMES)}"
                + (found if files.skipped else "")
            )
        out.append(files)  # kept lazy
        return
    if mode:
        out.append(file_source(path, fmt))
        return
    if isinstance(item, str) and _GLOB_CHARS.search(text):
        matches = sorted(glob.glob(os.path.expanduser(text), recursive=True))
        if not matches:
            raise FileNotFoundError(f"{text}: glob pattern matches no files")
        for m in matches:
            _resolve_one(Path(m), fmt, out)
        return
    raise FileNotFoundError(f"{path}: no such file or folder")


def parse_index(index: IndexInput) -> int | slice | None:
    if index is None or isinstance(index, (int, slice)):
        return index
    if isinstance(index, str):
        from ase.io.formats import string2index

        try:
            parsed = string2index(index)
        except ValueError:
            parsed = None
        if not isinstance(parsed, (int, slice)):
            raise ValueError(f"index: cannot parse {index!r} as an int or slice")
        return parsed
    raise TypeError(f"index: expected int, slice, str or None, got {type(index).__name__}")


def resolve_sources(
    path_or_paths: PathInput | Iterable[Any],
    fmt: str | None,
    select: str | int | None,
    index: IndexInput,
) -> tuple[SourceList, int | slice | None]:
    """The sources of ``read_structures(path_or_paths, format=fmt, select=select, index=index)``
    and its parsed ``index``, with its checks (see :func:`xanesnet.io.read_structures`)."""
    items: list[Any] = []
    _resolve_one(path_or_paths, fmt, items)
    for item in items:
        if isinstance(item, FolderSources) and item.skipped:
            warnings.warn(
                skipped_files_message(item.folder, item.skipped), SkippedFilesWarning, stacklevel=3
            )
    sources = SourceList(unique_stems(items))
    if not sources:
        raise ValueError("read_structures: no inputs given (empty input)")
    frames = parse_index(index)
    has_db = "db" in sources.kinds
    if has_db and frames is not None:
        raise ValueError("index: not supported for database inputs; use select= instead")
    if select is not None and not has_db:
        raise ValueError("select: applies to database inputs only, and none were given")
    return sources, frames


def unique_stems(items: list[Any]) -> list[Any]:
    """Make the id stems of resolved inputs unique (``items``: :class:`Source` records and
    :class:`FolderSources`, as :func:`resolve_sources` collects them; returned with records
    replaced and folders' :attr:`FolderSources.stems` set).

    A file's stem is its id stem when no other input file has the same stem. Files whose stems
    clash get their path relative to the common folder of the clashing files instead, without
    the suffix when that is enough (``vasp/run1/CONTCAR``, ``vasp/run2/CONTCAR`` ->
    ``run1/CONTCAR``, ``run2/CONTCAR``), with it when the files differ only by their suffix
    (``hem.traj``, ``hem.json``). Database URLs keep theirs. The ids follow from the set of
    inputs alone, so the same inputs give the same ids in every run; the same file given twice
    keeps one id.
    """
    if not items or (len(items) == 1 and not isinstance(items[0], FolderSources)):
        return items
    if len(items) == 1:
        suffixes = items[0].suffixes
        if suffixes is None:
            suffixes = {_split_suffix(n)[1] for n in items[0].names}
        if len(suffixes) <= 1:
            return items  # one folder, one suffix: distinct names have distinct stems
    # stem -> [(item index, name index or -1)]
    where: dict[str, list[tuple[int, int]]] = {}
    for k, item in enumerate(items):
        if isinstance(item, FolderSources):
            for i, name in enumerate(item.names):
                head, dot, _ = name.rpartition(".")
                where.setdefault(head if dot else name, []).append((k, i))
        elif not (item.kind == "db" and _URL.match(item.location)):
            where.setdefault(item.stem, []).append((k, -1))
    out = list(items)
    for group in where.values():
        if len(group) < 2:
            continue
        paths = [
            os.path.abspath(
                items[k].location if i < 0 else os.path.join(items[k].folder, items[k].names[i])
            )
            for k, i in group
        ]
        if len(set(paths)) < 2:
            continue  # one file given several times
        parent = os.path.commonpath([os.path.dirname(p) for p in paths])
        full = [os.path.relpath(p, parent) for p in paths]
        bare = [
            _split_suffix(label)[0] if "." in os.path.basename(label) else label for label in full
        ]
        labels = bare if len(set(bare)) == len(set(paths)) else full
        for (k, i), label in zip(group, labels, strict=True):
            if i < 0:
                out[k] = out[k]._replace(stem=label)
            else:
                out[k].stems[i] = label
    return out


class FolderSources(Sequence[Source]):
    """A folder's picked structure files, sorted by name, as :class:`Source` records.

    Args:
        folder: the folder path (as given, user expanded).
        names: the picked file names, sorted.
        fmt: the ``format`` argument of ``read_structures`` (None: by suffix).
        suffixes: the names' lower-case suffixes ("" for none), if known.
        skipped: the folder's other (non-hidden) files, not read, sorted.
    """

    def __init__(
        self,
        folder: str,
        names: list[str],
        fmt: str | None,
        suffixes: set[str] | None = None,
        skipped: list[str] | None = None,
    ) -> None:
        self.folder = folder
        self._prefix = os.path.join(folder, "")
        self._names = names
        self._fmt = fmt
        self.skipped = skipped or []
        #: id stems that are not the file's stem (see :func:`unique_stems`), by name index
        self.stems: dict[int, str] = {}
        #: the names' lower-case suffixes, when collected while listing the folder
        self.suffixes = suffixes
        if fmt is None:
            if suffixes is None:  # not collected while listing the folder
                suffixes = set(self._suffixes())
            self.kinds = frozenset(reader_kind(suffix, None) for suffix in suffixes)
        else:
            self.kinds = frozenset([reader_kind("", fmt)])

    def _suffixes(self) -> Iterator[str]:
        for name in self._names:
            yield _split_suffix(name)[1]

    def _source(self, i: int) -> Source:
        name = self._names[i]
        stem, suffix = _split_suffix(name)
        path = self._prefix + name
        return Source(reader_kind(suffix, self._fmt), path, path, self.stems.get(i, stem))

    @property
    def names(self) -> list[str]:
        """The picked file names, sorted (read only)."""
        return self._names

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
        if self.stems:
            for i in range(start, min(stop, len(self._names))):
                if i in self.stems:
                    stems[i - start] = self.stems[i]
        return [prefix + name for name in names], stems

    @overload
    def __getitem__(self, index: int) -> Any: ...

    @overload
    def __getitem__(self, index: slice) -> list[Any]: ...

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return [self._source(i) for i in range(len(self._names))[index]]
        return self._source(range(len(self._names))[index])

    def __iter__(self) -> Iterator[Any]:
        return (self._source(i) for i in range(len(self._names)))


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

    def locate(self, i: int) -> tuple[int, int]:
        """(segment, offset in it) of source ``i``."""
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
                segment, offset = self.locate(start)
                part = self._segments[segment][offset : offset + (stop - start)]
                out.extend(part)
                start += len(part)
            return out
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError("source index out of range")
        segment, offset = self.locate(index)
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
        index, offset = sources.locate(start)
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
