"""Benchmark: does running the FID loss's Inception in bfloat16 move the FID? And how much faster is it?

    python -m benchmarks.bench_inception_precision [--prepared data/prepared] [--params params.yaml] [--batch 16]

``gan.inception_bf16`` may only be switched on where it moves the batch FID by less than 1 % on real images. This
script measures exactly that on the prepared images (real X-rays, or the phantom): Inception pool3 features of the
training pool of the largest size and of the test images, computed once in float32 and once under bfloat16
autocast, then

- the batch FID the loss computes (each batch of ``--batch`` training images against the statistics of all
  training images, through the training code's ``FIDLoss``), float32 vs bfloat16: median and largest relative
  difference over the batches;
- the full-set FID of the training pool vs the test images, float32 vs bfloat16;
- on CUDA, the time of one Inception forward + backward at ``--batch`` images in each precision.

It prints a verdict line: "eligible" when the largest batch-FID difference is under 1 %. bfloat16 autocast runs on
CPUs too (slowly), so the numbers can be checked without a GPU.
"""

from __future__ import annotations

import argparse
import functools
import statistics

import numpy as np
import torch

from benchmarks.throughput import device_name, median_seconds
from dfgan.core.imaging import uint8_to_unit
from dfgan.core.params_file import load_settings
from dfgan.core.runtime import resolve_device
from dfgan.data.prepared_arrays import load_prepared
from dfgan.gan.fid import FIDLoss, compute_features, feature_statistics, frechet_distance
from dfgan.gan.inception import load_inception

TOLERANCE = 0.01  # the largest batch-FID change allowed for gan.inception_bf16


def features(extractor: torch.nn.Module, images: np.ndarray, batch: int, bf16: bool, device: torch.device) -> np.ndarray:
    """pool3 features of uint8 images (n, S, S) in float64, through the pipeline's own :func:`compute_features`."""
    run = functools.partial(extractor, bf16=bf16)
    return compute_features(images, run, batch, device, desc="bf16" if bf16 else "fp32").astype(np.float64)


def relative(a: float, b: float) -> float:
    return abs(b - a) / max(abs(a), 1e-12)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prepared", default="data/prepared")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--batch", type=int, default=16, help="the GAN batch whose FID the loss computes")
    parser.add_argument("--device", default=None, help="default: fid.device from the params")
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()

    fid = load_settings(args.params).fid
    device = resolve_device(args.device or fid.device)
    extractor = load_inception(device, fid.inception_path)
    eigen_floor = fid.eigen_floor
    data = load_prepared(args.prepared)
    train, test = data.train(max(data.sizes)), data.test()
    print(f"device: {device_name(device)}; {len(train)} training and {len(test)} test images, "
          f"{train.images.shape[-1]} px; batch {args.batch}")

    feats = {bf16: (features(extractor, train.images, args.batch, bf16, device),
                    features(extractor, test.images, args.batch, bf16, device)) for bf16 in (False, True)}
    mu, sigma = feature_statistics(feats[False][0])  # the loss's target: float32 statistics of the real images
    loss = FIDLoss(mu, sigma, eigen_floor)
    batch_changes = []
    for start in range(0, len(train) - args.batch + 1, args.batch):
        fid32, fid16 = (float(loss(torch.from_numpy(feats[bf16][0][start:start + args.batch]).float()))
                        for bf16 in (False, True))
        batch_changes.append(relative(fid32, fid16))
    if not batch_changes:
        raise SystemExit(f"fewer than {args.batch} training images: no batch FID to compare")
    full = [frechet_distance(*feature_statistics(feats[bf16][0]), feats[bf16][1], eigen_floor) for bf16 in (False, True)]
    largest_feature_change = float(np.abs(feats[True][0] - feats[False][0]).max())
    print(f"batch FID ({len(batch_changes)} batches of {args.batch} vs all training images): relative change "
          f"median {statistics.median(batch_changes):.2e}, largest {max(batch_changes):.2e}")
    print(f"full-set FID train vs test: float32 {full[0]:.4f}, bfloat16 {full[1]:.4f}, "
          f"relative change {relative(*full):.2e}")
    print(f"largest feature difference: {largest_feature_change:.3e}")

    if device.type == "cuda":
        images = uint8_to_unit(np.ascontiguousarray(train.images[:args.batch])).to(device).requires_grad_(True)
        for bf16 in (False, True):
            def step() -> None:
                extractor(images, bf16=bf16).square().sum().backward()
            seconds = median_seconds(step, device, args.repeats, warmup=2)
            print(f"Inception forward+backward, batch {args.batch}, {'bfloat16' if bf16 else 'float32'}: "
                  f"{seconds * 1e3:.2f} ms")
    verdict = "eligible" if max(batch_changes) < TOLERANCE else "not eligible"
    print(f"verdict: gan.inception_bf16 is {verdict} (largest batch-FID change {max(batch_changes):.2%}, "
          f"limit {TOLERANCE:.0%})")


if __name__ == "__main__":
    main()
