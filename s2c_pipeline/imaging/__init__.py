"""Images in and out of the codec: loading any input to 8-bit RGB, restoring it, quality metrics.

See docs/imaging.md for every input mode's handling and the colour-handling code's bits.
"""

from s2c_pipeline.imaging.colour import ColourHandling
from s2c_pipeline.imaging.errors import ImageRejected
from s2c_pipeline.imaging.load import DEFAULT_MAX_PIXELS, PreparedImage, load_image
from s2c_pipeline.imaging.metrics import ms_ssim, pixels_sha256, psnr
from s2c_pipeline.imaging.restore import check_restorable, image_to_png_bytes, restore_image

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "ColourHandling",
    "ImageRejected",
    "PreparedImage",
    "check_restorable",
    "image_to_png_bytes",
    "load_image",
    "ms_ssim",
    "pixels_sha256",
    "psnr",
    "restore_image",
]
