"""What a decode actor does with one output shard: decode the selected samples, check, write.

Every decoded image's pixel hash is compared with the manifest's ``decoded_sha256``. Where they
differ, a format-2 stream whose manifest row has ``latents_sha256`` is still accepted when its
decoded latents hash to exactly that value and its pixels are within one level of a float64
synthesis of them: the promise of ``docs/codec.md`` (latents exact everywhere, pixels within one
level across devices). Any other mismatch is an error for that sample (the PNG is not written),
never a silent difference. Samples that were
not coded (status other than ok) have their original image among the carried members, so they
are restored verbatim. Names are checked before anything is written (``shards.names``), except
those of ``bad_name`` samples going into a WebDataset tar: that tar gets them as the input had them.

Failure policy: whatever goes wrong with one sample (a bitstream that does not decode, a name, a
mismatch with the manifest) is an error line for that sample; the others are still restored.

Reading policy: the whole output shard (one GET), unless only a few samples without carried
members are wanted, then one range read per bitstream (``s2c_offset``/``s2c_bytes``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from s2c_pipeline.archive.pairing import (
    RowRef,
    ShardMismatch,
    bitstream_member,
    carried,
    paired_sample,
)
from s2c_pipeline.archive.status import Status
from s2c_pipeline.bitstream import BitstreamError, decode_container
from s2c_pipeline.codec.image_codec import DecodedImage, ImageCodec, codec_for_bitstream
from s2c_pipeline.codec.weights import Checkpoint
from s2c_pipeline.imaging import image_to_png_bytes, metrics
from s2c_pipeline.pipeline.decompress.output_paths import join_url, safe_local_path
from s2c_pipeline.pipeline.decompress.sample_names import decoded_name
from s2c_pipeline.shards import ShardContents, TarShardWriter, filesystem, publish, read_range, read_shard
from s2c_pipeline.shards.names import UnsafeName, check_relative_name
from s2c_pipeline.shards.storage import is_local

log = logging.getLogger(__name__)

PNG, WEBDATASET, CHECK = "png", "webdataset", "check"
FORMATS = (PNG, WEBDATASET)
RANGE_READ_FRACTION = 0.25
"""Below this fraction of a shard's samples (and with no carried members) bitstreams are range-read."""


@dataclass(frozen=True)
class DecodeTask:
    shard_id: str
    tar_url: str
    rows: tuple[RowRef, ...]
    """The selected rows of this shard."""
    sample_count: int
    """All sample rows of the shard's manifest (to check the tar against it)."""
    output: str | None
    """Output folder or URL; None for CHECK."""
    format: str


@dataclass(frozen=True)
class DecodeResult:
    shard_id: str
    decoded: int
    """Bitstreams decoded with a matching hash."""
    restored: int
    """Samples that were not coded, restored from their carried original."""
    written: int
    """Files written (png), or members written into the output tar (webdataset)."""
    errors: tuple[str, ...]


class DecodeFailed(ValueError):
    """One sample could not be decoded to the recorded pixels."""


class CodecCache:
    """Codecs by (model, weights id), loaded on first use from the bitstream's header.

    ``weights`` are (file name, bytes) of the checkpoints to search before the bundled ones; each
    is hashed once here and loaded from memory only when a bitstream names it.
    """

    def __init__(self, weights: Sequence[tuple[str, bytes]], device: str | None = None) -> None:
        self._checkpoints = [Checkpoint.of(name, data) for name, data in weights]
        self._device = device
        self._codecs: dict[tuple[str, str], ImageCodec] = {}

    def for_bitstream(self, data: bytes, source: str) -> ImageCodec:
        header = decode_container(data, source=source).header
        key = (header.model_name, header.weights_id)
        if key not in self._codecs:
            self._codecs[key] = codec_for_bitstream(
                data, source=source, extra_weights=self._checkpoints, device=self._device
            )
        return self._codecs[key]


def run_decode_task(
    task: DecodeTask,
    *,
    codecs: CodecCache,
    max_pixels: int,
    storage_options: Mapping[str, Any],
    decode_lock: threading.Lock | None = None,
) -> DecodeResult:
    options = dict(storage_options)
    use_ranges = not any(r.carried_members for r in task.rows) and (
        task.format == CHECK or len(task.rows) < RANGE_READ_FRACTION * task.sample_count
    )
    contents = None if use_ranges else read_shard(task.tar_url, storage_options=options)
    files: list[tuple[str, bytes]] = []
    errors: list[str] = []
    decoded = restored = 0
    with decode_lock or nullcontext():
        for ref in task.rows:
            try:
                sample_files, was_decoded = _decode_one(task, ref, contents, codecs, max_pixels, options)
            except (UnsafeName, ShardMismatch, BitstreamError, DecodeFailed, OSError) as exc:
                errors.append(f"{task.tar_url}: sample {ref.key!r}: {exc}")
                continue
            decoded += was_decoded
            restored += ref.status != Status.OK
            files.extend(sample_files)
    written = _write(task, files, options, errors) if task.format != CHECK else 0
    return DecodeResult(task.shard_id, decoded, restored, written, tuple(errors))


