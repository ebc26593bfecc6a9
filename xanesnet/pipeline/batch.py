"""Streaming batch prediction: structures in, spectra out, for as many sites as there are.

Reading runs in a background thread that fills a bounded queue of chunks; descriptors (C++,
threads, GIL released) and the network (torch) run on each chunk in turn; every chunk is then
committed atomically to the output (:mod:`xanesnet.store`: HDF5, zarr or CSV). Memory stays
bounded by a few chunks whatever the input size. Re-running the same job resumes it; a finished
job is left as it is.
"""

from __future__ import annotations

import hashlib
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from xanesnet.descriptors.sites import compute_sites
from xanesnet.io.chunks import Chunk, iter_chunks
from xanesnet.io.sources import resolve_sources

if TYPE_CHECKING:
    from xanesnet.store import PredictionStore

__all__ = ["BatchSummary", "predict_batch", "parse_shard"]


#: Structures per chunk of :func:`predict_batch` and ``xanesnet-batch``.
DEFAULT_CHUNK_SIZE = 4096
#: Threads committing chunks (compression, file writes, fsync) in parallel.
WRITER_THREADS = 4


@dataclass(frozen=True)
class BatchSummary:
    """What a batch job did (this run only; earlier runs' chunks count as skipped)."""

    output: Path
    sites: int
    structures: int
    failed: int
    chunks_written: int
    chunks_skipped: int
    seconds: float

    @property
    def sites_per_second(self) -> float:
        return self.sites / self.seconds if self.seconds > 0 else float("inf")

    def line(self) -> str:
        return (
            f"{self.sites} sites from {self.structures} structures, {self.failed} failed, "
            f"{self.chunks_written} chunk(s) written, {self.chunks_skipped} already done; "
            f"{self.seconds:.1f} s, {self.sites_per_second:,.0f} sites/s -> {self.output}"
        )


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"I/N"`` (0 <= I < N) -> (I, N); None stays None."""
    if text is None:
        return None
    try:
        i, n = (int(v) for v in str(text).split("/"))
    except ValueError as exc:
        raise ValueError(f"--shard: expected I/N such as 0/4, got {text!r}") from exc
    if not (n >= 1 and 0 <= i < n):
        raise ValueError(f"--shard: expected 0 <= I < N, got {text!r}")
    return i, n


def _chunks(
    inputs: list[Any],
    select: str | None,
    chunk_size: int,
    fast_xyz: bool | None = None,
    on_sources: Callable[[Sequence[Any]], None] | None = None,
) -> Iterator[Chunk]:
    """The chunks of the inputs (:func:`xanesnet.io.chunks.iter_chunks`); ``on_sources`` is
    called with the resolved sources before the first chunk is read."""
    sources, _ = resolve_sources(inputs, None, select, None)
    if on_sources is not None:
        on_sources(sources)
    return iter_chunks(sources, chunk_size, select=select, fast_xyz=fast_xyz)


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class _Committer:
    """Chunks committed by WRITER_THREADS threads, overlapping the next chunks' work.

    Several writers, so that while some wait for the disk to take their chunk (fsync),
    another encodes the next one: with one writer, fsync waits behind the reader's disk
    traffic stalled a million-file run for ~20 s (71 s; 2 writers 64 s, 3–6 writers 48–50 s).
    At most 2 · WRITER_THREADS chunks are pending (memory stays flat); a failed commit is
    raised by the next :meth:`submit` or by :meth:`wait`.
    """

    def __init__(self, store: PredictionStore) -> None:
        self.store = store
        self.pool = ThreadPoolExecutor(WRITER_THREADS, thread_name_prefix="xanesnet-writer")
        self.pending: list[Any] = []

    def submit(
        self,
        index: int,
        ids: Sequence[str],
        sites: np.ndarray,
        spectra: np.ndarray,
        spread: np.ndarray,
        errors: list[tuple[str, str]],
        n_structures: int,
    ) -> None:
        """Hand chunk ``index`` over (arguments of ``PredictionStore.commit``; the spread is
        dropped for a store without one)."""
        self._settle(2 * WRITER_THREADS - 1)
        spread = spread if self.store.has_spread else None
        args = (index, ids, sites, spectra, spread, errors, n_structures)
        self.pending.append(self.pool.submit(self.store.commit, *args))

    def wait(self) -> None:
        """Wait for every commit handed over; raise the first that failed."""
        self._settle(0)

    def shutdown(self) -> None:
        """Let the writers finish what they were given (also after an error), then stop."""
        self.pool.shutdown(wait=True)

    def _settle(self, keep: int) -> None:
        while len(self.pending) > keep:
            self.pending.pop(0).result()


def predict_batch(
    inputs: str | os.PathLike | Sequence[Any],
    output: str | os.PathLike,
    *,
    model: str | os.PathLike | None = None,
    absorber: int | str | None = None,
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
) -> BatchSummary:
    """Predict the spectra of every absorbing site of the inputs into an output folder.

    Args:
        inputs: files (any ASE format, multi-frame extxyz), folders of .xyz, globs, ASE
            databases (``.db``, ``postgresql://``); one or a list.
        output: output folder (see :mod:`xanesnet.store`); re-running resumes it.
        model: model file (default: the shipped model for Fe K-edge).
        absorber: element symbol (every site of it) or atom index; default the model's element.
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
            (:mod:`xanesnet.io.chunks`; same output, several times the structures/s of the
            ``ase.Atoms`` path): True always, False never, None (default) as the environment
            variable ``XANESNET_FAST_XYZ`` says, by default for inputs of at least
            :data:`xanesnet.io.chunks.AUTO_MIN_FILES` files. Other file inputs with plain
            extended XYZ frames are packed frame by frame without ``ase.Atoms`` unless this
            is False (or the variable is "0").

    Returns:
        A :class:`BatchSummary`; failures are in the output's error tables.
    """
    from xanesnet.model.files import load_model
    from xanesnet.model.precision import check_precision
    from xanesnet.model.pretrained import resolve_model_path
    from xanesnet.store import PredictionStore, format_backend

    format_backend(format)  # unknown format or missing package: fail before any work
    check_precision(precision)
    if chunk_size < 1:
        raise ValueError(f"chunk_size: expected a positive integer, got {chunk_size}")
    shard = parse_shard(shard) if isinstance(shard, str) else shard
    model_path = resolve_model_path(model, "model")
    loaded = load_model(model_path)
    loaded.to(device)
    if absorber is None:
        absorber = loaded.element
    input_list = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    from xanesnet import __version__

    job = {
        "model_sha256": _file_digest(model_path),
        "model": {k: loaded.metadata[k] for k in ("element", "edge", "n_members", "descriptor")},
        "inputs": [str(p) for p in input_list],
        "select": select,
        "absorber": absorber,
        "chunk_size": int(chunk_size),
        "shard": list(shard) if shard else None,
        "xanesnet_version": __version__,
    }
    if precision != "float32":  # absent for float32: outputs of earlier versions still resume
        job["precision"] = precision
    store = PredictionStore(
        output, job, loaded.energies, has_spread=loaded.has_spread, format=format
    )
    started = time.perf_counter()
    if store.complete:
        return BatchSummary(Path(output), 0, 0, 0, 0, len(store.committed), 0.0)
    done = store.committed

    if dask is not None:
        return _predict_dask(
            dask,
            store,
            loaded,
            model_path,
            job["model_sha256"],
            input_list,
            select,
            chunk_size,
            absorber,
            backend,
            n_threads,
            shard,
            strict,
            progress,
            Path(output),
            started,
            fast_xyz,
            precision,
        )

    # Reading in a background thread, bounded queue: memory stays flat.
    work: queue.Queue = queue.Queue(maxsize=2)
    stop = threading.Event()
    failure: list[BaseException] = []

    def expect(sources: Sequence[Any]) -> None:
        work.put(("expected", expected_structures(sources, select)))

    def produce() -> None:
        try:
            chunks = _chunks(input_list, select, chunk_size, fast_xyz, expect)
            for item in chunks:
                index = item[0]
                if index in done or (shard and index % shard[1] != shard[0]):
                    work.put(("skip", index))
                    continue
                while not stop.is_set():
                    try:
                        work.put(("chunk", item), timeout=0.2)
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
    committer = _Committer(store)
    bar = _Progress(progress, absorber, chunk_size, done, shard)
    sites = structures = failed = written = skipped = 0
    try:
        while True:
            kind, item = work.get()
            if kind == "end":
                break
            if kind == "expected":
                bar.expect(item)
                continue
            if kind == "skip":
                skipped += 1
                continue
            index, chunk, read_errors = item
            features, ids, site_index, errors = (
                compute_sites(
                    loaded.descriptor, chunk, absorber, backend=backend, n_threads=n_threads
                )
                if chunk
                else (np.empty((0, loaded.descriptor.n_features)), [], np.empty(0, int), [])
            )
            errors = read_errors + errors
            if strict and errors:
                raise ValueError(f"{errors[0][0]}: {errors[0][1]} (--strict)")
            mean, spread = loaded.predict_features(
                features, n_threads=n_threads, precision=precision
            )
            committer.submit(index, ids, site_index, mean, spread, errors, len(chunk))
            sites += len(ids)
            structures += len(chunk)
            failed += len(errors)
            written += 1
            bar.update(len(ids), len(chunk), failed)
        committer.wait()
    finally:
        stop.set()
        committer.shutdown()
        bar.close()
    reader.join()
    if failure:
        raise failure[0]
    store.finish()
    return BatchSummary(
        Path(output), sites, structures, failed, written, skipped, time.perf_counter() - started
    )


_WORKER_MODELS: dict[str, Any] = {}


def _worker_predict(
    model_path: str,
    model_sha256: str,
    chunk: Sequence[Any],
    absorber: Any,
    backend: str | None,
    n_threads: int,
    precision: str = "float32",
) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, list[tuple[str, str]]]:
    """One chunk (``ase.Atoms`` or a PackedChunk) on a Dask worker (the model is loaded once
    per worker process)."""
    from xanesnet.model.files import load_model

    model = _WORKER_MODELS.get(model_sha256)
    if model is None:
        model = _WORKER_MODELS[model_sha256] = load_model(model_path)
    features, ids, sites, errors = compute_sites(
        model.descriptor, chunk, absorber, backend=backend, n_threads=n_threads
    )
    mean, spread = model.predict_features(features, n_threads=n_threads, precision=precision)
    return ids, sites, mean, spread, errors


#: glibc malloc settings of the workers of a ``--dask local`` cluster (bytes; 32 MiB is the
#: largest mmap threshold glibc accepts). Set the same in the workers of a cluster of your own.
WORKER_MALLOC_ENV = {"MALLOC_TRIM_THRESHOLD_": 1 << 25, "MALLOC_MMAP_THRESHOLD_": 1 << 25}


@contextmanager
def _environ_restored() -> Iterator[None]:
    """Puts ``os.environ`` back as it was: starting a LocalCluster writes the workers' settings
    (OMP_NUM_THREADS=1, MALLOC_*, ...) into this process's environment and leaves them there."""
    saved = dict(os.environ)
    try:
        yield
    finally:
        for key in [k for k in os.environ if k not in saved]:
            del os.environ[key]
        for key, value in saved.items():
            if os.environ.get(key) != value:
                os.environ[key] = value


def _dask_client(spec: str) -> tuple[Any, Any]:
    """(client, cluster or None) for "local", "local:N" or a scheduler address."""
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:
        raise ValueError("--dask needs dask.distributed (pip install 'dask[distributed]')") from exc
    if spec == "local" or spec.startswith("local:"):
        workers = int(spec.split(":", 1)[1]) if ":" in spec else (os.cpu_count() or 1)
        if workers < 1:
            raise ValueError(f"--dask: expected local:N with N >= 1, got {spec!r}")
        import dask

        # Set in each worker's environment before it starts (glibc reads them only then).
        # Dask's default MALLOC_TRIM_THRESHOLD_=65536 also fixes the mmap threshold at 128 KiB,
        # so every chunk's arrays were mapped, page-faulted in and unmapped again: 12 page faults
        # per site, 30 % of a worker's time. Large thresholds let the arrays be reused.
        prefix = "distributed.nanny.pre-spawn-environ."
        config = {prefix + k: v for k, v in WORKER_MALLOC_ENV.items()}
        with dask.config.set(config), _environ_restored():
            cluster = LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
            )
        return Client(cluster), cluster
    return Client(spec), None


