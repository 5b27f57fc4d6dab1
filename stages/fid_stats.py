"""Stage fid_stats: Inception statistics of the real images, data/fid_stats/train_<size>.npz and test.npz.

    python -m stages.fid_stats                          # every size in params.yaml, and the test set
    python -m stages.fid_stats --split train --size 16  # one training size
    python -m stages.fid_stats --split test
"""

from __future__ import annotations

import argparse
import json

from dfgan.core.params_file import load_params, require_listed
from dfgan.core.errors import run_stage
from dfgan.core.paths import FID_STATS, PREPARED
from dfgan.gan.fid import write_reference_stats
from dfgan.core.runtime import resolve_device


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", choices=["all", "train", "test"], default="all")
    parser.add_argument("--size", type=int, help="with --split train: one size (default: every size)")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--prepared", default=str(PREPARED))
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    params = load_params(args.params)
    if args.size is not None:
        require_listed(params, "sizes", args.size, args.params)
    sizes = [args.size] if args.size is not None else [int(s) for s in params["sizes"]]
    summary = write_reference_stats(
        args.prepared,
        sizes if args.split in ("all", "train") else [],
        FID_STATS,
        int(params["fid"]["batch_size"]),
        resolve_device(params["fid"]["device"]),
        include_test=args.split in ("all", "test"),
        include_flips=bool(params["gan"]["jitter_flip"]),  # the GAN's targets include mirror images then
        inception_path=params["fid"]["inception_path"],
    )
    print(json.dumps(summary))


if __name__ == "__main__":
    run_stage(main)
