"""Where along the curve a codec wins or loses against another: the rate gap per quality level.

A BD-rate is one number over the whole overlap; this says which levels make it. For each point of
the test curve in an ``s2c eval --json`` file (the mean curves), the anchor's rate at the same PSNR,
its curve interpolated linearly in log-rate, and how many percent more (+) or fewer (-) bits the
test needs. Points outside the anchor's PSNR range are marked and get no figure.

    python benchmarks/level_gaps.py [benchmarks/results/eval.json] [--anchor webp] [--test NAME]
        [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np


def level_gaps(curves: dict[str, list[dict]], test: str, anchor: str) -> list[dict]:
    points = sorted(curves[anchor], key=lambda p: p["psnr"])
    psnr = np.array([p["psnr"] for p in points])
    log_rate = np.log([p["bpp"] for p in points])
    rows = []
    for p in curves[test]:
        row = {"setting": p["setting"], "bpp": round(p["bpp"], 4), "psnr": round(p["psnr"], 2)}
        if psnr[0] <= p["psnr"] <= psnr[-1]:
            anchor_bpp = math.exp(float(np.interp(p["psnr"], psnr, log_rate)))
            row["anchor_bpp"] = round(anchor_bpp, 4)
            row["rate_gap_pct"] = round(100 * (p["bpp"] / anchor_bpp - 1), 1)
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("eval_json", nargs="?", default="benchmarks/results/eval.json", type=Path)
    parser.add_argument("--anchor", default="webp")
    parser.add_argument("--test", help="a curve name in the file (default: the first learned one)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    data = json.loads(args.eval_json.read_text())
    curves = data["mean_curves"]
    learned = [c["name"] for c in data["codecs"] if c["kind"] == "learned"]
    test = args.test or (learned[0] if learned else None)
    for name in (test, args.anchor):
        if name not in curves:
            raise SystemExit(f"{args.eval_json} has no curve {name!r}; it has: {', '.join(curves)}")
    rows = level_gaps(curves, test, args.anchor)
    print(f"{test} against {args.anchor} ({args.eval_json})")
    print(f"{'setting':>8} {'bpp':>8} {'PSNR dB':>8} {args.anchor + ' bpp':>10} {'gap':>8}")
    for r in rows:
        gap = f"{r['rate_gap_pct']:+.1f} %" if "rate_gap_pct" in r else "outside"
        anchor_bpp = f"{r['anchor_bpp']:.4f}" if "anchor_bpp" in r else "-"
        print(f"{r['setting']:>8g} {r['bpp']:>8.4f} {r['psnr']:>8.2f} {anchor_bpp:>10} {gap:>8}")
    if args.json:
        args.json.write_text(json.dumps({"source": str(args.eval_json), "test": test, "anchor": args.anchor,
                                         "levels": rows}, indent=1) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
