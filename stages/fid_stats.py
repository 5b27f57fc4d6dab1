"""Stage fid_stats: Inception statistics of the real images, data/fid_stats/train_<size>.npz and test.npz.

    python -m stages.fid_stats                          # every size in params.yaml, and the test set
    python -m stages.fid_stats --split train --size 16  # one training size
    python -m stages.fid_stats --split test
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass

from dfgan.core.errors import run_stage
from dfgan.core.params_file import load_settings, require_listed
from dfgan.core.paths import FID_STATS, PREPARED
from dfgan.core.runtime import resolve_device
from dfgan.core.settings import Settings
from dfgan.gan.fid import write_reference_stats


@dataclass(frozen=True)
class FidStatsInputs:
    """What this stage reads of the params."""

    sizes: tuple[int, ...]  # the training sizes whose statistics are written (none for --split test)
    batch_size: int
    device: str
    inception_path: str | None
    include_flips: bool  # gan.jitter_flip: the GAN's targets include mirror images then


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", choices=["all", "train", "test"], default="all")
    parser.add_argument("--size", type=int, help="with --split train: one size (default: every size)")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--prepared", default=str(PREPARED))
    return parser.parse_args(argv)


def inputs(settings: Settings, args: argparse.Namespace) -> FidStatsInputs:
    """Everything of the params this stage hands the library (tests/test_params_deps.py reads this)."""
    if args.split == "test":
        sizes: tuple[int, ...] = ()
    else:
        sizes = (args.size,) if args.size is not None else settings.sizes
    fid = settings.fid
    return FidStatsInputs(sizes, fid.batch_size, fid.device, fid.inception_path, settings.gan.jitter_flip)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    settings = load_settings(args.params)
    if args.size is not None:
        require_listed(settings, "sizes", args.size, args.params)
    run = inputs(settings, args)
    summary = write_reference_stats(
        args.prepared,
        list(run.sizes),
        FID_STATS,
        run.batch_size,
        resolve_device(run.device),
        include_test=args.split in ("all", "test"),
        include_flips=run.include_flips,
        inception_path=run.inception_path,
    )
    print(json.dumps(summary))


if __name__ == "__main__":
    run_stage(main)
