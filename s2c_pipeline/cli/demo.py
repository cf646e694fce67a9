"""``s2c demo``: the main job on the embedded defaults (bundled photos and weights, local output)."""

from __future__ import annotations

import argparse
from pathlib import Path

from tqdm import tqdm


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="encode and decode the bundled sample photos and print a table")
    p.add_argument("--out", type=Path, default=Path("out/demo"), help="where .s2c and decoded PNGs go")
    p.add_argument("--quality", type=float, default=None)
    p.set_defaults(run=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    from s2c_pipeline.codec.image_codec import ImageCodec
    from s2c_pipeline.imaging import image_to_png_bytes, load_image, metrics
    from s2c_pipeline.photos import evaluation_photos

    codec = ImageCodec.load()
    quality = args.quality if args.quality is not None else (codec.num_qualities + 1) / 2
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for photo in tqdm(evaluation_photos(), desc="demo", unit="image"):
        image = load_image(photo.load())
        data, decoded, timing = codec.encode_timed(image, quality)
        (args.out / f"{photo.name}.s2c").write_bytes(data)
        (args.out / f"{photo.name}.png").write_bytes(image_to_png_bytes(decoded.image))
        bpp = len(data) * 8 / (image.width * image.height)
        rows.append((photo.name, image.width, image.height, bpp, metrics.psnr(image.rgb, decoded.rgb), timing))
    print(f"\n{codec.model_name} ({codec.weights.weights_id}), quality {quality:g}, output in {args.out}/")
    print(f"{'file':<18} {'size':>9} {'bpp':>7} {'PSNR dB':>8} {'enc ms':>7} {'dec ms':>7}")
    for name, w, h, bpp, psnr, t in rows:
        print(f"{name:<18} {f'{w}x{h}':>9} {bpp:>7.3f} {psnr:>8.2f} {t.encode_ms:>7.0f} {t.decode_ms:>7.0f}")
    n = len(rows)
    print(f"{'mean':<18} {'':>9} {sum(r[3] for r in rows) / n:>7.3f} {sum(r[4] for r in rows) / n:>8.2f}")
    return 0
