"""A job's input paths resolved into sources and fingerprinted, in a thread started before the
model is loaded.

Listing a folder and ``stat``-ing every file (the resume check of
:mod:`xanesnet.store.inputs`) is mostly system calls, which run without the GIL; started first,
it overlaps with importing torch and loading the model instead of adding to them (about 0.1 s
per 20,000 files). Its result, or the error it met, is taken where the job needs it, so errors
and warnings are the same as when the work is done in place.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from xanesnet.io.sources import locations_and_stems, resolve_sources

__all__ = ["InputScan"]


class InputScan:
    """Resolve ``inputs`` (paths, globs, folders, databases) and fingerprint their files, in a
    background thread; :meth:`result` waits for it.

    Args:
        inputs: the job's inputs as given.
        select: the ASE database selection (part of how database sources are resolved).
    """

    def __init__(self, inputs: Sequence[Any], select: str | int | None) -> None:
        self._inputs = list(inputs)
        self._select = select
        self._sources: Any = None
        self._fingerprint: Any = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="xanesnet-inputs", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            from xanesnet.store.inputs import InputFingerprint

            sources, _ = resolve_sources(self._inputs, None, self._select, None)
            locations, _ = locations_and_stems(sources, 0, len(sources))
            self._fingerprint = InputFingerprint.of(locations)
            self._sources = sources
        except BaseException as exc:  # raised again where the job asks for the result
            self._error = exc

    def result(self) -> tuple[Any, Any]:
        """(sources, :class:`~xanesnet.store.inputs.InputFingerprint`); raises what resolving
        or fingerprinting raised."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._sources, self._fingerprint
