"""Reading a committed output shard back and pairing its samples with their manifest rows.

Rows are written in the order of the tar's samples (shard-problem rows last), and the output tar
keeps the input's grouping, so the n-th sample row belongs to the n-th sample. Pairing by position
rather than by key keeps repeated keys apart; the keys are still compared, so a tar and a manifest
that do not belong together are caught. Compress keeps the samples of a repeated key verbatim
(status ``bad_name``), so their output members group exactly as the input's did; the reader's
report of the repeat is expected there and is not damage (``damage``).
"""

from __future__ import annotations

import io
import math
import tarfile
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import fsspec

from s2c_pipeline.archive.status import Status
from s2c_pipeline.shards import Member, Sample, ShardContents, read_shard


@dataclass(frozen=True)
class RowRef:
    """The manifest fields a decode needs, small enough to ship to actors by the thousand."""

    position: int
    """Index among the shard's sample rows (shard-problem rows excluded)."""
    key: str
    status: Status
    s2c_member: str | None
    s2c_offset: int | None
    s2c_bytes: int | None
    decoded_sha256: str | None
    carried_members: tuple[str, ...]
    latents_sha256: str | None = None
    """Absent from manifests written before format 2 (then the pixel hash alone decides)."""


REPEATED_KEY_PROBLEM = "duplicate key "
"""How the shard reader's line for a repeated key starts (``shards.reader``)."""


class ShardMismatch(ValueError):
    """An output tar that does not match its manifest (edited, swapped or damaged)."""


def damage(contents: ShardContents) -> tuple[str, ...]:
    """The reader's problems with an output tar, less its reports of repeated keys."""
    return tuple(p for p in contents.problems if not p.startswith(REPEATED_KEY_PROBLEM))


def sample_rows(rows: Sequence[Mapping[str, Any]]) -> list[RowRef]:
    """RowRefs of the sample rows of one shard's manifest, in order.

    Takes pyarrow's ``to_pylist`` dicts or pandas records (where null integers are NaN floats and
    lists are arrays).
    """
    refs = []
    for row in rows:
        if row["status"] == Status.SHARD_PROBLEM:
            continue
        carried_names = row["carried_members"]
        refs.append(
            RowRef(
                position=len(refs),
                key=row["key"],
                status=Status(row["status"]),
                s2c_member=_text(row["s2c_member"]),
                s2c_offset=_integer(row["s2c_offset"]),
                s2c_bytes=_integer(row["s2c_bytes"]),
                decoded_sha256=_text(row["decoded_sha256"]),
                carried_members=tuple(carried_names) if carried_names is not None else (),
                latents_sha256=_text(row.get("latents_sha256")),
            )
        )
    return refs


def _integer(value: Any) -> int | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else int(value)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def paired_sample(contents: ShardContents, ref: RowRef, expected_samples: int) -> Sample:
    """The sample of ``contents`` that ``ref`` describes; ShardMismatch when they disagree."""
    if problems := damage(contents):
        raise ShardMismatch(f"{contents.url}: the output tar has problems: {problems[0]}")
    if len(contents.samples) != expected_samples:
        raise ShardMismatch(
            f"{contents.url}: {len(contents.samples)} samples in the tar, {expected_samples} rows in the manifest"
        )
    sample = contents.samples[ref.position]
    if sample.key != ref.key:
        raise ShardMismatch(
            f"{contents.url}: sample {ref.position} has key {sample.key!r}, the manifest says {ref.key!r}"
        )
    return sample


def bitstream_member(sample: Sample, ref: RowRef) -> Member:
    """The row's .s2c member in its sample; ShardMismatch when it is missing."""
    for member in sample.members:
        if member.name == ref.s2c_member:
            return member
    raise ShardMismatch(
        f"sample {ref.key!r}: member {ref.s2c_member!r} named by the manifest is not in the tar"
    )


def carried(sample: Sample, ref: RowRef) -> list[Member]:
    """The sample's members other than its bitstream, checked against the manifest's list."""
    members = [m for m in sample.members if m.name != ref.s2c_member]
    names = tuple(m.name for m in members)
    if sorted(names) != sorted(ref.carried_members):
        raise ShardMismatch(
            f"sample {ref.key!r}: members {list(names)} in the tar, the manifest lists {list(ref.carried_members)}"
        )
    return members


def contents_from_bytes(data: bytes, url: str) -> ShardContents:
    """The shard reader's view of a tar already in memory (so ``verify`` downloads each tar once).

    Uses fsspec's in-process memory filesystem under a unique name, removed afterwards.
    """
    fs = fsspec.filesystem("memory")
    path = f"/s2c-verify/{uuid.uuid4().hex}.tar"
    fs.pipe_file(path, data)
    try:
        contents = read_shard(f"memory://{path}", attempts=1)
    finally:
        fs.rm_file(path)
    return replace(contents, url=url)


def data_offsets(data: bytes) -> dict[int, int]:
    """Header offset -> data offset of every member (``Member.offset`` is the header's)."""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        return {info.offset: info.offset_data for info in tar.getmembers()}
