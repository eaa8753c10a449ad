"""Streaming: observed data larger than memory, read ahead one batch per step."""

from pymc_adadelta.streaming.batches import StreamingBatches
from pymc_adadelta.streaming.parquet import ParquetColumns

__all__ = ["ParquetColumns", "StreamingBatches"]
