"""The distributed jobs: compress, decompress and verify over WebDataset shards, on Ray actors.

Data flow and policies: docs/pipeline.md. Three folders and a module: ``compress/`` (the way in:
plan, code, commit), ``decompress/`` (the way back), ``execution/`` (where either runs: Ray, the
actor pool, the actors) and ``verify``. ``config`` holds the settings both directions share. What
they write and read, the output prefix, is ``s2c_pipeline.archive``.
"""

from s2c_pipeline.archive.run_record import ResumeRefused
from s2c_pipeline.archive.shard_stats import ShardStats
from s2c_pipeline.pipeline.compress.driver import compress
from s2c_pipeline.pipeline.compress.progress import format_summary
from s2c_pipeline.pipeline.compress.results import RunSummary, ShardResult
from s2c_pipeline.pipeline.config import DecodeConfig, RunConfig
from s2c_pipeline.pipeline.decompress.driver import DecompressSummary, decompress
from s2c_pipeline.pipeline.decompress.selection import SelectionError
from s2c_pipeline.pipeline.execution.scheduler import SchedulerError
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
