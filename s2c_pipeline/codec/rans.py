"""rANS decoding of CompressAI's stream format that cannot be driven past the end of its input.

CompressAI's C++ ``RansDecoder`` reads 32-bit words with no bound: a latent string shorter than the
symbols it must yield makes it read the heap beyond the buffer, so a crafted (or re-checksummed)
stream decodes "successfully" into pixels that change from one decode to the next. This decoder
yields the same symbols as CompressAI's for every stream CompressAI's encoder writes, and refuses,
with ``LatentStringError``, any string that

- would be read past its last byte, or is not a whole number of 32-bit words (at least two);
- declares a bypass value longer than the encoder can write (over 8 chunks of 4 bits);
- leaves words unread, or ends in a state other than the encoder's initial one: an encoder's
  stream is consumed exactly, so either means the string is not what the encoder wrote.

Encoding stays with CompressAI's C++ ``RansEncoder``. The loop is compiled with numba when it is
installed (a dependency; about as fast as the C++ decoder) and runs as plain Python otherwise, with
the same arithmetic: every value is an integer below 2**64, so both give the same symbols.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from compressai import ans
from compressai.entropy_models import EntropyModel

try:
    from numba import njit
except ImportError:  # pragma: no cover - exercised only where numba is missing (slow but identical)

    def njit(*args, **kwargs):
        return (lambda f: f) if not args or not callable(args[0]) else args[0]


PRECISION = 16  # CompressAI's CDF precision
BYPASS_BITS = 4  # CompressAI's bypass chunk width
MAX_BYPASS_CHUNKS = 8  # the encoder's raw value is an int32: at most 8 chunks of 4 bits
RANS_L = 1 << 31  # RANS64_L: the encoder's initial state and the decoder's lower bound

# Outcome codes of the compiled loop (numba returns plain integers, not exceptions).
OK, OVERRUN, LONG_BYPASS, UNREAD_WORDS, BAD_FINAL_STATE, BAD_START = range(6)


class LatentStringError(ValueError):
    """A latent string that this model's decoder cannot have been given by its encoder."""


@njit(cache=True, nogil=True)
def _refill(x, words, pos):  # pragma: no cover - compiled
    """(state, position) after renormalising: a state below RANS_L takes the next word, and the
    position is -1 when there is none left (the string would be read past its end)."""
    if x >= RANS_L:
        return x, pos
    if pos >= words.shape[0]:
        return x, -1
    return (x << 32) | words[pos], pos + 1


@njit(cache=True, nogil=True)
def _decode(words, indexes, cdfs, cdf_sizes, offsets, out):  # pragma: no cover - compiled
    """Decodes len(indexes) symbols into ``out``; returns (outcome code, symbol index, words read).

    Every array is int64. An encoder's state stays below 2**63 (its flush writes it so), and from
    such a state every step below does too, so each value is an exact int64 whatever the input.
    """
    n_words = words.shape[0]
    mask = (1 << PRECISION) - 1
    bypass_mask = (1 << BYPASS_BITS) - 1
    if words[1] >= RANS_L:
        return BAD_START, 0, 2
    x = words[0] | (words[1] << 32)
    pos = 2
    for i in range(indexes.shape[0]):
        table = indexes[i]
        size = cdf_sizes[table]
        max_value = size - 2
        cum = x & mask
        s = 0
        while cdfs[table, s + 1] <= cum:
            s += 1
        start = cdfs[table, s]
        x, pos = _refill((cdfs[table, s + 1] - start) * (x >> PRECISION) + cum - start, words, pos)
        if pos < 0:
            return OVERRUN, i, n_words
        value = s
        if value == max_value:
            # bypass: a run of 4-bit chunk counts (15 means "more follow"), then the chunks
            n_bypass = 0
            chunk = bypass_mask
            while chunk == bypass_mask:
                chunk = x & bypass_mask
                x, pos = _refill(x >> BYPASS_BITS, words, pos)
                if pos < 0:
                    return OVERRUN, i, n_words
                n_bypass += chunk
                if n_bypass > MAX_BYPASS_CHUNKS:
                    return LONG_BYPASS, i, pos
            raw = 0
            for j in range(n_bypass):
                raw |= (x & bypass_mask) << (j * BYPASS_BITS)
                x, pos = _refill(x >> BYPASS_BITS, words, pos)
                if pos < 0:
                    return OVERRUN, i, n_words
            if raw >= RANS_L:  # the encoder's raw value is a non-negative int32
                return LONG_BYPASS, i, pos
            value = -(raw >> 1) - 1 if raw & 1 else (raw >> 1) + max_value
        out[i] = value + offsets[table]
    if pos != n_words:
        return UNREAD_WORDS, indexes.shape[0], pos
    if x != RANS_L:
        return BAD_FINAL_STATE, indexes.shape[0], pos
    return OK, indexes.shape[0], pos


