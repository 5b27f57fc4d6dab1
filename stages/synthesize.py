"""Stage synthesize: N synthetic images (and N more from flipped disease areas) from one trained generator."""

from __future__ import annotations

import argparse
import json

from dfgan.core.errors import run_stage
from dfgan.core.params_file import load_settings
from dfgan.core.paths import synth_run
from dfgan.core.settings import Settings
from dfgan.gan.synthesis import SynthesisConfig, synthesize
from stages.model_args import check_model_args, parse_model_args


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return parse_model_args(__doc__, argv)


def inputs(settings: Settings, args: argparse.Namespace) -> SynthesisConfig:
    """Everything of the params this stage hands the library (tests/test_params_deps.py reads this)."""
    return SynthesisConfig.of(settings)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    settings = load_settings(args.params)
    check_model_args(settings, args)
    metrics = synthesize(
        args.prepared, args.size, args.variant, args.seed, inputs(settings, args),
        synth_run(args.size, args.variant, args.seed),
    )
    print(json.dumps(metrics))


if __name__ == "__main__":
    run_stage(main)
