"""Stage synthesize: N synthetic images (and N more from flipped disease areas) from one trained generator."""

from __future__ import annotations

import argparse
import json

from dfgan.core.params_file import load_params, require_listed
from dfgan.core.errors import run_stage
from dfgan.core.paths import synth_run
from dfgan.gan.synthesis import synthesize
from stages.model_args import parse_model_args


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return parse_model_args(__doc__, argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    params = load_params(args.params)
    require_listed(params, "sizes", args.size, args.params)
    require_listed(params, "variants", args.variant, args.params)
    require_listed(params, "gan.seeds", args.seed, args.params)
    metrics = synthesize(
        args.prepared, args.size, args.variant, args.seed, params, synth_run(args.size, args.variant, args.seed)
    )
    print(json.dumps(metrics))


if __name__ == "__main__":
    run_stage(main)
