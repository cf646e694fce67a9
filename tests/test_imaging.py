"""Every input image either becomes (H, W, 3) uint8 RGB with its conversion recorded, or is refused
with ImageRejected; restore_image gives back what the code records. Real photos (scikit-image and
sporco samples) converted with Pillow; 16-bit PNG, TIFF and PPM written by hand below, because
Pillow cannot write 16-bit colour.
"""

from __future__ import annotations

import io
import logging
import struct
import zlib

import numpy as np
import pytest
import skimage.data
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import ExifTags, Image, ImageCms, ImageOps
from sporco.util import ExampleImages

from s2c_pipeline.imaging import (
    DEFAULT_MAX_PIXELS,
    ColourHandling,
    ImageRejected,
    PreparedImage,
    image_to_png_bytes,
    load_image,
    restore_image,
)
from s2c_pipeline.imaging.colour import to_rgb

CH = ColourHandling


# --- sample images ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """A non-square crop of Kodak 23 (sporco), so that rotations change the shape."""
    return np.ascontiguousarray(ExampleImages().image("kodim23.png")[200:296, 300:428])


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return np.ascontiguousarray(skimage.data.astronaut()[100:180, 150:250])


def encode(img: Image.Image, fmt: str = "PNG", **options: object) -> bytes:
    out = io.BytesIO()
    img.save(out, format=fmt, **options)
    return out.getvalue()


def restored(prepared: PreparedImage, rgb: np.ndarray | None = None) -> Image.Image:
    return restore_image(
        prepared.rgb if rgb is None else rgb,
        colour=prepared.colour,
        alpha=prepared.alpha,
        icc_profile=prepared.icc_profile,
        exif=prepared.exif,
    )


def alpha_plane(prepared: PreparedImage) -> np.ndarray:
    assert prepared.alpha is not None
    return np.frombuffer(zlib.decompress(prepared.alpha), np.uint8).reshape(prepared.height, prepared.width)


def round16(samples: np.ndarray, maxval: int = 65535) -> np.ndarray:
    """The rounding the brief asks for, computed independently in floating point."""
    return np.floor(samples.astype(np.float64) * 255 / maxval + 0.5).astype(np.uint8)


def wide_samples(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """16-bit samples from a real photo plus noise, so that low bytes matter for rounding."""
    rng = np.random.default_rng(seed)
    base = skimage.data.coffee()[: shape[0], : shape[1]].astype(np.int64) * 257
    channels = shape[2] if len(shape) == 3 else 1
    base = np.concatenate([base] * 2, axis=2)[..., :channels]
    noisy = base + rng.integers(-200, 200, size=base.shape)
    return np.clip(noisy, 0, 65535).astype(np.uint16).reshape(shape)


_ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def png16(samples: np.ndarray, colour_type: int, *, interlaced: bool = False, trns: bytes = b"") -> bytes:
    """A 16-bit PNG, written by hand with every row filter type (so the decoder's bpp matters)."""
    height, width = samples.shape[:2]
    data = samples.astype(">u2").reshape(height, width, -1)
    bpp = data.shape[2] * 2
    raw = bytearray()
    for x0, y0, dx, dy in _ADAM7 if interlaced else [(0, 0, 1, 1)]:
        sub = np.ascontiguousarray(data[y0::dy, x0::dx])
        if sub.size == 0:
            continue
        rows = sub.view(np.uint8).reshape(sub.shape[0], -1).astype(np.int64)
        previous = np.zeros(rows.shape[1], np.int64)
        for y, row in enumerate(rows):
            raw += png_filter(row, previous, y % 5, bpp)
            previous = row
    ihdr = struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 1 if interlaced else 0)
    chunks = [(b"IHDR", ihdr)] + ([(b"tRNS", trns)] if trns else []) + [(b"IDAT", zlib.compress(bytes(raw)))]
    return png_chunks(chunks)


