"""The manifest's columns: one row per input sample, failures included (docs/manifest.md).

The Arrow schema and the row record are declared together so they cannot drift apart; a test checks
that their field names and order match.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pyarrow as pa

from s2c_pipeline.archive.status import Status

MANIFEST_VERSION = "1"

MANIFEST_SCHEMA = pa.schema(
    [
        pa.field("key", pa.string(), nullable=False),
        pa.field("source_shard", pa.string(), nullable=False),
        pa.field("source_member", pa.string()),
        pa.field("source_offset", pa.int64()),
        pa.field("source_bytes", pa.int64()),
        pa.field("source_sha256", pa.string()),
        pa.field("width", pa.int32()),
        pa.field("height", pa.int32()),
        pa.field("mode", pa.string()),
        pa.field("model", pa.string()),
        pa.field("weights_id", pa.string()),
        pa.field("quality", pa.float64()),
        pa.field("s2c_member", pa.string()),
        pa.field("s2c_offset", pa.int64()),
        pa.field("s2c_bytes", pa.int64()),
        pa.field("bpp", pa.float64()),
        pa.field("psnr", pa.float64()),
        pa.field("ms_ssim", pa.float64()),
        pa.field("decoded_sha256", pa.string()),
        pa.field("latents_sha256", pa.string()),
        pa.field("status", pa.string(), nullable=False),
        pa.field("error", pa.string()),
        pa.field("attempts", pa.int32(), nullable=False),
        pa.field("encode_ms", pa.float64()),
        pa.field("decode_ms", pa.float64()),
        pa.field("device", pa.string()),
        pa.field("output_shard", pa.string()),
        pa.field("carried_members", pa.list_(pa.string()), nullable=False),
        pa.field("run_id", pa.string()),
        pa.field("committed_at", pa.timestamp("us", tz="UTC")),
    ],
    metadata={"s2c_manifest_version": MANIFEST_VERSION},
)


@dataclass(frozen=True, kw_only=True)
class ManifestRow:
    """One input sample's outcome. Units and meanings: docs/manifest.md.

    Only the identity and outcome are required; everything a failure prevented from being known
    stays None (a null in Parquet), never a made-up 0. ``run_id`` and ``committed_at`` are set by
    the commit (``pipeline.compress.commit``), when the shard's outputs are published.
    """

    key: str
    source_shard: str
    source_member: str | None = None
    source_offset: int | None = None
    source_bytes: int | None = None
    source_sha256: str | None = None
    width: int | None = None
    height: int | None = None
    mode: str | None = None
    model: str | None = None
    weights_id: str | None = None
    quality: float | None = None
    s2c_member: str | None = None
    s2c_offset: int | None = None
    s2c_bytes: int | None = None
    bpp: float | None = None
    psnr: float | None = None
    ms_ssim: float | None = None
    decoded_sha256: str | None = None
    latents_sha256: str | None = None
    status: Status
    """A ``Status``, or its value (a row read back from Parquet), turned into the enum here."""
    error: str | None = None
    attempts: int
    encode_ms: float | None = None
    decode_ms: float | None = None
    device: str | None = None
    output_shard: str | None = None
    carried_members: tuple[str, ...] = ()
    run_id: str | None = None
    committed_at: datetime | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "carried_members", tuple(self.carried_members))
        try:
            object.__setattr__(self, "status", Status(self.status))
        except ValueError:
            known = ", ".join(s.value for s in Status)
            raise ValueError(
                f"manifest row {self.key!r}: status {self.status!r} is not one of {known}"
            ) from None
        if self.status != Status.OK and not self.error:
            raise ValueError(
                f"manifest row {self.key!r}: status {self.status.value!r} needs an error message"
            )
        if self.attempts < 0:
            raise ValueError(f"manifest row {self.key!r}: attempts must be >= 0, got {self.attempts}")
