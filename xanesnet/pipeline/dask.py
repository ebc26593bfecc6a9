"""The Dask executor of a batch job: the per-chunk step (:mod:`xanesnet.pipeline.step`) on Dask
workers, a bounded number of chunks in flight, results committed in this process."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from xanesnet.io.chunks import Chunk
from xanesnet.pipeline.columns import StructureColumns, site_columns
from xanesnet.pipeline.commit import ChunkLedger
from xanesnet.pipeline.step import run_step_on_worker

if TYPE_CHECKING:
    from xanesnet.pipeline.job import Job

__all__ = ["WORKER_MALLOC_ENV", "dask_client", "environ_restored", "run_on_dask"]

#: glibc malloc settings of the workers of a ``--dask local`` cluster (bytes; 32 MiB is the
#: largest mmap threshold glibc accepts). Set the same in the workers of a cluster of your own.
WORKER_MALLOC_ENV = {"MALLOC_TRIM_THRESHOLD_": 1 << 25, "MALLOC_MMAP_THRESHOLD_": 1 << 25}


@contextmanager
def environ_restored() -> Iterator[None]:
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


def dask_client(spec: str) -> tuple[Any, Any]:
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
        with dask.config.set(config), environ_restored():
            cluster = LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
            )
        return Client(cluster), cluster
    return Client(spec), None


def run_on_dask(spec: str, job: Job, chunks: Iterable[Chunk], ledger: ChunkLedger) -> None:
    """Compute ``chunks`` on the Dask cluster ``spec`` ("local", "local:N" or a scheduler
    address) and hand each result to ``ledger`` as it arrives; at most two chunks per worker
    are in flight (memory stays flat)."""
    from distributed import wait

    client, cluster = dask_client(spec)
    # index, size, read errors, per-structure text columns
    in_flight: dict[Any, tuple[int, int, list[tuple[str, str]], StructureColumns]] = {}
    limit = 2 * max(1, len(client.scheduler_info().get("workers", {})))
    options = job.options

    def settle(futures: Iterable[Any]) -> None:
        for future in futures:
            index, n_structures, read_errors, structures = in_flight.pop(future)
            result = future.result()
            columns = site_columns(structures, result.ids)
            ledger.record(index, n_structures, read_errors, result, columns)

    try:
        for chunk in chunks:
            future = client.submit(
                run_step_on_worker,
                str(job.model_path),
                job.model_sha256,
                chunk.frames,
                job.absorber,
                options.backend,
                options.n_threads,
                options.precision,
                options.unique_sites,
                pure=False,
            )
            in_flight[future] = (
                chunk.index,
                len(chunk.frames),
                chunk.errors,
                job.structure_columns(chunk),
            )
            while len(in_flight) >= limit:
                settle(wait(list(in_flight), return_when="FIRST_COMPLETED").done)
        while in_flight:
            settle(wait(list(in_flight), return_when="FIRST_COMPLETED").done)
        ledger.committer.wait()
    finally:
        ledger.committer.shutdown()
        client.close()
        if cluster is not None:
            cluster.close()