def png_filter(row: np.ndarray, previous: np.ndarray, kind: int, bpp: int) -> bytes:
    left = np.concatenate([np.zeros(bpp, np.int64), row[:-bpp]])
    up_left = np.concatenate([np.zeros(bpp, np.int64), previous[:-bpp]])
    if kind == 4:
        p = left + previous - up_left
        pa, pb, pc = np.abs(p - left), np.abs(p - previous), np.abs(p - up_left)
        predicted = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, previous, up_left))
    else:
        predicted = [0 * row, left, previous, (left + previous) // 2][kind]
    return bytes([kind]) + ((row - predicted) % 256).astype(np.uint8).tobytes()


def png_chunks(chunks: list[tuple[bytes, bytes]]) -> bytes:
    out = b"\x89PNG\r\n\x1a\n"
    for kind, body in [*chunks, (b"IEND", b"")]:
        out += struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    return out


def tiff16(samples: np.ndarray, *, order: str = "<", deflate: bool = False) -> bytes:
    """A one-strip 16-bit RGB(A) TIFF written by hand; deflate makes Pillow decode with libtiff."""
    height, width, channels = samples.shape
    pixels = samples.astype(f"{order}u2").tobytes()
    strip = zlib.compress(pixels) if deflate else pixels
    entries = [
        (256, 4, 1, width),
        (257, 4, 1, height),
        (258, 3, channels, None),
        (259, 3, 1, 8 if deflate else 1),
    ]
    entries += [(262, 3, 1, 2), (273, 4, 1, None), (277, 3, 1, channels), (278, 4, 1, height)]
    entries += [(279, 4, 1, len(strip)), (284, 3, 1, 1)] + ([(338, 3, 1, 2)] if channels == 4 else [])
    ifd_size = 2 + 12 * len(entries) + 4
    bits_at, strip_at = 8 + ifd_size, 8 + ifd_size + 2 * channels
    ifd = struct.pack(f"{order}H", len(entries))
    for tag, kind, count, value in entries:
        value = {258: bits_at, 273: strip_at}.get(tag, value)
        field = (
            struct.pack(f"{order}HH", value, 0)
            if kind == 3 and count == 1
            else struct.pack(f"{order}I", value)
        )
        ifd += struct.pack(f"{order}HHI", tag, kind, count) + field
    head = (b"II*\x00" if order == "<" else b"MM\x00*") + struct.pack(f"{order}I", 8)
    return head + ifd + b"\x00" * 4 + struct.pack(f"{order}{channels}H", *[16] * channels) + strip


def ppm16(samples: np.ndarray, maxval: int) -> bytes:
    height, width = samples.shape[:2]
    return b"P6\n%d %d\n%d\n" % (width, height, maxval) + samples.astype(">u2").tobytes()


def with_exif(img: Image.Image, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.Base.Make] = "S2C test camera"
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal] = "2024:05:06 07:08:09"
    exif.get_ifd(ExifTags.IFD.GPSInfo)[ExifTags.GPS.GPSLatitudeRef] = "N"
    return encode(img, "PNG", exif=exif.tobytes())


def srgb_profile() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


# --- RGB and the API's shape ---------------------------------------------------------------------


def test_rgb_png_is_coded_unchanged_from_bytes_path_and_pil(photo: np.ndarray, tmp_path) -> None:
    data = encode(Image.fromarray(photo))
    path = tmp_path / "photo.png"
    path.write_bytes(data)
    for source in (data, bytearray(data), str(path), path, Image.open(io.BytesIO(data))):
        prepared = load_image(source)
        assert prepared.rgb.dtype == np.uint8 and prepared.rgb.flags.c_contiguous
        np.testing.assert_array_equal(prepared.rgb, photo)
        assert (prepared.colour, prepared.source_mode, prepared.alpha) == (CH.RGB, "RGB", None)
        assert (prepared.width, prepared.height) == (photo.shape[1], photo.shape[0])


def test_jpeg_is_coded_as_pillow_decodes_it(photo: np.ndarray) -> None:
    data = encode(Image.fromarray(photo), "JPEG", quality=90)
    prepared = load_image(data)
    np.testing.assert_array_equal(prepared.rgb, np.asarray(Image.open(io.BytesIO(data))))
    assert prepared.colour == CH.RGB


def test_rgbx_is_rgb_without_its_padding(photo: np.ndarray) -> None:
    prepared = load_image(Image.fromarray(photo).convert("RGBX"))
    np.testing.assert_array_equal(prepared.rgb, photo)
    assert prepared.colour == CH.RGB and prepared.source_mode == "RGBX"


# --- grey ----------------------------------------------------------------------------------------


def test_grey_is_replicated_and_restored_as_l() -> None:
    grey = skimage.data.camera()[200:264, 100:200]
    prepared = load_image(encode(Image.fromarray(grey)))
    assert prepared.colour == CH.GREY and prepared.source_mode == "L"
    for channel in range(3):
        np.testing.assert_array_equal(prepared.rgb[..., channel], grey)
    back = restored(prepared)
    assert back.mode == "L"
    np.testing.assert_array_equal(np.asarray(back), grey)