def _predict_dask(
    spec: str,
    store: Any,
    loaded: Any,
    model_path: Path,
    model_sha256: str,
    inputs: list[Any],
    select: str | None,
    chunk_size: int,
    absorber: Any,
    backend: str | None,
    n_threads: int,
    shard: tuple[int, int] | None,
    strict: bool,
    progress: bool,
    output: Path,
    started: float,
    fast_xyz: bool | None = None,
    precision: str = "float32",
) -> BatchSummary:
    from distributed import wait

    client, cluster = _dask_client(spec)
    bar = _Progress(progress, absorber, chunk_size, store.committed, shard)
    done = store.committed
    in_flight: dict[Any, tuple[int, list[tuple[str, str]], int]] = {}
    limit = 2 * max(1, len(client.scheduler_info().get("workers", {})))
    totals = {"sites": 0, "structures": 0, "failed": 0, "written": 0, "skipped": 0}

    committer = _Committer(store)

    def commit(future: Any) -> None:
        index, read_errors, n_structures = in_flight.pop(future)
        ids, sites, mean, spread, errors = future.result()
        errors = read_errors + errors
        if strict and errors:
            raise ValueError(f"{errors[0][0]}: {errors[0][1]} (--strict)")
        committer.submit(index, ids, sites, mean, spread, errors, n_structures)
        totals["sites"] += len(ids)
        totals["structures"] += n_structures
        totals["failed"] += len(errors)
        totals["written"] += 1
        bar.update(len(ids), n_structures, totals["failed"])

    try:
        chunks = _chunks(
            inputs,
            select,
            chunk_size,
            fast_xyz,
            lambda sources: bar.expect(expected_structures(sources, select)),
        )
        for index, chunk, read_errors in chunks:
            if index in done or (shard and index % shard[1] != shard[0]):
                totals["skipped"] += 1
                continue
            future = client.submit(
                _worker_predict,
                str(model_path),
                model_sha256,
                chunk,
                absorber,
                backend,
                n_threads,
                precision,
                pure=False,
            )
            in_flight[future] = (index, read_errors, len(chunk))
            while len(in_flight) >= limit:  # bounded: memory stays flat
                finished = wait(list(in_flight), return_when="FIRST_COMPLETED").done
                for future in finished:
                    commit(future)
        while in_flight:
            for future in wait(list(in_flight), return_when="FIRST_COMPLETED").done:
                commit(future)
        committer.wait()
    finally:
        committer.shutdown()
        bar.close()
        client.close()
        if cluster is not None:
            cluster.close()
    store.finish()
    return BatchSummary(
        output,
        totals["sites"],
        totals["structures"],
        totals["failed"],
        totals["written"],
        totals["skipped"],
        time.perf_counter() - started,
    )


