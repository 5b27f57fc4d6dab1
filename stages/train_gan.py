"""Stage train_gan: one pix2pix or DF-GAN model for one training-set size (resumes a matching checkpoint)."""

from __future__ import annotations

import argparse
import json

from dfgan.config import load_params
from dfgan.gan import VARIANTS, run_paths, train_gan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, required=True)
    parser.add_argument("--variant", choices=VARIANTS, required=True)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--prepared", default="data/prepared")
    args = parser.parse_args()
    params = load_params(args.params)
    metrics = train_gan(args.prepared, args.size, args.variant, params, **run_paths(args.size, args.variant))
    print(json.dumps(metrics))


if __name__ == "__main__":
    main()
