"""Stage synthesize: N synthetic images (and N more from flipped disease areas) from one trained generator."""

from __future__ import annotations

import argparse
import json

from dfgan.config import load_params
from dfgan.gan import VARIANTS
from dfgan.synthesis import run_paths, synthesize


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, required=True)
    parser.add_argument("--variant", choices=VARIANTS, required=True)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--prepared", default="data/prepared")
    args = parser.parse_args()
    params = load_params(args.params)
    metrics = synthesize(args.prepared, args.size, args.variant, params, **run_paths(args.size, args.variant))
    print(json.dumps(metrics))


if __name__ == "__main__":
    main()