def test_grey_restore_rounds_the_mean_of_decoded_channels() -> None:
    rgb = np.array([[[0, 0, 1], [0, 1, 1], [10, 11, 13], [255, 255, 254], [3, 4, 8]]], np.uint8)
    back = restore_image(rgb, colour=CH.GREY, alpha=None, icc_profile=None, exif=None)
    assert back.mode == "L"
    assert np.asarray(back).tolist() == [[0, 1, 11, 255, 5]]  # 1/3, 2/3, 34/3, 764/3, 15/3


def test_bilevel_is_grey(astronaut: np.ndarray) -> None:
    bilevel = Image.fromarray(astronaut).convert("1")
    prepared = load_image(encode(bilevel))
    assert prepared.colour == CH.GREY and prepared.source_mode == "1"
    np.testing.assert_array_equal(prepared.rgb[..., 0], np.asarray(bilevel.convert("L")))
    assert set(np.unique(prepared.rgb)) <= {0, 255}
    assert restored(prepared).mode == "L"


# --- alpha ---------------------------------------------------------------------------------------


def gradient_alpha(height: int, width: int) -> np.ndarray:
    return np.tile(np.linspace(0, 255, width).round().astype(np.uint8), (height, 1))


def test_rgba_alpha_is_carried_and_restored(photo: np.ndarray) -> None:
    rgba = np.dstack([photo, gradient_alpha(*photo.shape[:2])])
    prepared = load_image(encode(Image.fromarray(rgba)))
    assert prepared.colour == CH.RGB | CH.ALPHA_CARRIED
    np.testing.assert_array_equal(prepared.rgb, photo)
    np.testing.assert_array_equal(alpha_plane(prepared), rgba[..., 3])
    back = restored(prepared)
    assert back.mode == "RGBA"
    np.testing.assert_array_equal(np.asarray(back), rgba)


def test_opaque_alpha_is_dropped(photo: np.ndarray) -> None:
    rgba = np.dstack([photo, np.full(photo.shape[:2], 255, np.uint8)])
    prepared = load_image(encode(Image.fromarray(rgba)))
    assert prepared.colour == CH.RGB and prepared.alpha is None
    assert restored(prepared).mode == "RGB"


def test_one_transparent_pixel_is_enough_to_carry_alpha(photo: np.ndarray) -> None:
    rgba = np.dstack([photo, np.full(photo.shape[:2], 255, np.uint8)])
    rgba[5, 7, 3] = 254
    prepared = load_image(Image.fromarray(rgba))
    assert prepared.colour & CH.ALPHA_CARRIED
    assert alpha_plane(prepared)[5, 7] == 254 and alpha_plane(prepared).sum() == 255 * rgba[..., 0].size - 1


def test_grey_alpha_restores_as_la() -> None:
    grey = skimage.data.camera()[:48, :80]
    la = np.dstack([grey, gradient_alpha(48, 80)])
    prepared = load_image(encode(Image.fromarray(la)))
    assert prepared.colour == CH.GREY | CH.ALPHA_CARRIED and prepared.source_mode == "LA"
    back = restored(prepared)
    assert back.mode == "LA"
    np.testing.assert_array_equal(np.asarray(back), la)


def test_palette_with_transparent_index(astronaut: np.ndarray) -> None:
    palette = Image.fromarray(astronaut).quantize(64)
    index = np.asarray(palette)[0, 0]
    data = encode(palette, "GIF", transparency=int(index))
    prepared = load_image(data)
    assert prepared.colour == CH.PALETTE | CH.ALPHA_CARRIED and prepared.source_mode == "P"
    expected = np.asarray(Image.open(io.BytesIO(data)).convert("RGBA"))
    np.testing.assert_array_equal(prepared.rgb, expected[..., :3])
    np.testing.assert_array_equal(alpha_plane(prepared), np.where(np.asarray(palette) == index, 0, 255))
    assert restored(prepared).mode == "RGBA"


def test_palette_without_transparency_is_rgb(astronaut: np.ndarray) -> None:
    palette = Image.fromarray(astronaut).quantize(32)
    prepared = load_image(encode(palette))
    assert prepared.colour == CH.PALETTE and prepared.alpha is None
    np.testing.assert_array_equal(prepared.rgb, np.asarray(palette.convert("RGB")))
    assert restored(prepared).mode == "RGB"


def test_palette_alpha_mode(astronaut: np.ndarray) -> None:
    pa = Image.fromarray(np.dstack([astronaut, gradient_alpha(*astronaut.shape[:2])])).convert("PA")
    prepared = load_image(pa)
    assert prepared.colour == CH.PALETTE | CH.ALPHA_CARRIED and prepared.source_mode == "PA"
    np.testing.assert_array_equal(alpha_plane(prepared), np.asarray(pa.convert("RGBA"))[..., 3])


