"""Stage train_gan: one pix2pix or DF-GAN model for one training-set size (resumes a matching checkpoint)."""

from __future__ import annotations

import argparse
import json

from dfgan.core.params_file import load_params, require_listed
from dfgan.core.errors import run_stage
from dfgan.core.paths import gan_run
from dfgan.gan.training import train_gan
from stages.model_args import parse_model_args


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return parse_model_args(__doc__, argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    params = load_params(args.params)
    require_listed(params, "sizes", args.size, args.params)
    require_listed(params, "variants", args.variant, args.params)
    require_listed(params, "gan.seeds", args.seed, args.params)
    metrics = train_gan(
        args.prepared, args.size, args.variant, args.seed, params, gan_run(args.size, args.variant, args.seed)
    )
    print(json.dumps(metrics))


if __name__ == "__main__":
    run_stage(main)
