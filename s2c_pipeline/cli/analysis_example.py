"""Regenerate the example reports in docs/analysis-example/ from the demo sample shards.

    python -m s2c_pipeline.cli.analysis_example [--weights FILE] [--out docs/analysis-example]

Builds the demo shards (the evaluation photos through ``build_sample_shards``) under
``data-cache/demo-shards/``, runs ``s2c analyze`` on them, then ``s2c compress`` (a local Ray) into
``data-cache/demo-run/`` and ``s2c report`` on that run into ``OUT/run-report/``, so the projection
can be compared with what the run wrote. Run it from the repository root; every command is printed
and recorded at the top of its report. It lives in ``cli/`` because it drives the ``s2c`` verbs
themselves, so the reports say which commands made them; ``analysis/`` knows no CLI.
"""

from __future__ import annotations

import argparse
import logging
import shutil
from pathlib import Path

log = logging.getLogger(__name__)

SHARDS_DIR = Path("data-cache/demo-shards")
RUN_DIR = Path("data-cache/demo-run")
ANALYZE_ARGS = ("--sample", "12", "--shards", "3", "--codecs", "jpeg,webp,avif,jxl", "--assume-size", "100TB",
                "--reads-per-month", "1000000", "--threads", "1", "--seed", "0")
KEEP = (".md", ".png")
"""What is committed: the Markdown and its figures (the JSON and HTML are regenerated at will)."""


def main(argv: list[str] | None = None) -> int:
    from s2c_pipeline.cli import main as cli
    from s2c_pipeline.photos import evaluation_photos
    from s2c_pipeline.shards.samples import build_sample_shards

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/analysis-example"))
    parser.add_argument("--weights", type=Path, default=None, help="a checkpoint instead of the bundled weights")
    parser.add_argument("--shards-dir", type=Path, default=SHARDS_DIR)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    if args.shards_dir.exists():
        shutil.rmtree(args.shards_dir)
    build_sample_shards(args.shards_dir, [(p.name, p.load()) for p in evaluation_photos()])
    weights = ["--weights", str(args.weights)] if args.weights is not None else []
    if RUN_DIR.exists():
        shutil.rmtree(RUN_DIR)
    commands = [
        ["analyze", f"{args.shards_dir}/*.tar", *ANALYZE_ARGS, "--out", str(args.out), *weights],
        ["compress", f"{args.shards_dir}/*.tar", str(RUN_DIR), "--no-progress", *weights],
        ["report", str(RUN_DIR), "--out", str(args.out / "run-report")],
    ]
    for command in commands:
        print("s2c " + " ".join(command))
        code = cli.main(command)
        if code:
            return code
    for path in [*args.out.iterdir(), *(args.out / "run-report").iterdir()]:
        if path.is_file() and path.suffix not in KEEP:
            path.unlink()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
