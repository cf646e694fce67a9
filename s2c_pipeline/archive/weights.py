"""The checkpoints an output prefix was coded with, kept in its ``weights/`` folder.

Compress copies its checkpoint there once, so an archive carries its own decoder; decompress and
verify ship every checkpoint found there (and any the user adds) to their actors, and each
bitstream names the one it needs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from s2c_pipeline.archive.layout import OutputLayout
from s2c_pipeline.shards import filesystem, publish


class WeightsFile(Protocol):
    """The weights a prefix is coded with (``pipeline.compress.weights_spec.CodecSpec`` is one)."""

    @property
    def file_name(self) -> str: ...

    @property
    def checkpoint(self) -> bytes: ...


def store_weights(layout: OutputLayout, spec: WeightsFile, storage_options: Mapping[str, Any]) -> str:
    """Copy the checkpoint into ``weights/`` of the prefix once (decompress finds it there)."""
    url = layout.weights(spec.file_name)
    fs, path = filesystem(url, dict(storage_options))
    if not fs.exists(path):
        publish(spec.checkpoint, url, storage_options=dict(storage_options))
    return url


def stored_weights(
    layout: OutputLayout, extra: Sequence[str], storage_options: Mapping[str, Any]
) -> list[tuple[str, bytes]]:
    """(file name, bytes) of every checkpoint in the prefix's weights/ folder and of ``extra``."""
    files: list[tuple[str, bytes]] = []
    fs, folder = filesystem(layout.weights_dir, dict(storage_options))
    try:
        paths = sorted(p for p in fs.ls(folder, detail=False) if p.endswith(".pt"))
    except FileNotFoundError:
        paths = []
    files.extend((p.rsplit("/", 1)[-1], fs.cat_file(p)) for p in paths)
    for url in extra:
        extra_fs, path = filesystem(str(url), dict(storage_options))
        files.append((path.rsplit("/", 1)[-1], extra_fs.cat_file(path)))
    return files
