"""The one error that `load_image` raises for input it will not code, and the policy that makes it."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

from PIL import Image, UnidentifiedImageError


class ImageRejected(ValueError):
    """Input that is not coded, with a one-line message: what is wrong and what the user can do.

    Raised for bytes that are not an image, truncated or corrupt data, images above the pixel limit
    and pixel formats with no defined conversion. A pipeline records it as a bad input and goes on.
    """


@contextlib.contextmanager
def pillow_failures_rejected() -> Iterator[None]:
    """Turn every failure of Pillow on bad bytes into ImageRejected, naming what happened.

    Pillow's decoders raise many types on damaged input (OSError, SyntaxError, ValueError,
    struct.error, EOFError, IndexError, ...) and its own fuzzing treats all of them as "bad input",
    so we do too, keeping the type and text in the message. MemoryError is not bad input; it passes.
    Pillow's DecompressionBombWarning is raised as an error here; warnings.catch_warnings is
    process-wide and not thread-safe, so load images from one thread per process.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    except (ImageRejected, MemoryError):
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageRejected(
            f"{str(exc).rstrip('.')}; Pillow refuses it (PIL.Image.MAX_IMAGE_PIXELS = {Image.MAX_IMAGE_PIXELS}): "
            "raise that as well as --max-pixels to accept it"
        ) from exc
    except UnidentifiedImageError as exc:
        raise ImageRejected(
            "not an image Pillow can read (no image format recognises its first bytes); check the file type"
        ) from exc
    except Exception as exc:
        raise ImageRejected(
            f"image data is truncated or corrupt ({type(exc).__name__}: {exc}); re-export it from the original"
        ) from exc
