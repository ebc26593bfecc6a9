"""The batch pipeline around the stages: a batch job reads chunks (:mod:`xanesnet.io`), runs
one per-chunk step on each (:mod:`~xanesnet.pipeline.step`: descriptors, then the model;
locally or on Dask workers) and commits each chunk to the output store (:func:`predict_batch`)."""

from __future__ import annotations

from xanesnet.pipeline.batch import BatchOptions, BatchSummary, predict_batch

__all__ = ["BatchOptions", "BatchSummary", "predict_batch"]