def _decode_one(
    task: DecodeTask,
    ref: RowRef,
    contents: ShardContents | None,
    codecs: CodecCache,
    max_pixels: int,
    options: dict[str, Any],
) -> tuple[list[tuple[str, bytes]], bool]:
    """(files for this sample, whether a bitstream was decoded)."""
    source = f"{task.tar_url}:{ref.s2c_member}"
    # CHECK writes nothing; a bad_name sample goes into a WebDataset tar as the input had it
    check_names = task.format == PNG or (task.format == WEBDATASET and ref.status != Status.BAD_NAME)
    if check_names:
        check_relative_name(ref.key)
    if contents is None:
        members = []
        data = (
            read_range(task.tar_url, ref.s2c_offset, ref.s2c_bytes, storage_options=options)
            if ref.status == Status.OK
            else b""
        )
    else:
        sample = paired_sample(contents, ref, task.sample_count)
        members = carried(sample, ref)
        data = bitstream_member(sample, ref).data if ref.status == Status.OK else b""
    files = [(check_relative_name(m.name) if check_names else m.name, m.data) for m in members]
    if ref.status != Status.OK:
        return files, False
    try:
        codec = codecs.for_bitstream(data, source)
        image = codec.decode(data, source=source, max_pixels=max_pixels)
    except BitstreamError:
        raise
    except ValueError as exc:  # a stream the codec cannot honour, however it says so
        raise DecodeFailed(f"the bitstream does not decode ({exc})") from exc
    digest = metrics.pixels_sha256(image.image)
    if digest != ref.decoded_sha256:
        _check_within_promise(codec, data, source, max_pixels, image, ref, digest)
    if task.format == CHECK:
        return [], True
    name = decoded_name(ref.key)
    if any(n == name for n, _ in files):
        raise DecodeFailed(f"the decoded image {name} would replace a carried member of the same name")
    return [(name, image_to_png_bytes(image.image)), *files], True


PIXEL_TOLERANCE = 1
"""Levels (of 255) a format-2 decode may differ from the float64 synthesis of the same latents."""


def _check_within_promise(
    codec: ImageCodec,
    data: bytes,
    source: str,
    max_pixels: int,
    image: DecodedImage,
    ref: RowRef,
    digest: str,
) -> None:
    """Accepts a pixel-hash mismatch only where the determinism promise covers it; DecodeFailed else."""
    mismatch = (
        f"decoded pixels hash {digest[:16]}... differs from the manifest's {str(ref.decoded_sha256)[:16]}..."
    )
    if ref.latents_sha256 is None or image.latents_sha256 is None or image.header.format_version < 2:
        raise DecodeFailed(
            f"{mismatch}: this machine does not decode the bitstream bit-exactly, or the bitstream changed"
        )
    if image.latents_sha256 != ref.latents_sha256:
        raise DecodeFailed(
            f"{mismatch}, and so do the decoded latents ({image.latents_sha256[:16]}... against "
            f"{ref.latents_sha256[:16]}...): the bitstream changed, or the weights are not the ones it names"
        )
    reference = codec.decode(data, source=source, max_pixels=max_pixels, reference=True)
    worst = int(np.abs(image.rgb.astype(np.int16) - reference.rgb.astype(np.int16)).max())
    if worst > PIXEL_TOLERANCE:
        raise DecodeFailed(
            f"{mismatch}; the latents match the manifest, but the pixels are up to {worst} levels from "
            f"a float64 synthesis of them (the promise is {PIXEL_TOLERANCE}): this machine's g_s is broken"
        )
    log.debug("%s: pixels differ from the encoder's within %d level; latents identical", source, worst)


def _write(
    task: DecodeTask, files: list[tuple[str, bytes]], options: dict[str, Any], errors: list[str]
) -> int:
    assert task.output is not None
    if task.format == WEBDATASET:
        writer = TarShardWriter()
        for name, data in files:
            writer.add(name, data)
        publish(writer.finish(), join_url(task.output, f"{task.shard_id}.tar"), storage_options=options)
        return len(files)
    fs, root = filesystem(task.output, options)
    written = 0
    for name, data in files:
        try:
            target = str(safe_local_path(Path(root), name)) if is_local(fs) else join_url(task.output, name)
            publish(data, target, storage_options=options)
        except UnsafeName as exc:
            errors.append(f"{task.tar_url}: {exc}; not written")
            continue
        except (IsADirectoryError, NotADirectoryError, FileExistsError) as exc:
            errors.append(
                f"{task.tar_url}: {name!r} not written: a file and a folder of that name clash ({exc})"
            )
            continue
        written += 1
    return written