def test_single_colour_transparency_of_rgb_and_grey_pngs(astronaut: np.ndarray) -> None:
    rgb = Image.fromarray(astronaut)
    key = tuple(int(v) for v in astronaut[3, 4])
    prepared = load_image(encode(rgb, transparency=key))
    assert prepared.colour == CH.RGB | CH.ALPHA_CARRIED
    np.testing.assert_array_equal(alpha_plane(prepared), np.where((astronaut == key).all(axis=2), 0, 255))
    grey = rgb.convert("L")
    prepared = load_image(encode(grey, transparency=int(np.asarray(grey)[3, 4])))
    assert prepared.colour == CH.GREY | CH.ALPHA_CARRIED
    assert alpha_plane(prepared)[3, 4] == 0


# --- CMYK and other colour spaces ----------------------------------------------------------------


def test_cmyk_jpeg_is_converted_by_pillow_and_its_profile_dropped(photo: np.ndarray) -> None:
    cmyk_profile = bytes(16) + b"CMYK" + bytes(108)  # only the header's colour-space field is read
    data = encode(Image.fromarray(photo).convert("CMYK"), "JPEG", quality=95, icc_profile=cmyk_profile)
    prepared = load_image(data)
    assert prepared.colour == CH.CMYK and prepared.source_mode == "CMYK"
    assert prepared.icc_profile is None
    np.testing.assert_array_equal(prepared.rgb, np.asarray(Image.open(io.BytesIO(data)).convert("RGB")))
    assert restored(prepared).mode == "RGB"


@pytest.mark.parametrize("mode", ["YCbCr", "LAB", "HSV"])
def test_other_colour_spaces_are_converted_and_recorded(photo: np.ndarray, mode: str) -> None:
    source = Image.fromarray(photo).convert(mode)
    prepared = load_image(source)
    assert prepared.colour == CH.OTHER_CONVERTED and prepared.source_mode == mode
    np.testing.assert_array_equal(prepared.rgb, np.asarray(source.convert("RGB")))
    assert np.abs(prepared.rgb.astype(int) - photo).mean() < 2  # really RGB again, not raw channels


# --- 16 bits -------------------------------------------------------------------------------------


def test_16bit_grey_png_is_rounded_not_truncated() -> None:
    edges = np.array([0, 128, 129, 257 + 128, 257 + 129, 32767, 32768, 65407, 65408, 65535], np.uint16)
    samples = np.concatenate([edges, wide_samples((6, 10)).ravel()]).reshape(7, 10)
    source = Image.frombytes("I;16", (10, 7), samples.astype("<u2").tobytes())
    prepared = load_image(encode(source))
    assert prepared.source_mode == "I;16" and prepared.colour == CH.GREY | CH.DEPTH_REDUCED
    np.testing.assert_array_equal(prepared.rgb[..., 1], round16(samples))
    assert prepared.rgb[0, :5].tolist() == [[0] * 3, [0] * 3, [1] * 3, [1] * 3, [2] * 3]
    assert restored(prepared).mode == "L"


def test_16bit_grey_png_transparent_value_compares_all_16_bits() -> None:
    samples = wide_samples((6, 8))
    samples[1, 2], samples[3, 4] = 40000, 40001  # both round to 156
    source = Image.frombytes("I;16", (8, 6), samples.astype("<u2").tobytes())
    prepared = load_image(encode(source, transparency=40000))
    assert prepared.colour == CH.GREY | CH.ALPHA_CARRIED | CH.DEPTH_REDUCED
    np.testing.assert_array_equal(alpha_plane(prepared), np.where(samples == 40000, 0, 255))
    assert restored(prepared).mode == "LA"


@pytest.mark.parametrize("mode", ["I;16B", "I;16L", "I;16N", "I"])
def test_16bit_grey_modes(mode: str) -> None:
    samples = wide_samples((9, 13))
    dtype = {"I;16B": ">u2", "I;16L": "<u2", "I;16N": "=u2", "I": "=i4"}[mode]
    prepared = load_image(Image.frombytes(mode, (13, 9), samples.astype(dtype).tobytes()))
    assert prepared.colour == CH.GREY | CH.DEPTH_REDUCED
    np.testing.assert_array_equal(prepared.rgb[..., 2], round16(samples))


def test_16bit_pgm_opens_as_mode_i_and_is_rounded() -> None:
    samples = wide_samples((8, 12))
    prepared = load_image(b"P5\n12 8\n65535\n" + samples.astype(">u2").tobytes())
    assert prepared.source_mode == "I" and prepared.colour == CH.GREY | CH.DEPTH_REDUCED
    np.testing.assert_array_equal(prepared.rgb[..., 0], round16(samples))


