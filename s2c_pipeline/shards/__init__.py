"""Shards in: URL expansion, whole-shard tar reads over fsspec, output tar writing and publishing."""

from s2c_pipeline.shards.reader import ShardReadError, read_shard
from s2c_pipeline.shards.records import (
    DEFAULT_MAX_MEMBER_BYTES,
    IMAGE_EXTENSIONS,
    Member,
    Sample,
    ShardContents,
    image_member,
    normalise_name,
    split_name,
)
from s2c_pipeline.shards.storage import filesystem, is_transient, publish, read_range
from s2c_pipeline.shards.urls import expand_braces, expand_inputs
from s2c_pipeline.shards.writer import TarShardWriter

__all__ = [
    "DEFAULT_MAX_MEMBER_BYTES",
    "IMAGE_EXTENSIONS",
    "Member",
    "Sample",
    "ShardContents",
    "ShardReadError",
    "TarShardWriter",
    "expand_braces",
    "expand_inputs",
    "filesystem",
    "image_member",
    "is_transient",
    "normalise_name",
    "publish",
    "read_range",
    "read_shard",
    "split_name",
]
