"""Stage train_gan: one pix2pix or DF-GAN model for one training-set size (resumes a matching checkpoint)."""

from __future__ import annotations

import argparse
import json

from dfgan.core.errors import run_stage
from dfgan.core.params_file import load_settings
from dfgan.core.paths import gan_run
from dfgan.core.settings import Settings
from dfgan.gan.config import GanConfig, GanRunOptions
from dfgan.gan.training import train_gan
from stages.model_args import check_model_args, parse_model_args


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return parse_model_args(__doc__, argv)


def inputs(settings: Settings, args: argparse.Namespace) -> tuple[GanConfig, GanRunOptions]:
    """Everything of the params this stage hands the library (tests/test_params_deps.py reads this)."""
    return GanConfig.of(settings, args.variant, args.seed), GanRunOptions.of(settings)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    settings = load_settings(args.params)
    check_model_args(settings, args)
    config, options = inputs(settings, args)
    metrics = train_gan(args.prepared, args.size, config, options, gan_run(args.size, args.variant, args.seed))
    print(json.dumps(metrics))


if __name__ == "__main__":
    run_stage(main)