def test_mode_i_outside_16_bits_is_refused() -> None:
    samples = np.array([[-5, 0, 70000]], np.int32)
    with pytest.raises(ImageRejected, match=r"'I'.*-5\.\.70000"):
        load_image(Image.frombytes("I", (3, 1), samples.tobytes()))


def test_float_mode_is_refused(photo: np.ndarray) -> None:
    with pytest.raises(ImageRejected, match="'F'"):
        load_image(Image.fromarray(photo).convert("F"))


@pytest.mark.parametrize("interlaced", [False, True])
def test_16bit_rgb_png_is_rounded_from_all_16_bits(interlaced: bool) -> None:
    samples = wide_samples((23, 37, 3))
    prepared = load_image(png16(samples, 2, interlaced=interlaced))
    assert prepared.source_mode == "RGB" and prepared.colour == CH.RGB | CH.DEPTH_REDUCED
    np.testing.assert_array_equal(prepared.rgb, round16(samples))
    assert (prepared.rgb != (samples >> 8)).any()  # Pillow's own high byte would differ


def test_16bit_rgba_png_rounds_colour_and_alpha() -> None:
    samples = wide_samples((17, 21, 4), seed=1)
    prepared = load_image(png16(samples, 6))
    assert prepared.colour == CH.RGB | CH.ALPHA_CARRIED | CH.DEPTH_REDUCED
    np.testing.assert_array_equal(prepared.rgb, round16(samples[..., :3]))
    np.testing.assert_array_equal(alpha_plane(prepared), round16(samples[..., 3]))


def test_16bit_grey_alpha_png_is_grey_although_pillow_opens_it_as_rgba() -> None:
    samples = wide_samples((15, 19, 2), seed=2)
    prepared = load_image(png16(samples, 4, interlaced=True))
    assert prepared.source_mode == "RGBA"
    assert prepared.colour == CH.GREY | CH.ALPHA_CARRIED | CH.DEPTH_REDUCED
    np.testing.assert_array_equal(prepared.rgb[..., 0], round16(samples[..., 0]))
    np.testing.assert_array_equal(alpha_plane(prepared), round16(samples[..., 1]))
    assert restored(prepared).mode == "LA"


def test_16bit_rgb_png_transparent_colour_compares_all_16_bits() -> None:
    samples = wide_samples((10, 12, 3), seed=3)
    key = samples[2, 3].copy()
    near = samples[4, 5]
    near[:] = key
    near[0] ^= 1  # same high bytes, different low byte: opaque
    prepared = load_image(png16(samples, 2, trns=key.astype(">u2").tobytes()))
    assert prepared.colour == CH.RGB | CH.ALPHA_CARRIED | CH.DEPTH_REDUCED
    alpha = alpha_plane(prepared)
    assert alpha[2, 3] == 0 and alpha[4, 5] == 255


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("deflate", [False, True], ids=["raw", "libtiff"])
@pytest.mark.parametrize("channels", [3, 4])
def test_16bit_tiff_is_rounded_from_all_16_bits(order: str, deflate: bool, channels: int) -> None:
    samples = wide_samples((11, 14, channels), seed=4)
    prepared = load_image(tiff16(samples, order=order, deflate=deflate))
    assert prepared.colour & CH.DEPTH_REDUCED and prepared.colour.kind == CH.RGB
    np.testing.assert_array_equal(prepared.rgb, round16(samples[..., :3]))
    if channels == 4:
        np.testing.assert_array_equal(alpha_plane(prepared), round16(samples[..., 3]))


