"""The batch pipeline: inputs read in chunks, descriptors and spectra per chunk, each chunk
committed to the output store (:func:`~xanesnet.pipeline.batch.predict_batch`)."""

from __future__ import annotations

from xanesnet.pipeline.batch import BatchSummary, predict_batch

__all__ = ["BatchSummary", "predict_batch"]