def _words(string: bytes) -> np.ndarray:
    if len(string) % 4 or len(string) < 8:
        raise LatentStringError(
            f"latent string of {len(string)} bytes is not a rANS stream (a whole number of 4-byte "
            "words, at least 2); the file is corrupt or was not written by s2c-pipeline"
        )
    return np.frombuffer(string, dtype="<u4").astype(np.int64)


def decode_symbols(
    string: bytes,
    indexes: np.ndarray,
    cdfs: np.ndarray,
    cdf_sizes: np.ndarray,
    offsets: np.ndarray,
) -> np.ndarray:
    """Symbols (int32) of one string: ``indexes`` picks a row of ``cdfs`` for each symbol."""
    indexes = np.ascontiguousarray(indexes, dtype=np.int64).reshape(-1)
    cdfs = np.ascontiguousarray(cdfs, dtype=np.int64)
    cdf_sizes = np.ascontiguousarray(cdf_sizes, dtype=np.int64).reshape(-1)
    offsets = np.ascontiguousarray(offsets, dtype=np.int64).reshape(-1)
    if indexes.size and (indexes.min() < 0 or indexes.max() >= cdfs.shape[0]):
        raise ValueError(f"CDF index outside 0..{cdfs.shape[0] - 1}")  # our own tables, not the stream's
    out = np.empty(indexes.shape[0], dtype=np.int64)
    outcome, symbol, read = _decode(_words(string), indexes, cdfs, cdf_sizes, offsets, out)
    if outcome != OK:
        raise LatentStringError(_describe(outcome, symbol, read, len(string), indexes.shape[0]))
    return out.astype(np.int32)


def _describe(outcome: int, symbol: int, read: int, n_bytes: int, n_symbols: int) -> str:
    where = f"latent string of {n_bytes} bytes"
    if outcome == OVERRUN:
        return (
            f"{where} ends at symbol {symbol} of {n_symbols}: the declared image needs more coded data "
            "than the file holds (a truncated or crafted stream)"
        )
    if outcome == LONG_BYPASS:
        return f"{where}: symbol {symbol} declares a raw value longer than any encoder writes"
    if outcome == UNREAD_WORDS:
        return f"{where} has {n_bytes - 4 * read} bytes left after its last symbol; it is corrupt"
    if outcome == BAD_START:
        return f"{where} starts with a state no encoder writes; it is corrupt"
    return f"{where} decodes to a final state the encoder never leaves; it is corrupt"


def decode_tensor(model: EntropyModel, strings: Sequence[bytes], indexes: torch.Tensor, means: torch.Tensor):
    """What ``model.decompress(strings, indexes, means=means)`` returns, from the bounded decoder,
    and without the Python lists CompressAI builds for its C++ call (most of a small image's
    decode time)."""
    if len(strings) != indexes.shape[0]:
        raise ValueError(f"{len(strings)} strings for a batch of {indexes.shape[0]}")
    tables = (model._quantized_cdf.numpy(), model._cdf_length.numpy(), model._offset.numpy())
    symbols = [
        decode_symbols(s, idx.reshape(-1).numpy(), *tables) for s, idx in zip(strings, indexes, strict=True)
    ]
    values = torch.from_numpy(np.stack(symbols)).reshape(indexes.shape)
    return model.dequantize(values, means)


class BoundedRansCoder:
    """Drop-in for CompressAI's ``_EntropyCoder`` (the ``entropy_coder`` of its entropy models):
    CompressAI's encoder, our bounded decoder."""

    name = "ans"

    def __init__(self) -> None:
        self._encoder = ans.RansEncoder()

    def encode_with_indexes(self, *args, **kwargs) -> bytes:
        return self._encoder.encode_with_indexes(*args, **kwargs)

    def decode_with_indexes(
        self,
        string: bytes,
        indexes: Sequence[int],
        cdfs: Sequence[Sequence[int]],
        cdf_sizes: Sequence[int],
        offsets: Sequence[int],
    ) -> list[int]:
        symbols = decode_symbols(
            string, np.asarray(indexes), np.asarray(cdfs), np.asarray(cdf_sizes), np.asarray(offsets)
        )
        return symbols.tolist()
