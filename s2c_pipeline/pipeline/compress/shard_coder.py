"""One input shard in memory -> the output tar's bytes and one manifest row per sample.

A pure function of its inputs (no Ray, no storage), so it is tested directly. Per-sample failure
policy ``record_and_keep_original``: any sample that is not coded gets a manifest row with its
status and error, and its original image member is carried into the output tar verbatim, so the
output dataset is always whole. This module builds every field of every row (``archive.status``
has the vocabulary): the codec gives measurements, or a typed refusal whose status
``archive.outcomes`` names (``bad_input``, ``skipped_too_large``, ``encode_error``,
``verify_failed``); besides those

* ``ok``: coded, decoded again (decode-verify), metrics and the decoded pixels' hash recorded;
* ``bad_input`` for a sample without an image member, or one that already holds a ``.s2c`` member;
* ``bad_name``: a sample ``decompress`` could not write back as files under its names (a backslash
  or control character, a key that repeats in the shard...: ``decompress.sample_names``); not coded, so that
  its members, carried verbatim, are restored exactly by ``decompress --format webdataset``;
* ``shard_problem``: one row per problem the reader found in the tar (truncated, unreadable).

Carried members are written under ``shards.normalise_name`` (``./a.json`` becomes ``a.json``, as
its key ``a`` already is), so the output tar groups into the same samples as the input.

Samples are taken ``batch_size * WINDOW_BATCHES`` at a time, so that images of one padded size can
share a pass on the device without a whole shard's pixels in memory at once.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from s2c_pipeline.archive.manifest import ManifestRow
from s2c_pipeline.archive.members import S2C_EXTENSION, bitstream_member_name
from s2c_pipeline.archive.outcomes import status_of
from s2c_pipeline.archive.shard_stats import ShardStats
from s2c_pipeline.archive.status import Status
from s2c_pipeline.codec.encode_and_verify import Coded, EncodeSettings, NotCoded, code_images
from s2c_pipeline.codec.image_codec import ImageCodec
from s2c_pipeline.imaging import metrics
from s2c_pipeline.pipeline.decompress.sample_names import ShardNames
from s2c_pipeline.shards import Member, Sample, ShardContents, TarShardWriter, image_member, normalise_name

log = logging.getLogger(__name__)

WINDOW_BATCHES = 4
"""Samples are prepared ``batch_size * WINDOW_BATCHES`` at a time, so that images of one padded
size find each other without holding a whole shard's pixels in memory."""


@dataclass(frozen=True)
class ReusedSample:
    """An ok sample of an earlier run kept by ``--retry-failed``: its row and its .s2c bytes."""

    row: ManifestRow
    s2c: bytes


@dataclass(frozen=True)
class ShardOutput:
    tar: bytes
    rows: tuple[ManifestRow, ...]
    stats: ShardStats


def compress_shard(
    contents: ShardContents,
    codec: ImageCodec,
    settings: EncodeSettings,
    *,
    output_url: str,
    attempts: int = 1,
    reuse: Mapping[tuple[str, str], ReusedSample] | None = None,
    prior_attempts: Mapping[str, int] | None = None,
) -> ShardOutput:
    """Code every image sample of ``contents``.

    ``reuse`` keeps earlier ok samples instead of coding them again, keyed by (key, sha256 of the
    source image) so that a repeated key or a changed source image is never matched wrongly;
    ``prior_attempts`` adds the tries of an earlier run to a sample's ``attempts``. Both serve
    ``--retry-failed``.
    """
    writer = TarShardWriter()
    rows: list[ManifestRow] = []
    coded = _CodedBytes()
    names = ShardNames(contents.samples)
    window = settings.batch_size * WINDOW_BATCHES
    for start in range(0, len(contents.samples), window):
        pending = [_pending(sample, reuse, names) for sample in contents.samples[start : start + window]]
        outcomes = _code_pending(pending, codec, settings)
        for item, outcome in zip(pending, outcomes, strict=True):
            sample, image = item.sample, item.image
            if item.kept is not None:
                row = _write_reused(writer, sample, image, item.kept, output_url)
            else:
                tries = attempts + (prior_attempts or {}).get(sample.key, 0)
                base = _base_row(sample, image, item.digest, contents.url, codec, settings, output_url, tries)
                row = _write_sample(writer, sample, image, base, outcome, item.bad_name)
            coded.add(sample, image, row)
            rows.append(row)
    for problem in contents.problems:
        rows.append(_problem_row(contents.url, problem, codec, settings, output_url))
    tar = writer.finish()
    return ShardOutput(tar, tuple(rows), _stats(rows, contents.size_bytes, len(tar), coded))


