"""The one error type a reader of `.s2c` files has to catch."""

from __future__ import annotations


def _one_line(text: str) -> str:
    """Escapes line breaks and other control characters, so a message stays one log line."""
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


class BitstreamError(ValueError):
    """An `.s2c` file that cannot be honoured: damaged, truncated, newer, or not an `.s2c` at all.

    `str(e)` is a single line, ``"SOURCE: reason"``, where SOURCE names the file (a path, a shard
    member, or ``<bytes>``) so the message means something in a log of thousands of files. The error
    pickles with both fields, so it survives a trip from a Ray worker to the driver.
    """

    def __init__(self, source: str, reason: str) -> None:
        self.source = _one_line(source)
        self.reason = _one_line(reason)
        super().__init__(f"{self.source}: {self.reason}")

    def __reduce__(self) -> tuple[type[BitstreamError], tuple[str, str]]:
        return (type(self), (self.source, self.reason))
