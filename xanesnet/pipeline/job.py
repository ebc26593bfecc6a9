"""A batch job as its executors see it: options, the loaded model, the inputs; its output's
identity, the chunks this run computes, and the per-chunk step in this process."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Container, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xanesnet.checksums import file_sha256
from xanesnet.io.chunks import Chunk, iter_chunks
from xanesnet.io.memory import MEMORY_SOURCE, MemoryStructures, holds_structures
from xanesnet.io.sources import locations_and_stems, resolve_sources
from xanesnet.pipeline.columns import StructureColumns, column_names, structure_columns
from xanesnet.pipeline.options import BatchOptions
from xanesnet.pipeline.progress import expected_structures
from xanesnet.pipeline.step import ChunkResult, run_step

if TYPE_CHECKING:
    from xanesnet.pipeline.commit import ChunkLedger
    from xanesnet.store import PredictionStore

__all__ = ["Job"]


@dataclass(frozen=True)
class Job:
    """A batch job as the executors see it: options, the loaded model and the inputs.

    Attributes:
        options: the job's options.
        model: the loaded model (on ``options.device``).
        model_path: its file.
        model_sha256: the file's SHA-256 (part of the job's identity; keys the workers' cache).
        absorber: the model's element (the default; another element is refused) or an atom
            index (structures where it selects another element fail).
        inputs: the inputs as given, one list.
        output: the output folder.
        memory: the inputs when they are structures in memory (None: paths).
    """

    options: BatchOptions
    model: Any
    model_path: Path
    model_sha256: str
    absorber: int | str
    inputs: list[Any]
    output: Path
    memory: MemoryStructures | None = None

    @classmethod
    def start(
        cls,
        inputs: str | os.PathLike | Sequence[Any],
        output: str | os.PathLike,
        options: BatchOptions,
    ) -> Job:
        """Check the options and load the model (before any reading)."""
        from xanesnet.descriptors.absorbers import resolve_absorber
        from xanesnet.model.files import load_model
        from xanesnet.model.precision import check_precision
        from xanesnet.model.pretrained import model_for_absorber
        from xanesnet.store import format_backend

        format_backend(options.format)  # unknown format or missing package: fail before any work
        check_precision(options.precision)
        # no model given: the shipped model of the absorber element (Fe without one)
        model_path = model_for_absorber(options.model, options.absorber, "model= / --model")
        loaded = load_model(model_path)
        loaded.to(options.device)
        absorber = resolve_absorber(options.absorber, loaded.element, loaded.label)
        if options.unique_sites and not isinstance(absorber, str):
            raise ValueError(
                f"unique_sites: needs the element as absorber (every {loaded.element} site), "
                f"not the atom index {absorber!r}"
            )
        input_list = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
        if holds_structures([inputs]):  # one structure (an Atoms is also a sequence of atoms)
            input_list = [inputs]
        memory = MemoryStructures(input_list) if holds_structures(input_list) else None
        return cls(
            options,
            loaded,
            model_path,
            file_sha256(model_path),
            absorber,
            input_list,
            Path(output),
            memory,
        )

    def description(self) -> dict[str, Any]:
        """What identifies the job in its output (a resume must match it)."""
        from xanesnet import __version__

        options = self.options
        job = {
            "model_sha256": self.model_sha256,
            "model": {
                k: self.model.metadata[k] for k in ("element", "edge", "n_members", "descriptor")
            },
            # in-memory structures are identified by their content (open_store), not named
            "inputs": [MEMORY_SOURCE] if self.memory else [str(p) for p in self.inputs],
            "select": options.select,
            "absorber": self.absorber,
            "chunk_size": int(options.chunk_size),
            "shard": list(options.shard) if options.shard else None,
            "xanesnet_version": __version__,
        }
        if options.precision != "float32":  # absent for float32: older outputs still resume
            job["precision"] = options.precision
        if options.keep_info:  # absent when none: outputs as before, and they resume
            job["keep_info"] = list(options.keep_info)
        if options.unique_sites:  # absent when off: outputs as before, and they resume
            from xanesnet.descriptors.symmetry import DEFAULT_SYMPREC

            job["unique_sites"] = {"symprec": DEFAULT_SYMPREC}
        return job

    def open_store(self) -> PredictionStore:
        """The output, created or opened for resuming. The input files are fingerprinted
        (location, size, modification time, in input order): a resume over added, deleted or
        edited inputs is refused, naming them. Structures in memory are fingerprinted by
        the content digest of each chunk (:mod:`xanesnet.io.memory`)."""
        from xanesnet.store import PredictionStore
        from xanesnet.store.inputs import InputFingerprint

        if self.memory is not None:
            # one entry per chunk: its structure count as the size, 60 bits of its content
            # digest as the time stamp, so that a change names the chunk that differs
            inputs: Any = InputFingerprint(
                tuple(
                    (f"{MEMORY_SOURCE} chunk {k}", n, int(digest[:15], 16))
                    for k, (n, digest) in enumerate(self.memory.digests(self.options.chunk_size))
                )
            )
        else:
            sources = self.sources

            def inputs() -> InputFingerprint:  # a new output makes it in a thread
                locations, _ = locations_and_stems(sources, 0, len(sources))
                return InputFingerprint.of(locations)

        return PredictionStore(
            self.output,
            self.description(),
            self.model.energies,
            has_spread=self.model.has_spread,
            format=self.options.format,
            inputs=inputs,
            site_columns=column_names(self.options.keep_info),
            unique_sites=self.options.unique_sites,
        )

    def chunks(
        self,
        done: Container[int],
        ledger: ChunkLedger,
        expect: Callable[[int | None], None],
    ) -> Iterator[Chunk]:
        """The chunks this run computes: read in input order, those already committed
        (``done``) or of another shard counted as skipped in ``ledger``. ``expect`` gets the
        number of structures the inputs hold (None: unknown) before the first chunk is read."""
        options = self.options
        if self.memory is not None:
            expect(len(self.memory))
            chunks = self.memory.chunks(options.chunk_size)
        else:
            sources = self.sources
            expect(expected_structures(sources, options.select))
            # the block reader of .xyz folders keeps no metadata: kept info needs the others
            fast_xyz = False if options.keep_info else options.fast_xyz
            chunks = iter_chunks(
                sources, options.chunk_size, select=options.select, fast_xyz=fast_xyz
            )
        for chunk in chunks:
            if chunk.index in done or not options.in_shard(chunk.index):
                ledger.skipped += 1
                continue
            yield chunk

    @functools.cached_property
    def sources(self) -> Any:
        """The inputs resolved into sources (:func:`~xanesnet.io.sources.resolve_sources`),
        once per job (a folder of a million files takes a second to list): skipped files are
        warned about once."""
        return resolve_sources(self.inputs, None, self.options.select, None)[0]

    def structure_columns(self, chunk: Chunk) -> StructureColumns:
        """The per-structure text columns of one chunk (source, kept info keys)."""
        return structure_columns(chunk, self.options.keep_info)

    def step(self, chunk: Chunk) -> ChunkResult:
        """:func:`~xanesnet.pipeline.step.run_step` on one chunk, in this process."""
        options = self.options
        return run_step(
            self.model,
            chunk.frames,
            self.absorber,
            backend=options.backend,
            n_threads=options.n_threads,
            precision=options.precision,
            unique_sites=options.unique_sites,
        )
