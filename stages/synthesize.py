"""Stage synthesize: N synthetic images (and N more from flipped disease areas) from one trained generator."""

from __future__ import annotations

import json

from dfgan.core.params_file import load_params, require_listed
from dfgan.core.errors import run_stage
from dfgan.gan.synthesis import run_paths, synthesize
from stages.model_args import parse_model_args


def main() -> None:
    args = parse_model_args(__doc__)
    params = load_params(args.params)
    require_listed(params, "sizes", args.size, args.params)
    require_listed(params, "variants", args.variant, args.params)
    require_listed(params, "gan.seeds", args.seed, args.params)
    metrics = synthesize(
        args.prepared, args.size, args.variant, args.seed, params, **run_paths(args.size, args.variant, args.seed)
    )
    print(json.dumps(metrics))


if __name__ == "__main__":
    run_stage(main)
