"""Streaming: observed data larger than memory, read ahead one batch per step."""

from pymc_adadelta.streaming.batches import StreamingBatches

__all__ = ["StreamingBatches"]
