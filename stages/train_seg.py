"""DVC stage: U-Net++ for one training size, condition and augmentation setting, over every seed in ``seg.seeds``.

    python -m stages.train_seg --size 16 --condition real --aug none [--params params.yaml]
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from dfgan.core.errors import run_stage
from dfgan.core.params_file import load_settings, require_listed
from dfgan.core.paths import PREPARED, SYNTHETIC, run_label, seg_run
from dfgan.core.settings import AUGS, Settings, gan_seeds_at, seg_seeds_at
from dfgan.seg.config import SegConfig
from dfgan.seg.experiment import run_condition
from dfgan.seg.training_sets import require_condition, uses_synthetic


@dataclass(frozen=True)
class SegInputs:
    """What this stage reads of the params."""

    config: SegConfig
    gan_seeds: tuple[int, ...]  # read only by conditions with GAN images
    deterministic: bool


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, required=True, help="training-set size (one of params 'sizes')")
    parser.add_argument("--condition", required=True, help="real, real2x, <variant> or <variant>2x")
    parser.add_argument("--aug", required=True, choices=AUGS, help="classic augmentation or none")
    parser.add_argument("--params", default="params.yaml")
    return parser.parse_args(argv)


def inputs(settings: Settings, args: argparse.Namespace) -> SegInputs:
    """Everything of the params this stage hands the library (tests/test_params_deps.py reads this)."""
    return SegInputs(
        config=SegConfig.of(settings.seg, args.aug, seg_seeds_at(settings, args.size)),
        gan_seeds=gan_seeds_at(settings, args.size) if uses_synthetic(args.condition) else (),
        deterministic=settings.runtime.deterministic,
    )


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    settings = load_settings(args.params)
    require_listed(settings, "sizes", args.size, args.params)
    require_condition(settings, args.condition, args.params)
    run = inputs(settings, args)
    metrics = run_condition(
        prepared_dir=PREPARED,
        synthetic_root=SYNTHETIC,
        size=args.size,
        condition=args.condition,
        config=run.config,
        gan_seeds=run.gan_seeds,
        files=seg_run(args.size, args.condition, args.aug),
        deterministic=run.deterministic,
    )
    dice = f"{metrics['dice_mean']:.4f} ± {metrics['dice_sem']:.4f}"
    label = run_label(args.condition, args.aug)
    print(f"{args.size} {label}: Dice {dice} over {len(metrics['seeds'])} seeds ({metrics['seconds']:.0f} s)")


if __name__ == "__main__":
    run_stage(main)
