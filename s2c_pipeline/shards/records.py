"""The records a shard read produces: members grouped into WebDataset samples."""

from __future__ import annotations

from dataclasses import dataclass

IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp", "ppm", "bmp", "tif", "tiff", "gif")
"""Member extensions read as a sample's image, in order of preference (docs/imaging.md)."""
DEFAULT_MAX_MEMBER_BYTES = 256 * 2**20


@dataclass(frozen=True)
class Member:
    """One file of a sample, as stored in the source tar.

    Attributes:
        name: the member's path in the tar, verbatim.
        extension: lower-cased text after the first dot of the basename (``jpg``, ``seg.png``).
        data: the member's bytes; ``b""`` when ``omitted`` says why they were not read.
        offset: byte offset of the member's first header in the source tar (with a pax or GNU
            long-name header, that header's offset, as ``tarfile.TarInfo.offset`` gives it; in a
            gzip shard, the offset in the decompressed tar). Together with the shard URL it
            identifies the member uniquely, even when keys repeat.
        omitted: ``None``, or why ``data`` is empty although the member is not, e.g.
            "12.0 MiB member over the 8.0 MiB limit (--max-member-bytes); not read".
    """

    name: str
    extension: str
    data: bytes
    offset: int
    omitted: str | None = None


@dataclass(frozen=True)
class Sample:
    """Adjacent members that share a key, the WebDataset grouping rule.

    Attributes:
        key: member path up to the first dot of its basename, verbatim but for a leading ``./``
            (``a.b/c.d.jpg`` and ``./a.b/c.d.jpg`` -> ``a.b/c``). Keys can repeat within a shard
            (reported as a problem); (shard, offset of the first member) is the identity that never
            repeats.
        members: in tar order.
    """

    key: str
    members: tuple[Member, ...]

    @property
    def offset(self) -> int:
        """Offset of the sample's first member header: with the shard URL, a unique identity."""
        return self.members[0].offset


@dataclass(frozen=True)
class ShardContents:
    """Everything one complete read of a shard gave.

    Attributes:
        url: the shard's URL as passed to ``read_shard``.
        samples: complete samples in tar order. After damage (truncation, a corrupt header) the
            sample being read at that point is left out, since it may be missing members.
        problems: one line each, for everything in the shard that is not a returned sample:
            damage, hostile or unsupported members, members without an extension, repeated keys.
        size_bytes: size of the shard object.
        sha256: hex digest of the shard object's bytes as read.
    """

    url: str
    samples: tuple[Sample, ...]
    problems: tuple[str, ...]
    size_bytes: int
    sha256: str


def normalise_name(name: str) -> str:
    """``name`` without the leading ``./`` that ``tar -C DIR .`` writes (and any ``/`` after it).

    ``./000001.jpg`` and ``000001.jpg`` are the same file and belong to the same key; everything
    else in the name is kept as it is.
    """
    while name.startswith("./"):
        name = name[2:].lstrip("/")
    return name


def split_name(name: str) -> tuple[str, str] | None:
    """(key, lower-cased extension) of a member name, or None when its basename has no extension.

    The webdataset rule: the key is everything up to the first dot of the basename, so dots in
    directory names stay in the key. A basename that starts with a dot (``.hidden``) has no key.
    A leading ``./`` is not part of the key (``normalise_name``).
    """
    name = normalise_name(name)
    start = name.rfind("/") + 1
    stem, dot, extension = name[start:].partition(".")
    if not stem or not dot or not extension:
        return None
    return name[:start] + stem, extension.lower()


def image_member(sample: Sample) -> Member | None:
    """The sample's image: the first member, in ``IMAGE_EXTENSIONS`` order, whose extension is an
    image type. Other members are carried through untouched."""
    by_extension = {member.extension: member for member in reversed(sample.members)}
    for extension in IMAGE_EXTENSIONS:
        if extension in by_extension:
            return by_extension[extension]
    return None
