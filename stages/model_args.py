"""Command-line arguments shared by the stages that act on one GAN model (one training size x variant x seed)."""

from __future__ import annotations

import argparse

from dfgan.core.errors import InputError
from dfgan.core.params_file import require_listed
from dfgan.core.paths import PREPARED
from dfgan.core.rules import VARIANTS
from dfgan.core.settings import Settings, gan_seeds_at


def parse_model_args(description: str | None, argv: list[str] | None = None) -> argparse.Namespace:
    """``--size N --variant {pix2pix,dfgan,dfgan_paper} --seed K [--params params.yaml] [--prepared data/prepared]``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--size", type=int, required=True, help="training-set size (one of params 'sizes')")
    parser.add_argument("--variant", choices=VARIANTS, required=True)
    parser.add_argument("--seed", type=int, required=True,
                        help="GAN seed (one of params 'gan.seeds', or 'gan.extra_seeds' at 'gan.extra_sizes')")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--prepared", default=str(PREPARED))
    return parser.parse_args(argv)


def check_model_args(settings: Settings, args: argparse.Namespace) -> None:
    """Refuse a size, variant or GAN seed that the params do not list (it would have no DVC stage)."""
    require_listed(settings, "sizes", args.size, args.params)
    require_listed(settings, "variants", args.variant, args.params)
    seeds = gan_seeds_at(settings, args.size)
    if args.seed not in seeds:
        raise InputError(f"{args.params}: GAN seed {args.seed} is not trained at size {args.size} (its seeds: "
                         f"{list(seeds)}: gan.seeds, plus gan.extra_seeds at gan.extra_sizes)")
