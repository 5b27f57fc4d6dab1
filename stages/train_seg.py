"""DVC stage: U-Net++ for one training size, condition and augmentation setting, over every seed in ``seg.seeds``.

    python -m stages.train_seg --size 16 --condition real --aug none [--params params.yaml]
"""

from __future__ import annotations

import argparse

from dfgan.core.speed import runtime_deterministic
from dfgan.core.params_file import load_params, require_listed, section
from dfgan.core.errors import run_stage
from dfgan.core.paths import PREPARED, SYNTHETIC, run_label, seg_run
from dfgan.seg.experiment import run_condition
from dfgan.seg.training_sets import require_condition, uses_synthetic


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, required=True, help="training-set size (one of params 'sizes')")
    parser.add_argument("--condition", required=True, help="real, real2x, <variant> or <variant>2x")
    parser.add_argument("--aug", required=True, choices=["none", "classic"], help="classic augmentation or none")
    parser.add_argument("--params", default="params.yaml")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)

    params = load_params(args.params)
    require_listed(params, "sizes", args.size, args.params)
    require_condition(params, args.condition, args.params)
    seg = section(params, "seg")
    label = run_label(args.condition, args.aug)
    metrics = run_condition(
        prepared_dir=PREPARED,
        synthetic_root=SYNTHETIC,
        size=args.size,
        condition=args.condition,
        aug=args.aug,
        seg_params=seg,
        gan_seeds=section(params, "gan")["seeds"] if uses_synthetic(args.condition) else [],
        files=seg_run(args.size, args.condition, args.aug),
        deterministic=runtime_deterministic(params),
    )
    dice = f"{metrics['dice_mean']:.4f} ± {metrics['dice_sem']:.4f}"
    print(f"{args.size} {label}: Dice {dice} over {len(metrics['seeds'])} seeds ({metrics['seconds']:.0f} s)")


if __name__ == "__main__":
    run_stage(main)
