"""Where everything lives under an output prefix, and how an input shard names its outputs.

```
PREFIX/run.json                  what produced the prefix (``run_record``)
PREFIX/index.json                committed shards, wids-style (``index``)
PREFIX/shards/ID.tar             the output tar (member names: ``members``)
PREFIX/manifest/ID.parquet       one row per input sample (``manifest``)
PREFIX/_done/ID.json             the commit marker, written last (``marker``)
PREFIX/weights/MODEL-ID.pt       the checkpoints the prefix was coded with
```

Output names are stable per input URL: ``<input basename without .tar>-<8 hex of sha256(url)>``.
A positional ``NNNNN`` (index in the sorted input list) would silently change meaning when inputs
are added before existing ones on a resume (a new shard would inherit another's marker and be
skipped); a name derived from the URL cannot. The basename keeps names readable, the hash keeps
``a/00001.tar`` and ``b/00001.tar`` apart.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from dataclasses import dataclass

import fsspec.utils

from s2c_pipeline.shards.storage import LOCAL_PROTOCOLS, filesystem, to_url

LAYOUT_VERSION = 1
"""Bumped when the output prefix layout or the manifest meaning changes (recorded in run.json)."""
SHARDS_DIR = "shards"
MANIFEST_DIR = "manifest"
MARKER_DIR = "_done"
WEIGHTS_DIR = "weights"

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_TAR_SUFFIXES = (".tar.gz", ".tgz", ".tar")
_STEM_MAX = 80


def shard_id_for(url: str) -> str:
    """The stable output name of an input shard URL (no extension)."""
    base = posixpath.basename(url.rstrip("/")) or "shard"
    for suffix in _TAR_SUFFIXES:
        if base.endswith(suffix) and len(base) > len(suffix):
            base = base[: -len(suffix)]
            break
    stem = _UNSAFE.sub("_", base).strip("._")[:_STEM_MAX] or "shard"
    return f"{stem}-{hashlib.sha256(url.encode()).hexdigest()[:8]}"


@dataclass(frozen=True)
class OutputLayout:
    """Paths of one output prefix (an fsspec URL or an absolute local path, without trailing slash)."""

    prefix: str

    @classmethod
    def of(cls, prefix: str) -> OutputLayout:
        """The layout of ``prefix``; a local one made absolute here, on the driver, so that every
        URL derived from it (the manifest's ``output_shard``) resolves from any directory."""
        url = str(prefix)
        if fsspec.utils.get_protocol(url) in LOCAL_PROTOCOLS:
            url = to_url(*filesystem(url))
        return cls(url.rstrip("/") or "/")

    def shard(self, shard_id: str) -> str:
        return f"{self.shards_dir}/{shard_id}.tar"

    def manifest(self, shard_id: str) -> str:
        return f"{self.manifests_dir}/{shard_id}.parquet"

    def marker(self, shard_id: str) -> str:
        return f"{self.markers_dir}/{shard_id}.json"

    @property
    def markers_dir(self) -> str:
        return f"{self.prefix}/{MARKER_DIR}"

    @property
    def shards_dir(self) -> str:
        return f"{self.prefix}/{SHARDS_DIR}"

    @property
    def manifests_dir(self) -> str:
        return f"{self.prefix}/{MANIFEST_DIR}"

    @property
    def run_json(self) -> str:
        return f"{self.prefix}/run.json"

    @property
    def index_json(self) -> str:
        return f"{self.prefix}/index.json"

    @property
    def weights_dir(self) -> str:
        """Checkpoints the prefix was coded with, so the archive carries its own decoder."""
        return f"{self.prefix}/{WEIGHTS_DIR}"

    def weights(self, file_name: str) -> str:
        return f"{self.weights_dir}/{file_name}"

    def relative(self, url: str) -> str:
        """``url`` relative to the prefix (for index entries that survive moving the prefix)."""
        head = f"{self.prefix}/"
        return url[len(head) :] if url.startswith(head) else url
