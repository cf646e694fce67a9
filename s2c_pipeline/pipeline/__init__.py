"""The distributed jobs: compress, decompress and verify over WebDataset shards, on Ray actors.

Data flow and policies: docs/pipeline.md. Modules, in the order data meets them: ``resume``
(what to do), ``scheduler`` + ``actors`` (where), ``shard_job`` -> ``compress_shard`` (the work),
``commit`` (publish, marker last), and for the way back ``decompress``/``decode_job`` and
``verify``. What they write and read, the output prefix, is ``s2c_pipeline.archive``.
"""

from s2c_pipeline.archive.run_record import ResumeRefused
from s2c_pipeline.archive.shard_stats import ShardStats
from s2c_pipeline.pipeline.compress import compress
from s2c_pipeline.pipeline.config import DecodeConfig, RunConfig
from s2c_pipeline.pipeline.decompress import DecompressSummary, decompress
from s2c_pipeline.pipeline.progress import format_summary
from s2c_pipeline.pipeline.results import RunSummary, ShardResult
from s2c_pipeline.pipeline.scheduler import SchedulerError
from s2c_pipeline.pipeline.selection import SelectionError
from s2c_pipeline.pipeline.verify import VerifyReport, verify

__all__ = [
    "DecodeConfig",
    "DecompressSummary",
    "ResumeRefused",
    "RunConfig",
    "RunSummary",
    "SchedulerError",
    "SelectionError",
    "ShardResult",
    "ShardStats",
    "VerifyReport",
    "compress",
    "decompress",
    "format_summary",
    "verify",
]
