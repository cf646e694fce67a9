"""Which samples ``decompress`` can write back as files under their own names.

``compress`` asks before coding. A sample that could not be written back is not coded: its members
are carried verbatim (under ``shards.normalise_name``) and its row gets status ``bad_name``, so
``decompress --format webdataset`` restores it exactly and ``--format png`` says why it cannot.
The reasons, all found within one shard:

* a name ``shards.names`` refuses as a file name: a backslash, a control character, ``::`` (fsspec's URL chaining), a drive letter, an empty or
  ``.`` path component, a component over 255 bytes;
* a key that more than one sample has (their files would replace each other, and a coded sample
  next to a carried one of the same key would merge into one WebDataset sample);
* a member with the name the decoded image gets (``KEY.png`` next to a coded ``KEY.jpg``);
* a file name that another sample uses as a folder, or the other way round.

So every sample coded ok is restored under its own name. Keys repeated across shards cannot be
seen here; PNG output refuses the second one (docs/pipeline.md).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from s2c_pipeline.shards import Member, Sample, normalise_name
from s2c_pipeline.shards.names import UnsafeName, check_relative_name

DECODED_EXTENSION = "png"


def decoded_name(key: str) -> str:
    """The file ``decompress`` writes a sample's decoded image to (PNG: lossless, any mode)."""
    return f"{key}.{DECODED_EXTENSION}"


class ShardNames:
    """The files one shard's samples become, claimed sample by sample in tar order."""

    def __init__(self, samples: Sequence[Sample]) -> None:
        self._repeated = {key: n for key, n in Counter(s.key for s in samples).items() if n > 1}
        self._files: set[str] = set()
        self._folders: set[str] = set()

    def claim(self, sample: Sample, image: Member | None) -> str | None:
        """Why ``sample`` cannot be restored under its names, or None once its files are claimed.

        ``image`` is the member that would be coded. Its decoded file is claimed besides every
        member, since an image that then fails to code is restored under its own name.
        """
        if sample.key in self._repeated:
            return (
                f"key {sample.key!r} is used by {self._repeated[sample.key]} samples of this shard, "
                "whose files would replace each other"
            )
        names = [normalise_name(m.name) for m in sample.members]
        if image is not None:
            decoded = decoded_name(sample.key)
            for member in sample.members:
                if member is not image and normalise_name(member.name) == decoded:
                    return (
                        f"member {member.name!r} has the name the decoded image of {image.name!r} would get"
                    )
            names.append(decoded)
        for name in names:
            try:
                check_relative_name(name)
            except UnsafeName as exc:
                return f"name {exc}"
            if name in self._folders:
                return f"{name!r} is a folder of another sample of this shard"
            for folder in _folders_of(name):
                if folder in self._files:
                    return f"folder {folder!r} of {name!r} is a file of another sample of this shard"
        self._files.update(names)
        self._folders.update(folder for name in names for folder in _folders_of(name))
        return None


def _folders_of(name: str) -> list[str]:
    """``a/b/c.png`` -> ``["a", "a/b"]``."""
    parts = name.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]