@pytest.mark.parametrize("maxval", [65535, 1000])
def test_16bit_ppm_is_rounded_for_its_maxval(maxval: int) -> None:
    samples = (wide_samples((9, 10, 3), seed=5).astype(np.int64) * maxval // 65535).astype(np.uint16)
    prepared = load_image(ppm16(samples, maxval))
    assert prepared.colour == CH.RGB | CH.DEPTH_REDUCED
    np.testing.assert_array_equal(prepared.rgb, round16(samples, maxval))


def test_16bit_png_opened_by_the_caller_from_a_path_is_still_exact(tmp_path) -> None:
    samples = wide_samples((12, 16, 3), seed=6)
    path = tmp_path / "wide.png"
    path.write_bytes(png16(samples, 2))
    prepared = load_image(Image.open(path))
    np.testing.assert_array_equal(prepared.rgb, round16(samples))


def test_16bit_png_without_a_file_keeps_pillows_bits_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    samples = wide_samples((12, 16, 3), seed=7)
    lazy = Image.open(io.BytesIO(png16(samples, 2)))
    with caplog.at_level(logging.WARNING, logger="s2c_pipeline.imaging"):
        prepared = load_image(lazy)
    assert prepared.colour == CH.RGB | CH.DEPTH_REDUCED
    np.testing.assert_array_equal(prepared.rgb, samples >> 8)
    assert "narrowed by Pillow" in caplog.text


# --- orientation and metadata ---------------------------------------------------------------------


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_like_pillow_and_reset(photo: np.ndarray, orientation: int) -> None:
    data = with_exif(Image.fromarray(photo), orientation)
    prepared = load_image(data)
    upright = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))))
    np.testing.assert_array_equal(prepared.rgb, upright)
    assert bool(prepared.colour & CH.ORIENTATION_APPLIED) == (orientation != 1)
    exif = Image.Exif()
    exif.load(prepared.exif)
    assert exif[ExifTags.Base.Orientation] == 1
    assert exif[ExifTags.Base.Make] == "S2C test camera"
    assert exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal] == "2024:05:06 07:08:09"
    assert exif.get_ifd(ExifTags.IFD.GPSInfo)[ExifTags.GPS.GPSLatitudeRef] == "N"


def test_orientation_turns_alpha_with_the_pixels(photo: np.ndarray) -> None:
    rgba = Image.fromarray(np.dstack([photo, gradient_alpha(*photo.shape[:2])]))
    data = with_exif(rgba, 6)
    prepared = load_image(data)
    upright = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))))
    assert prepared.rgb.shape == (photo.shape[1], photo.shape[0], 3)
    np.testing.assert_array_equal(alpha_plane(prepared), upright[..., 3])
    np.testing.assert_array_equal(np.asarray(restored(prepared)), upright)


def test_jpeg_orientation_and_icc_profile(photo: np.ndarray) -> None:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 8
    data = encode(Image.fromarray(photo), "JPEG", exif=exif.tobytes(), icc_profile=srgb_profile())
    prepared = load_image(data)
    assert prepared.colour == CH.ORIENTATION_APPLIED
    np.testing.assert_array_equal(
        prepared.rgb, np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))))
    )
    assert prepared.icc_profile == srgb_profile()


def test_restore_and_png_keep_icc_profile_and_exif(photo: np.ndarray) -> None:
    prepared = load_image(encode(Image.fromarray(photo), "PNG", icc_profile=srgb_profile()))
    reread = Image.open(io.BytesIO(image_to_png_bytes(restored(prepared))))
    assert reread.info["icc_profile"] == srgb_profile()
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "kept"
    back = restore_image(
        prepared.rgb, colour=prepared.colour, alpha=None, icc_profile=None, exif=exif.tobytes()
    )
    reread = Image.open(io.BytesIO(image_to_png_bytes(back)))
    assert reread.getexif()[ExifTags.Base.Make] == "kept"
    np.testing.assert_array_equal(np.asarray(reread), photo)


def test_grey_image_keeps_its_grey_profile_and_rgb_drops_a_wrong_one(photo: np.ndarray) -> None:
    grey_profile = bytes(16) + b"GRAY" + bytes(108)
    assert (
        load_image(
            Image.open(io.BytesIO(encode(Image.fromarray(photo).convert("L"), icc_profile=grey_profile)))
        ).icc_profile
        == grey_profile
    )
    assert load_image(encode(Image.fromarray(photo), icc_profile=grey_profile)).icc_profile is None


def test_damaged_exif_is_carried_and_not_applied(photo: np.ndarray, caplog: pytest.LogCaptureFixture) -> None:
    damaged = b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\xff\xff"
    with caplog.at_level(logging.WARNING, logger="s2c_pipeline.imaging"):
        prepared = load_image(encode(Image.fromarray(photo), "JPEG", exif=damaged))
    assert prepared.exif == damaged and not prepared.colour & CH.ORIENTATION_APPLIED


# --- limits and bad input ------------------------------------------------------------------------


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares a size but whose pixel data is cut short: decoding it would fail."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return png_chunks([(b"IHDR", ihdr), (b"IDAT", zlib.compress(b"\x00" * 64)[:20])])


def test_size_is_checked_from_the_header_before_decoding() -> None:
    with pytest.raises(ImageRejected) as caught:
        load_image(png_header_only(12000, 2500))
    message = str(caught.value)
    assert message == (
        "image is 12000x2500 = 30.0 MP, above the 25.0 MP limit (--max-pixels); large images are refused, not tiled"
    )
    with pytest.raises(ImageRejected, match="truncated or corrupt"):
        load_image(png_header_only(120, 25))  # same file, small enough: decoding is what fails