def _write_sample(
    writer: TarShardWriter,
    sample: Sample,
    image: Member | None,
    base: dict[str, Any],
    outcome: Coded | NotCoded | None,
    bad_name: str | None,
) -> ManifestRow:
    """``outcome`` is None exactly when the sample was not offered to the codec (see _code_pending)."""
    if bad_name is not None:
        log.warning(
            "%s: %s; recorded as status=%s, kept verbatim", base["source_shard"], bad_name, Status.BAD_NAME
        )
        carried, notes = _carry(writer, sample.members)
        error = _join(
            f"{bad_name}: decompress could not write it back as files, so it is not coded and its "
            "members are carried verbatim (`s2c decompress --format webdataset` restores them)",
            notes,
        )
        return ManifestRow(**base, status=Status.BAD_NAME, error=error, carried_members=carried)
    if image is None:
        names = ", ".join(m.name for m in sample.members) or "none"
        carried, notes = _carry(writer, sample.members)
        error = _join(f"sample has no image member (members: {names}); carried verbatim", notes)
        return ManifestRow(**base, status=Status.BAD_INPUT, error=error, carried_members=carried)
    if _holds_s2c(sample):
        carried, notes = _carry(writer, sample.members)
        error = _join(f"sample already has a .{S2C_EXTENSION} member; not coded, carried verbatim", notes)
        return ManifestRow(**base, status=Status.BAD_INPUT, error=error, carried_members=carried)
    source = f"{base['source_shard']}:{image.name}"
    if isinstance(outcome, NotCoded):
        status = status_of(outcome)
        log.warning("%s: %s; recorded as status=%s, original kept", source, outcome.error, status)
        carried, notes = _carry(writer, sample.members)
        return ManifestRow(**base, status=status, error=_join(outcome.error, notes), carried_members=carried)
    coded = outcome
    member_name = bitstream_member_name(sample.key)
    offset = writer.add(member_name, coded.s2c)
    carried, notes = _carry(writer, [m for m in sample.members if m is not image])
    return ManifestRow(
        **{**base, "quality": coded.quality},
        width=coded.width,
        height=coded.height,
        mode=coded.mode,
        s2c_member=member_name,
        s2c_offset=offset,
        s2c_bytes=len(coded.s2c),
        bpp=len(coded.s2c) * 8 / (coded.width * coded.height),
        psnr=coded.psnr,
        ms_ssim=coded.ms_ssim,
        decoded_sha256=metrics.pixels_sha256(coded.decoded.image),
        latents_sha256=coded.decoded.latents_sha256,
        status=Status.OK,
        error=_join(coded.note, notes),
        encode_ms=coded.encode_ms,
        decode_ms=coded.decode_ms,
        carried_members=carried,
    )


@dataclass(frozen=True)
class _Pending:
    sample: Sample
    image: Member | None
    digest: str | None
    kept: ReusedSample | None
    bad_name: str | None
    """Why decompress could not write the sample back under its names; then it is not coded."""


def _pending(
    sample: Sample, reuse: Mapping[tuple[str, str], ReusedSample] | None, names: ShardNames
) -> _Pending:
    image = image_member(sample)
    digest = hashlib.sha256(image.data).hexdigest() if image is not None and not image.omitted else None
    bad_name = names.claim(sample, image)
    kept = (reuse or {}).get((sample.key, digest)) if digest and bad_name is None else None
    return _Pending(sample, image, digest, kept, bad_name)


def _code_pending(
    pending: Sequence[_Pending], codec: ImageCodec, settings: EncodeSettings
) -> list[Coded | NotCoded | None]:
    """Outcomes in order; None for samples not offered to the codec (reused, a bad name, no
    image, or already holding a .s2c member)."""
    wanted = [
        i
        for i, item in enumerate(pending)
        if item.kept is None
        and item.bad_name is None
        and item.image is not None
        and not _holds_s2c(item.sample)
    ]
    outcomes: list[Coded | NotCoded | None] = [None] * len(pending)
    for i, outcome in zip(
        wanted, code_images([pending[i].image for i in wanted], codec, settings), strict=True
    ):
        outcomes[i] = outcome
    return outcomes


