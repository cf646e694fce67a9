"""A seeded two-stage sample of a sharded dataset: shards at random, then images at random in them.

Only the chosen shards are downloaded; every other shard is known by its size from a directory
listing (one request per folder, not per shard), so the dataset's total bytes are exact and its
image count is projected from images per byte of the shards that were read. Reading a whole shard
is the unit of cost (tars have no index), so the design reads a few shards and takes several
images from each: by default ``ceil(N / 10)`` shards, at most all of them.
"""

from __future__ import annotations

import json
import logging
import math
import posixpath
import random
import tarfile
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from s2c_pipeline.archive.members import bitstream_member_name
from s2c_pipeline.shards import (
    Sample,
    ShardContents,
    ShardReadError,
    TarShardWriter,
    filesystem,
    image_member,
    read_shard,
)
from s2c_pipeline.shards.records import DEFAULT_MAX_MEMBER_BYTES

log = logging.getLogger(__name__)

IMAGES_PER_SHARD = 10
"""Default images taken from each shard read: spreads the sample without downloading every shard."""


def tar_padded(size: int) -> int:
    """Bytes a member's data takes in a tar (rounded up to 512-byte blocks)."""
    return -(-size // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE


def tar_size(body: float) -> float:
    """A tar's size from its members' bytes: the end-of-archive blocks, then padding to a record."""
    return -(-(body + 2 * tarfile.BLOCKSIZE) // tarfile.RECORDSIZE) * tarfile.RECORDSIZE


class SampleError(Exception):
    """Nothing to sample: no shard could be read, or the shards read hold no image."""


@dataclass(frozen=True)
class ShardSize:
    url: str
    size_bytes: int


@dataclass(frozen=True)
class SampleDesign:
    """How many images to code and how to spread them.

    Exactly one of ``images`` (a count) and ``fraction`` (of the dataset's projected image count,
    fixed after the first shard is read) is set. ``shards`` is how many shards to spread them over
    (None: ``ceil(images / 10)``); more shards are read only when the chosen ones hold too few images.
    """

    images: int | None = 200
    fraction: float | None = None
    shards: int | None = None
    seed: int = 0
    max_member_bytes: int = DEFAULT_MAX_MEMBER_BYTES

    def __post_init__(self) -> None:
        if (self.images is None) == (self.fraction is None):
            raise ValueError("give either a sample size or a fraction, not both or neither")
        if self.images is not None and self.images < 1:
            raise ValueError(f"the sample size must be at least 1, got {self.images}")
        if self.fraction is not None and not 0 < self.fraction <= 1:
            raise ValueError(f"the fraction must be in (0, 1], got {self.fraction}")
        if self.shards is not None and self.shards < 1:
            raise ValueError(f"the number of shards to read must be at least 1, got {self.shards}")


@dataclass(frozen=True)
class ShardTally:
    """A shard that was read in full: what is known about it exactly.

    ``images`` counts samples with an image member (the ones ``s2c compress`` would try to code);
    ``image_bytes`` is the sum of those members' sizes, ``image_tar_bytes`` the same rounded up to
    tar blocks (what they occupy inside the shard).
    """

    url: str
    size_bytes: int
    images: int
    image_bytes: int
    image_tar_bytes: int
    sampled: int
    carried_bytes: int
    """Bytes of the other members (``.json``, ``.cls``...), which an output shard carries verbatim."""
    output_fixed_bytes: int
    """Bytes of this shard's output tar other than image data: every header (images renamed to
    KEY.s2c) and the carried members; add the bitstreams' padded sizes and ``tar_size`` gives the
    output shard's size."""
    problems: int = 0


@dataclass(frozen=True)
class PickedImage:
    """One sampled image and its bytes. ``weight`` = images in its shard / images sampled there."""

    shard_index: int
    shard_url: str
    key: str
    member: str
    data: bytes
    weight: float
    label: str | None = None
    """The sample's group (``sample_label``), or None when it has none."""


@dataclass(frozen=True)
class ShardDraw:
    tally: ShardTally
    picked: tuple[PickedImage, ...]
    target: int
    """The sample size aimed for (known once the first shard is read, for a fraction)."""


@dataclass(frozen=True)
class SkippedShard:
    url: str
    reason: str


def list_shard_sizes(urls: Sequence[str], storage_options: dict | None = None) -> list[ShardSize]:
    """Sizes of ``urls`` from one listing per parent folder (s3fs serves repeats from its cache)."""
    by_parent: dict[tuple[int, str], list[tuple[str, str]]] = defaultdict(list)
    filesystems = {}
    for url in urls:
        fs, path = filesystem(url, storage_options)
        filesystems[id(fs)] = fs
        by_parent[(id(fs), posixpath.dirname(path.rstrip("/")))].append((url, path))
    sizes: dict[str, int] = {}
    for (fs_id, parent), entries in by_parent.items():
        fs = filesystems[fs_id]
        listing = {info["name"].rstrip("/"): info.get("size") for info in fs.ls(parent, detail=True)}
        for url, path in entries:
            size = listing.get(path.rstrip("/"))
            sizes[url] = int(size) if size is not None else int(fs.size(path))
    return [ShardSize(url, sizes[url]) for url in urls]


def draw_sample(
    shards: Sequence[ShardSize],
    design: SampleDesign,
    *,
    storage_options: dict | None = None,
    skipped: list[SkippedShard] | None = None,
    group_by: str | None = None,
) -> Iterator[ShardDraw]:
    """Read shards in a seeded random order and yield each with the images picked from it.

    ``group_by`` labels each picked image (``sample_label``).

    Stops once the sample is complete, or when every shard has been read. A shard that cannot be
    read is logged, appended to ``skipped`` and replaced by the next one in the order (its bytes
    still count in the dataset's total).
    """
    rng = random.Random(design.seed)
    order = list(shards)
    rng.shuffle(order)
    total_bytes = sum(s.size_bytes for s in shards)
    target = design.images
    per_shard: int | None = None
    taken = 0
    read = 0
    for shard in order:
        if target is not None and taken >= target:
            break
        try:
            contents = read_shard(shard.url, storage_options=storage_options,
                                  max_member_bytes=design.max_member_bytes)
        except ShardReadError as exc:
            log.warning("%s; left out of the sample, the next shard in the random order replaces it", exc)
            if skipped is not None:
                skipped.append(SkippedShard(shard.url, str(exc)))
            continue
        with_image = [(s, m) for s in contents.samples if (m := image_member(s)) is not None and not m.omitted]
        members = [(s.key, m) for s, m in with_image]
        if target is None:  # fraction of the projected image count, known after the first shard
            projected = len(members) / max(contents.size_bytes, 1) * total_bytes
            target = max(1, math.ceil(design.fraction * projected))
            log.info("sampling %.4g of about %d images: %d images", design.fraction, round(projected), target)
        if per_shard is None:
            spread = design.shards or math.ceil(target / IMAGES_PER_SHARD)
            per_shard = math.ceil(target / max(1, min(spread, len(shards))))
        count = min(per_shard, target - taken, len(members))
        chosen = sorted(rng.sample(range(len(members)), count))
        weight = len(members) / count if count else 0.0
        picked = tuple(
            PickedImage(read, shard.url, members[i][0], members[i][1].name, members[i][1].data, weight,
                        sample_label(with_image[i][0], group_by) if group_by else None)
            for i in chosen
        )
        tally = ShardTally(
            url=shard.url,
            size_bytes=contents.size_bytes,
            images=len(members),
            image_bytes=sum(len(m.data) for _, m in members),
            image_tar_bytes=sum(tar_padded(len(m.data)) for _, m in members),
            sampled=count,
            carried_bytes=sum(len(m.data) for s in contents.samples for m in s.members) - sum(len(m.data) for _, m in members),
            output_fixed_bytes=output_fixed_bytes(contents),
            problems=len(contents.problems),
        )
        taken += count
        read += 1
        yield ShardDraw(tally, picked, target)


def sample_label(sample: Sample, group_by: str) -> str | None:
    """A sample's group: the text of its ``.cls`` member for ``cls``, else the field ``group_by``
    (dots for nested keys: ``meta.source``) of its ``.json`` member; None when it has neither."""
    members = {m.extension: m for m in sample.members}
    if group_by in members and group_by != "json":
        text = members[group_by].data.decode("utf-8", "replace").strip()
        return text or None
    if "json" not in members:
        return None
    try:
        value: Any = json.loads(members["json"].data)
    except ValueError:
        return None
    for part in group_by.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return None if value is None or isinstance(value, (dict, list)) else str(value)


def output_fixed_bytes(contents: ShardContents) -> int:
    """Headers and carried members of the shard ``s2c compress`` would write for ``contents``.

    Built with the pipeline's own tar writer and empty stand-ins, so header sizes (pax records for
    long or non-ASCII names) are exactly the writer's.
    """
    writer = TarShardWriter()
    carried = 0
    end = 0
    for sample in contents.samples:
        image = image_member(sample)
        for member in sample.members:
            if member is image and not member.omitted:
                end = writer.add(bitstream_member_name(sample.key), b"")
            else:
                end = writer.add(member.name, b"")
                carried += tar_padded(len(member.data))
    return end + carried