def test_max_pixels_boundary_and_default(photo: np.ndarray) -> None:
    data = encode(Image.fromarray(photo))
    assert DEFAULT_MAX_PIXELS == 25_000_000
    assert load_image(data, max_pixels=photo.shape[0] * photo.shape[1]).rgb.shape == photo.shape
    with pytest.raises(ImageRejected, match="limit"):
        load_image(data, max_pixels=photo.shape[0] * photo.shape[1] - 1)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="max_pixels"):
            load_image(data, max_pixels=bad)


@pytest.mark.parametrize(("width", "height"), [(10000, 10000), (20000, 10000)])
def test_pillow_decompression_bomb_limits_are_rejections(width: int, height: int) -> None:
    with pytest.raises(ImageRejected, match="MAX_IMAGE_PIXELS"):
        load_image(png_header_only(width, height), max_pixels=10**9)


@pytest.mark.parametrize("data", [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n", bytes(range(256))])
def test_bytes_that_are_not_an_image_are_rejected(data: bytes) -> None:
    with pytest.raises(ImageRejected, match="not an image"):
        load_image(data)


SEED_FORMATS = {
    "PNG": {},
    "JPEG": {"quality": 80},
    "GIF": {},
    "TIFF": {"compression": "tiff_deflate"},
    "BMP": {},
    "WEBP": {},
}


@pytest.mark.parametrize("fmt", SEED_FORMATS)
def test_truncated_files_are_rejected(photo: np.ndarray, fmt: str) -> None:
    data = encode(Image.fromarray(photo), fmt, **SEED_FORMATS[fmt])
    with pytest.raises(ImageRejected):
        load_image(data[: len(data) * 2 // 3])


def test_failures_other_than_oserror_are_rejections_too(photo: np.ndarray) -> None:
    """A chunk type that is not letters, met while decoding: Pillow raises SyntaxError there."""
    rows = b"".join(b"\x00" + row.tobytes() for row in photo)
    pixels = zlib.compress(rows)
    ihdr = struct.pack(">IIBBBBB", photo.shape[1], photo.shape[0], 8, 2, 0, 0, 0)
    half = len(pixels) // 2
    data = png_chunks([(b"IHDR", ihdr), (b"IDAT", pixels[:half]), (b"\x0b{\xb0\x1f", pixels[half:])])
    with pytest.raises(ImageRejected, match=r"truncated or corrupt \(SyntaxError: broken PNG file"):
        load_image(data)


def seed_files() -> list[bytes]:
    small = Image.fromarray(skimage.data.astronaut()[200:216, 200:220])
    files = [encode(small, fmt, **options) for fmt, options in SEED_FORMATS.items()]
    files.append(png16(wide_samples((6, 7, 3)), 2, interlaced=True))
    files.append(tiff16(wide_samples((5, 6, 4)), order=">", deflate=True))
    files.append(with_exif(small, 6))
    return files


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.sampled_from(seed_files()),
    cut=st.floats(0, 1),
    flips=st.lists(st.tuples(st.floats(0, 1), st.integers(1, 255)), max_size=4),
)
def test_damaged_files_raise_only_image_rejected(
    seed: bytes, cut: float, flips: list[tuple[float, int]]
) -> None:
    data = bytearray(seed[: max(1, round(len(seed) * (0.3 + 0.7 * cut)))])
    for where, mask in flips:
        data[min(len(data) - 1, int(where * len(data)))] ^= mask
    try:
        prepared = load_image(bytes(data), max_pixels=100_000)
    except ImageRejected as exc:
        assert "\n" not in str(exc)
    else:
        assert prepared.rgb.dtype == np.uint8 and prepared.rgb.ndim == 3 and prepared.rgb.shape[2] == 3


def test_eps_is_refused_before_ghostscript_runs(astronaut: np.ndarray) -> None:
    with pytest.raises(ImageRejected, match="EPS"):
        load_image(encode(Image.fromarray(astronaut), "EPS"))


def test_missing_file_and_wrong_type_are_not_image_rejections(tmp_path) -> None:
    with pytest.raises(FileNotFoundError):
        load_image(tmp_path / "absent.png")
    with pytest.raises(TypeError, match="int"):
        load_image(42)  # type: ignore[arg-type]


def test_empty_image_is_refused() -> None:
    with pytest.raises(ImageRejected, match="0x5"):
        load_image(Image.new("RGB", (0, 5)))


@pytest.mark.parametrize("size", [(1, 1), (3, 500), (500, 3), (1, 7)])
def test_tiny_images_load_and_restore(size: tuple[int, int]) -> None:
    rng = np.random.default_rng(sum(size))
    rgb = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    prepared = load_image(encode(Image.fromarray(rgb)))
    np.testing.assert_array_equal(prepared.rgb, rgb)
    np.testing.assert_array_equal(np.asarray(restored(prepared)), rgb)


def test_animation_codes_the_first_frame_and_records_it(astronaut: np.ndarray) -> None:
    frames = [Image.fromarray(astronaut), Image.fromarray(astronaut[::-1].copy())]
    data = encode(frames[0], "PNG", save_all=True, append_images=frames[1:])
    prepared = load_image(data)
    assert prepared.colour == CH.FRAMES_DROPPED
    np.testing.assert_array_equal(prepared.rgb, astronaut)


def test_unknown_mode_is_refused_by_name(photo: np.ndarray) -> None:
    with pytest.raises(ImageRejected, match="'I;16'"):
        to_rgb(Image.fromarray(photo).convert("L").convert("I;16"))


# --- the colour-handling code --------------------------------------------------------------------


def test_codes_fit_a_byte_and_read_back() -> None:
    flags = CH.ALPHA_CARRIED | CH.ORIENTATION_APPLIED | CH.DEPTH_REDUCED | CH.FRAMES_DROPPED
    for kind in (CH.RGB, CH.GREY, CH.PALETTE, CH.CMYK, CH.OTHER_CONVERTED):
        code = kind | flags
        assert 0 <= int(code) <= 0x7F and bytes([code]) == bytes([int(code)])
        assert CH.from_code(int(code)).kind == kind
    assert (CH.CMYK | CH.ALPHA_CARRIED).describe() == "CMYK|ALPHA_CARRIED"
    assert (CH.CMYK | CH.ALPHA_CARRIED).kind != CH.GREY
    assert [int(c) for c in (CH.GREY, CH.PALETTE, CH.CMYK, CH.OTHER_CONVERTED)] == [1, 2, 3, 4]
    assert [
        int(c) for c in (CH.ALPHA_CARRIED, CH.ORIENTATION_APPLIED, CH.DEPTH_REDUCED, CH.FRAMES_DROPPED)
    ] == [
        8,
        16,
        32,
        64,
    ]


@pytest.mark.parametrize("code", [5, 6, 7, 0x80, 0x85, 256, -1])
def test_restore_refuses_codes_it_does_not_know(code: int) -> None:
    with pytest.raises(ValueError, match="colour handling code"):
        restore_image(np.zeros((2, 2, 3), np.uint8), colour=code, alpha=None, icc_profile=None, exif=None)


def test_restore_checks_alpha_against_the_code_and_the_size() -> None:
    rgb = np.zeros((4, 5, 3), np.uint8)
    with pytest.raises(ValueError, match="disagree"):
        restore_image(rgb, colour=CH.RGB, alpha=zlib.compress(bytes(20)), icc_profile=None, exif=None)
    with pytest.raises(ValueError, match="disagree"):
        restore_image(rgb, colour=CH.ALPHA_CARRIED, alpha=None, icc_profile=None, exif=None)
    with pytest.raises(ValueError, match="expected 20"):
        restore_image(
            rgb, colour=CH.ALPHA_CARRIED, alpha=zlib.compress(bytes(19)), icc_profile=None, exif=None
        )
    with pytest.raises(ValueError, match="more than 20"):
        restore_image(
            rgb, colour=CH.ALPHA_CARRIED, alpha=zlib.compress(bytes(10**6)), icc_profile=None, exif=None
        )
    with pytest.raises(ValueError, match="zlib"):
        restore_image(rgb, colour=CH.ALPHA_CARRIED, alpha=b"\x00\x01", icc_profile=None, exif=None)


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA", "LA", "P"])
def test_restored_png_loads_back_to_the_same_pixels_and_kind(astronaut: np.ndarray, mode: str) -> None:
    rgba = Image.fromarray(np.dstack([astronaut, gradient_alpha(*astronaut.shape[:2])]))
    source = rgba.convert(mode) if mode != "P" else Image.fromarray(astronaut).quantize(16)
    first = load_image(source)
    second = load_image(image_to_png_bytes(restored(first)))
    np.testing.assert_array_equal(second.rgb, first.rgb)
    assert second.alpha == first.alpha
    assert second.colour.kind == (first.colour.kind if mode != "P" else CH.RGB)