@dataclass
class _CodedBytes:
    """Member bytes in and out of the samples coded ok: what the run's ratio is computed from."""

    input: int = 0
    output: int = 0

    def add(self, sample: Sample, image: Member | None, row: ManifestRow) -> None:
        if row.status != Status.OK or image is None:
            return
        members = sum(len(m.data) for m in sample.members)  # members not read (omitted) count 0
        self.input += members
        self.output += members - len(image.data) + (row.s2c_bytes or 0)


def _holds_s2c(sample: Sample) -> bool:
    """A sample that already has a .s2c member is carried, never coded again."""
    return any(m.extension == S2C_EXTENSION for m in sample.members)


def _join(error: str | None, notes: list[str]) -> str | None:
    parts = [p for p in (error, *notes) if p]
    return "; ".join(parts) if parts else None


def _carry(writer: TarShardWriter, members: Sequence[Member]) -> tuple[list[str], list[str]]:
    """Copy members byte for byte, named as their key is (``normalise_name``); (names carried,
    notes on members the reader did not read)."""
    carried, notes = [], []
    for member in members:
        if member.omitted:
            notes.append(f"member {member.name} not carried: {member.omitted}")
            continue
        name = normalise_name(member.name)
        writer.add(name, member.data)
        carried.append(name)
    return carried, notes


def _write_reused(
    writer: TarShardWriter, sample: Sample, image: Member, kept: ReusedSample, output_url: str
) -> ManifestRow:
    offset = writer.add(kept.row.s2c_member, kept.s2c)
    carried, _ = _carry(writer, [m for m in sample.members if m is not image])
    return replace(kept.row, s2c_offset=offset, output_shard=output_url, carried_members=carried)


def _base_row(
    sample: Sample,
    image: Member | None,
    digest: str | None,
    shard_url: str,
    codec: ImageCodec,
    settings: EncodeSettings,
    output_url: str,
    attempts: int,
) -> dict[str, Any]:
    """The fields every row of this sample has, whatever its outcome."""
    return {
        "key": sample.key,
        "source_shard": shard_url,
        "source_member": image.name if image else None,
        "source_offset": image.offset if image else None,
        "source_bytes": len(image.data) if image and not image.omitted else None,
        "source_sha256": digest,
        "model": codec.model_name,
        "weights_id": codec.weights.weights_id,
        "quality": settings.quality,
        "attempts": attempts,
        "device": settings.device,
        "output_shard": output_url,
    }


def _problem_row(
    shard_url: str, problem: str, codec: ImageCodec, settings: EncodeSettings, output_url: str
) -> ManifestRow:
    base = _base_row(Sample(key="", members=()), None, None, shard_url, codec, settings, output_url, 0)
    return ManifestRow(**base, status=Status.SHARD_PROBLEM, error=problem)  # attempts 0: nothing was tried


def _stats(rows: list[ManifestRow], source_bytes: int, output_bytes: int, coded: _CodedBytes) -> ShardStats:
    statuses: dict[str, int] = {}
    for row in rows:
        statuses[row.status.value] = statuses.get(row.status.value, 0) + 1
    ok = [r for r in rows if r.status == Status.OK]
    finite = [r.psnr for r in ok if r.psnr is not None and math.isfinite(r.psnr)]
    return ShardStats(
        samples=sum(1 for r in rows if r.status != Status.SHARD_PROBLEM),
        images_ok=len(ok),
        images_failed=sum(1 for r in rows if r.status not in (Status.OK, Status.SHARD_PROBLEM)),
        statuses=statuses,
        source_bytes=source_bytes,
        output_bytes=output_bytes,
        image_bytes_ok=sum(r.source_bytes or 0 for r in ok),
        s2c_bytes=sum(r.s2c_bytes or 0 for r in ok),
        coded_input_bytes=coded.input,
        coded_output_bytes=coded.output,
        pixels_ok=sum((r.width or 0) * (r.height or 0) for r in ok),
        psnr_sum=float(sum(finite)),
        psnr_count=len(finite),
        encode_ms=float(sum(r.encode_ms or 0.0 for r in ok)),
        decode_ms=float(sum(r.decode_ms or 0.0 for r in ok)),
    )
