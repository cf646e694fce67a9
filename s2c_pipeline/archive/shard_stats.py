"""Sums over one shard's samples: recorded in its marker, added up for a run.

They travel from actors to the driver through Ray and into every marker, so they stay small
(counts and sums, no images) and pickle as a plain frozen dataclass.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class ShardStats:
    """Sums over one shard's samples; ``merge`` adds them up for the run."""

    samples: int = 0
    images_ok: int = 0
    images_failed: int = 0
    statuses: Mapping[str, int] = field(default_factory=dict)
    source_bytes: int = 0
    """Bytes of the input shard file."""
    output_bytes: int = 0
    """Bytes of the output shard file."""
    image_bytes_ok: int = 0
    """Source bytes of the images coded ok (their ratio to s2c_bytes is the codec's saving)."""
    s2c_bytes: int = 0
    coded_input_bytes: int = 0
    """Member bytes of the samples coded ok (image and other members), as read from the input."""
    coded_output_bytes: int = 0
    """Member bytes the same samples take in the output (.s2c plus the members carried)."""
    pixels_ok: int = 0
    psnr_sum: float = 0.0
    """Sum of finite PSNRs of ok images (identical reconstructions have infinite PSNR)."""
    psnr_count: int = 0
    encode_ms: float = 0.0
    decode_ms: float = 0.0

    def merge(self, other: ShardStats) -> ShardStats:
        statuses = dict(self.statuses)
        for k, v in other.statuses.items():
            statuses[k] = statuses.get(k, 0) + v
        summed = {
            name: getattr(self, name) + getattr(other, name)
            for name in self.__dataclass_fields__
            if name != "statuses"
        }
        return ShardStats(statuses=statuses, **summed)

    @property
    def mean_bpp(self) -> float:
        """Pixel-weighted: total s2c bits over total pixels of ok images (what storage sees)."""
        return self.s2c_bytes * 8 / self.pixels_ok if self.pixels_ok else float("nan")

    @property
    def ratio(self) -> float:
        """Input over output bytes of the samples coded ok, so samples not coded (carried as they
        are) and shards not read do not dilute it; tar headers are left out on both sides."""
        return self.coded_input_bytes / self.coded_output_bytes if self.coded_output_bytes else float("nan")

    @property
    def mean_psnr(self) -> float:
        return self.psnr_sum / self.psnr_count if self.psnr_count else float("nan")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["statuses"] = {str(k): v for k, v in self.statuses.items()}
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ShardStats:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})
