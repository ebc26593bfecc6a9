"""Streaming batch prediction: structures in, spectra out, for as many sites as there are.

Reading (:mod:`xanesnet.io`) runs in a background thread that fills a bounded queue of chunks;
the per-chunk step (:mod:`xanesnet.pipeline.step`: descriptors in C++ threads with the GIL
released, then the network) runs on each chunk, here or on Dask workers
(:mod:`xanesnet.pipeline.dask`); every chunk is then committed atomically to the output
(:mod:`xanesnet.pipeline.commit`, :mod:`xanesnet.store`: HDF5, zarr or CSV). Memory stays bounded
by a few chunks whatever the input size. Re-running the same job resumes it; a finished job is
left as it is.
"""

from __future__ import annotations

import dataclasses
import os
import queue
import threading
import time
import warnings
from collections.abc import Container, Iterable, Sequence
from pathlib import Path
from typing import Any

from xanesnet.io.memory import holds_structures
from xanesnet.pipeline.columns import site_columns
from xanesnet.pipeline.commit import ChunkLedger
from xanesnet.pipeline.dask import run_on_dask
from xanesnet.pipeline.job import Job
from xanesnet.pipeline.options import (
    DEFAULT_CHUNK_SIZE,
    BatchOptions,
    BatchSummary,
    absorber_elements,
    parse_shard,
)
from xanesnet.pipeline.progress import Progress

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "BatchOptions",
    "BatchSummary",
    "Job",
    "OutOfDomainWarning",
    "parse_shard",
    "predict_batch",
]


class OutOfDomainWarning(UserWarning):
    """Some sites of a job lie outside the model's training domain (said once per run)."""


def predict_batch(
    inputs: str | os.PathLike | Sequence[Any],
    output: str | os.PathLike,
    *,
    model: str | os.PathLike | None = None,
    absorber: int | str | Sequence[str] | None = None,
    select: str | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    n_threads: int = 0,
    backend: str | None = None,
    device: str = "cpu",
    precision: str = "float32",
    shard: tuple[int, int] | str | None = None,
    strict: bool = False,
    progress: bool = True,
    dask: str | None = None,
    format: str = "hdf5",
    fast_xyz: bool | None = None,
    unique_sites: bool = False,
    keep_info: str | Sequence[str] | None = None,
    options: BatchOptions | None = None,
) -> BatchSummary | dict[str, BatchSummary]:
    """Predict the spectra of every absorbing site of the inputs into an output folder.

    Args:
        inputs: files (any ASE format, multi-frame extxyz), folders of .xyz, globs, ASE
            databases (``.db``, ``postgresql://``); one or a list. Or structures in memory:
            one or an iterable (list, generator) of ``ase.Atoms`` and pymatgen
            ``Structure`` / ``Molecule`` objects (:mod:`xanesnet.io.memory`; a generator is
            gathered into a list first). Their ids are ``atoms.info["id"]`` where set, else
            ``mem:<n>`` (position in the input). Files are identified by path, size and
            modification time; structures in memory by a digest of their content (numbers,
            positions, cell, periodicity, id) per chunk: a resume is accepted only when the
            same structures come again in the same order, otherwise refused.
        output: output folder (see :mod:`xanesnet.store`); re-running resumes it.
        model: model file or shipped model name (default: the shipped K-edge model of the
            absorber element when ``absorber`` names one, else the Fe K-edge model; an
            element without a shipped model is refused, naming those shipped).
        absorber: None (default: every site of the model's element), that element's symbol,
            or an atom index. Another element than the model's is refused (ValueError); a
            structure where the index selects an atom of another element fails (recorded);
            structures without any site of the element are counted apart
            (``BatchSummary.no_sites``), not failures. Several elements (``"Fe,Cu"`` or
            ``["Fe", "Cu"]``, no ``model``): one job per element over the same inputs, each
            with its shipped model, into ``output/Fe``, ``output/Cu``, ... (each a normal
            output folder, resumable on its own); the result is then a dict element ->
            :class:`BatchSummary`.
        select: ASE database selection.
        chunk_size: structures per chunk (the unit of work, of commit and of resume).
            Larger chunks spread the fixed cost of a commit (a file, an fsync, the manifest)
            over more sites: 4096 runs ~8 % faster than 1024 on 2 cores.
        n_threads: descriptor and kernel ridge threads (0 = all cores).
        backend: descriptor backend ("cpp" or "numba"; default the best available).
        device: "cpu" or "cuda" for the network.
        precision: "float32" (default) or "bfloat16" for the networks: several times faster
            on CPUs with AMX / AVX-512 BF16 and on GPUs, spectra within ~0.03 % Δμ of float32
            (see :mod:`xanesnet.model.precision`). Part of the job: a resumed output keeps
            the precision it was started with.
        shard: ``(I, N)`` or ``"I/N"``: process only chunks k with k mod N == I.
        strict: raise on the first failed structure instead of recording it.
        progress: show a progress bar (stderr).
        dask: run chunks on Dask workers: ``"local"`` / ``"local:N"`` starts a
            ``distributed.LocalCluster`` (N worker processes, loopback only), anything else is
            the address of a running scheduler (``tcp://host:8786``). Output is identical to
            the single-process run; commits stay in this process.
        format: output format: ``"hdf5"`` (default: HDF5 chunks + ``predictions.h5``),
            ``"zarr"`` (zarr groups + ``predictions.zarr``; needs ``xanesnet[zarr]``) or
            ``"csv"`` (CSV files + ``predictions.csv``; small jobs). See :mod:`xanesnet.store`.
            Resuming an output requires the format it was started with.
        fast_xyz: read inputs that are all ``.xyz`` files straight into packed arrays
            (:mod:`xanesnet.io.xyz_blocks`; same output, several times the structures/s of
            the per-file readers): True always, False never, None (default) as the environment
            variable ``XANESNET_FAST_XYZ`` says, by default for inputs of at least
            :data:`xanesnet.io.fast_path.WORTH_FROM` files. Other file inputs with plain
            extended XYZ frames are packed frame by frame without ``ase.Atoms`` unless this
            is False (or the variable is "0").
        unique_sites: predict each symmetry-unique absorbing site of a crystal once (spglib,
            :mod:`xanesnet.descriptors.orbits`; structures not periodic in 3 D keep every
            site): one row per orbit, its representative (first) site with the column
            ``multiplicity``, and per structure its multiplicity-weighted mean spectrum
            (``structure_mean``; see :mod:`xanesnet.store`). Off by default (every site its
            row, outputs as before). Part of the job: a resume must use the same setting.
        keep_info: structure metadata to carry into the output as per-site columns
            ``info.<key>`` (``"charge,unique_id"`` or a list of keys): ASE database
            key-value pairs and ``unique_id``, extended XYZ comment-line keys, ``info`` of
            structures given in memory ("" where a structure lacks the key; numbers read back
            as float64 with NaN, see :mod:`xanesnet.pipeline.columns`). Part of the job. Every
            output also has the column ``source``: the file each site's structure was read
            from (``<memory>`` for structures given in memory). With keys to keep, ``.xyz``
            folders are read by the per-file readers (the block reader keeps no metadata).

        options: all of the above in one :class:`~xanesnet.pipeline.options.BatchOptions`
            (then the keyword arguments are not used).

    Returns:
        A :class:`BatchSummary`; failures are in the output's error tables. Sites outside
        the training domain are counted there and warned about once
        (:class:`OutOfDomainWarning`).
    """
    if options is None:
        options = BatchOptions(
            model=model,
            absorber=absorber,
            select=select,
            chunk_size=chunk_size,
            n_threads=n_threads,
            backend=backend,
            device=device,
            precision=precision,
            shard=shard,
            strict=strict,
            progress=progress,
            dask=dask,
            format=format,
            fast_xyz=fast_xyz,
            unique_sites=unique_sites,
            keep_info=keep_info or (),
        )
    reusable = isinstance(inputs, (str, os.PathLike, Sequence)) or holds_structures([inputs])
    if not reusable and isinstance(inputs, Iterable):
        inputs = list(inputs)  # a generator of structures: read once, used by every job
    elements = absorber_elements(options.absorber)
    if elements is not None and len(elements) > 1:
        return _predict_elements(inputs, Path(output), options, elements)
    if elements is not None:  # ["Cu"]: one element, the plain layout
        options = dataclasses.replace(options, absorber=elements[0])
    job = Job.start(inputs, output, options)
    started = time.perf_counter()
    store = job.open_store()
    try:
        if store.complete:
            return BatchSummary(job.output, 0, 0, 0, 0, len(store.committed), 0.0)
        bar = Progress(
            options.progress, job.absorber, options.chunk_size, store.committed, options.shard
        )
        ledger = ChunkLedger(store, bar, options.strict)
        try:
            if options.dask is not None:
                chunks = job.chunks(store.committed, ledger, bar.expect)
                run_on_dask(options.dask, job, chunks, ledger)
            else:
                _run_local(job, store.committed, ledger, bar)
        finally:
            bar.close()
        store.finish()
    finally:
        store.close()
    summary = ledger.summary(job.output, started)
    message = summary.domain_warning()
    if message is not None:  # once per run, for the whole job
        warnings.warn(message, OutOfDomainWarning, stacklevel=2)
    return summary


