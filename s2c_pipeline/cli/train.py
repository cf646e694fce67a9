"""``s2c train``: config-driven training, single process or on Ray Train; ``--export`` at the end."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from s2c_pipeline.cli.errors import UsageError
from s2c_pipeline.cli.output import report

COMMANDS = {"train": "train (or resume) a model from a training-data pack"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help=COMMANDS["train"], description=COMMANDS["train"])
    p.add_argument("--config", type=Path, default=None, help="YAML file of training options")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one option, e.g. --set steps=5000 (repeatable)",
    )
    p.add_argument(
        "--ray-workers",
        type=int,
        default=0,
        help="train data-parallel on Ray Train with this many workers (0: in this process)",
    )
    p.add_argument(
        "--export",
        type=Path,
        default=None,
        metavar="DIR",
        help="after training, write the compact sha256-named checkpoint into DIR",
    )
    p.add_argument(
        "--bundle", action="store_true", help="also install the export as the package's bundled weights"
    )
    p.set_defaults(run=run_train)


def run_train(args: argparse.Namespace) -> int:
    from s2c_pipeline.train.config import load_train_config
    from s2c_pipeline.train.export import bundle, export_run
    from s2c_pipeline.train.loop import train

    try:
        cfg = load_train_config(args.config, args.overrides)
    except (ValueError, OSError) as exc:
        raise UsageError(str(exc)) from None
    from s2c_pipeline.train.datapack import pack_files

    if not any(p.exists() for p in pack_files(cfg.data)):
        raise UsageError(
            f"training data pack {cfg.data} not found; build it with "
            "`python -m s2c_pipeline.photos.fetch` then `python -m s2c_pipeline.train.datapack` (docs/photos.md)"
        )
    if cfg.validation.endswith(".tar"):
        if not Path(cfg.validation).is_file():
            raise UsageError(
                f"validation pack {cfg.validation} not found; build it with `make device-packs` (docs/weights.md)"
            )
    elif cfg.validation:
        from s2c_pipeline.photos import validation_photo_files

        try:
            validation_photo_files(Path(cfg.validation))
        except FileNotFoundError as exc:
            raise UsageError(str(exc)) from None
    if args.ray_workers:
        from s2c_pipeline.train.ray_train import train_on_ray

        train_on_ray(cfg, num_workers=args.ray_workers)
    else:
        train(cfg)
    if args.export:
        entry = export_run(Path(cfg.out), args.export, command=shlex.join(["s2c", *sys.argv[1:]]))
        report(args, f"exported {entry.path} (sha256 {entry.sha256})")
        if args.bundle:
            bundle(entry, default=True)
            report(args, f"bundled {entry.path.name} as the default {entry.model_name} weights")
    return 0
