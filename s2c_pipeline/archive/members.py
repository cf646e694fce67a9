"""The output tar's member names: ``KEY.s2c`` for a coded sample, every other member as it came.

Kept apart from ``layout`` (and free of imports) so that a DataLoader worker reading output
shards (``webdataset_stage``) does not pay for fsspec to learn one extension.
"""

S2C_EXTENSION = "s2c"
"""An output tar names a coded sample's bitstream ``KEY.s2c`` (docs/manifest.md)."""


def bitstream_member_name(key: str) -> str:
    """The output tar member that holds the bitstream of the sample ``key``."""
    return f"{key}.{S2C_EXTENSION}"