def _predict_elements(
    inputs: str | os.PathLike | Sequence[Any],
    output: Path,
    options: BatchOptions,
    elements: list[str],
) -> dict[str, BatchSummary]:
    """One job per absorber element, each with its shipped model, into ``output/ELEMENT``."""
    from xanesnet.model.pretrained import model_for_absorber

    if options.model is not None:
        raise ValueError(
            f"absorber {','.join(elements)}: several elements need one model each; leave the "
            "model out (each element's shipped model) or run one element per command"
        )
    for element in elements:  # every element's model exists, before any work
        model_for_absorber(None, element, "model= / --model")
    summaries = {}
    for element in elements:
        summary = predict_batch(
            inputs, output / element, options=dataclasses.replace(options, absorber=element)
        )
        assert isinstance(summary, BatchSummary)  # one element: one summary
        summaries[element] = summary
    return summaries


def _run_local(job: Job, done: Container[int], ledger: ChunkLedger, bar: Progress) -> None:
    """The local executor: a reader thread fills a bounded queue of chunks (memory stays flat);
    this thread runs the per-chunk step on each and hands the result to ``ledger``."""
    work: queue.Queue = queue.Queue(maxsize=2)
    stop = threading.Event()
    failure: list[BaseException] = []

    def produce() -> None:
        try:
            # the count goes through the queue: the bar is updated in the main thread only
            for chunk in job.chunks(done, ledger, lambda n: work.put(("expected", n))):
                while not stop.is_set():
                    try:
                        work.put(("chunk", chunk), timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
        except BaseException as exc:  # surfaced in the main thread
            failure.append(exc)
        finally:
            work.put(("end", None))

    reader = threading.Thread(target=produce, name="xanesnet-reader", daemon=True)
    reader.start()
    try:
        while True:
            kind, item = work.get()
            if kind == "end":
                break
            if kind == "expected":
                bar.expect(item)
                continue
            result = job.step(item)
            columns = site_columns(job.structure_columns(item), result.ids)
            ledger.record(item.index, len(item.frames), item.errors, result, columns)
        ledger.committer.wait()
    finally:
        stop.set()
        ledger.committer.shutdown()
    reader.join()
    if failure:
        raise failure[0]