#: A single file larger than this may hold many frames: its structure count is not guessed.
ONE_STRUCTURE_BYTES = 1 << 20


def expected_structures(sources: Sequence[Any], select: str | None = None) -> int | None:
    """How many structures the inputs hold, where that is cheap to know, for the ETA.

    One per file of a folder (the XANESNET layout) and per single file of at most
    :data:`ONE_STRUCTURE_BYTES`; the selected rows of each database (``count``). None when a
    larger file may hold many frames or a database cannot be counted.

    Args:
        sources: resolved sources (:func:`xanesnet.io.sources.resolve_sources`).
        select: ASE database selection.
    """
    from xanesnet.io.sources import FolderSources

    total = 0
    for segment in getattr(sources, "segments", [sources]):
        if isinstance(segment, FolderSources):
            total += len(segment)
            continue
        for source in segment:
            if source.kind == "db":
                try:
                    import ase.db

                    with ase.db.connect(source.location) as db:
                        total += db.count(select) if select else db.count()
                except Exception:  # an unreadable database fails later, with its error
                    return None
            else:
                try:
                    if os.path.getsize(source.location) > ONE_STRUCTURE_BYTES:
                        return None
                except OSError:
                    pass  # fails later, recorded as one structure's error
                total += 1
    return total


class _Progress:
    """The tqdm bar of a job (sites, sites/s, failures) with an ETA: its total is the
    structures still to do, from :func:`expected_structures`, times the sites per structure
    seen so far (exact from the start when the absorber is an atom index)."""

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
        try:
            from tqdm import tqdm
        except ImportError:
            self.enabled = False
            return
        self.bar = tqdm(
            unit="site", unit_scale=True, desc="predicting", file=sys.stderr, smoothing=0.1
        )

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
        self.bar.refresh()

    def update(self, sites: int, structures: int, failed: int) -> None:
        """A chunk is done: ``sites`` predicted from ``structures``; ``failed`` so far."""
        self.sites += sites
        self.structures += structures
        self._open()
        if self.bar is None:
            return
        self.bar.update(sites)
        self.bar.set_postfix_str(f"failed {failed}", refresh=False)
        self._set_total()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
