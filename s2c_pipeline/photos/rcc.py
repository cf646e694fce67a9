"""Read the files inside a Qt binary resource bundle (``.rcc``), such as GCompris ships its photos in.

The layout (all integers big-endian), as Qt's ``rcc`` writes it: a header ``"qres"``, version,
and the offsets of the tree, data and name tables (version 3 adds a flags word). The tree is an
array of nodes, 14 bytes each (22 from version 2 on, with a modification time): name offset
(uint32), flags (uint16: 1 zlib-compressed, 2 directory, 4 zstd-compressed), then for a directory
its child count and first child index (uint32 each), for a file its country and language (uint16
each) and data offset (uint32). A name is a uint16 length, a uint32 hash and UTF-16 text; file data
is a uint32 size and the bytes (zlib ones start with their uncompressed size, as ``qCompress``).
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

RCC_MAGIC = b"qres"
_COMPRESSED, _DIRECTORY, _ZSTD = 1, 2, 4


class RccError(ValueError):
    """The file is not a Qt resource bundle this reader understands."""


def rcc_files(path: Path) -> dict[str, bytes]:
    """Every file in the bundle at ``path``, by its resource path (``"erase/photo.webp"``).

    Raises:
        RccError: for a file that is not an rcc bundle, or a zstd-compressed entry (GCompris
            stores its images uncompressed; install ``zstandard`` support here if that changes).
    """
    data = Path(path).read_bytes()
    if data[:4] != RCC_MAGIC or len(data) < 20:
        raise RccError(f"{path}: not a Qt resource bundle (no 'qres' header)")
    version, tree, payload, names = struct.unpack_from(">IIII", data, 4)
    if version not in (1, 2, 3):
        raise RccError(f"{path}: rcc format version {version}, this reader knows 1 to 3")
    node_size = 14 if version == 1 else 22

    def name(offset: int) -> str:
        (length,) = struct.unpack_from(">H", data, names + offset)
        start = names + offset + 6
        return data[start : start + 2 * length].decode("utf-16-be")

    files: dict[str, bytes] = {}

    def walk(index: int, prefix: str, depth: int) -> None:
        if depth > 64:
            raise RccError(f"{path}: resource tree deeper than 64 levels")
        node = tree + index * node_size
        name_offset, flags = struct.unpack_from(">IH", data, node)
        label = "" if index == 0 else name(name_offset)
        full = f"{prefix}/{label}" if prefix else label
        if flags & _DIRECTORY:
            count, first = struct.unpack_from(">II", data, node + 6)
            for child in range(first, first + count):
                walk(child, full, depth + 1)
            return
        (offset,) = struct.unpack_from(">I", data, node + 10)
        (size,) = struct.unpack_from(">I", data, payload + offset)
        blob = data[payload + offset + 4 : payload + offset + 4 + size]
        if flags & _ZSTD:
            raise RccError(f"{path}: {full} is zstd-compressed, which this reader does not decode")
        if flags & _COMPRESSED:
            blob = zlib.decompress(blob[4:])
        files[full] = blob

    walk(0, "", 0)
    return files


def write_rcc(files: dict[str, bytes], *, compress: frozenset[str] = frozenset()) -> bytes:
    """A version-2 bundle holding ``files`` (paths with ``/``); the names in ``compress`` are zlib'd.

    Qt's ``rcc`` is not on these machines; the tests use this to make real bundles to read back.
    """
    tree: dict[str, object] = {}
    for full, blob in files.items():
        node = tree
        *dirs, leaf = full.split("/")
        for d in dirs:
            node = node.setdefault(d, {})  # type: ignore[assignment]
        node[leaf] = blob  # type: ignore[index]
    names, payload, nodes = bytearray(), bytearray(), []
    name_at: dict[str, int] = {}

    def name_offset(label: str) -> int:
        if label not in name_at:
            name_at[label] = len(names)
            text = label.encode("utf-16-be")
            names.extend(struct.pack(">HI", len(label), 0) + text)
        return name_at[label]

    # Breadth-first, as rcc does: each directory's children are consecutive nodes.
    nodes.append(["", tree])
    i = 0
    records: list[bytes] = []
    while i < len(nodes):
        label, item = nodes[i]
        prefix_path = label
        if isinstance(item, dict):
            first = len(nodes)
            for child in sorted(item):
                nodes.append([f"{prefix_path}/{child}" if prefix_path else child, item[child]])
            record = struct.pack(">IHII", name_offset(label.rsplit("/", 1)[-1]), _DIRECTORY, len(item), first)
        else:
            blob = bytes(item)
            flags = 0
            if label in compress:
                blob = struct.pack(">I", len(blob)) + zlib.compress(blob)
                flags = _COMPRESSED
            record = struct.pack(">IHHHI", name_offset(label.rsplit("/", 1)[-1]), flags, 0, 0, len(payload))
            payload.extend(struct.pack(">I", len(blob)) + blob)
        records.append(record + b"\0" * 8)
        i += 1
    header = 4 + 4 * 4
    tree_at = header
    payload_at = tree_at + sum(len(r) for r in records)
    names_at = payload_at + len(payload)
    out = RCC_MAGIC + struct.pack(">IIII", 2, tree_at, payload_at, names_at)
    return out + b"".join(records) + bytes(payload) + bytes(names)
