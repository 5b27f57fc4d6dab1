"""Benchmark: the batch FID term (forward + backward, n x n eigenproblem) against pytorch-fid's scipy sqrtm.

    python -m benchmarks.bench_fid [--dim 2048] [--batch 16] [--real 4096] [--repeats 5]

Prints the time of the FID loss forward+backward for a batch of generated features against fixed real
statistics, the time of scipy.linalg.sqrtm on the d x d product (what pytorch-fid computes), their ratio, and the
relative agreement of the two FID values.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import scipy.linalg
import torch

from dfgan.gan.fid import FIDLoss, feature_statistics


def pytorch_fid_value(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> tuple[float, float]:
    """(FID as pytorch-fid computes it, seconds spent in sqrtm)."""
    started = time.perf_counter()
    covmean = scipy.linalg.sqrtm(sigma1.dot(sigma2))
    seconds = time.perf_counter() - started
    covmean = (covmean[0] if isinstance(covmean, tuple) else covmean).real
    diff = mu1 - mu2
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean)), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--real", type=int, default=4096, help="real feature vectors behind mu_r, C_r")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    # Feature-like data: non-negative (post-ReLU pooling), correlated, O(1).
    rng = np.random.default_rng(args.seed)
    mixing = rng.normal(size=(args.dim, args.dim)) / np.sqrt(args.dim)
    real = np.abs(rng.normal(size=(args.real, args.dim)) @ mixing) * 0.4
    fake = np.abs(rng.normal(loc=0.1, size=(args.batch, args.dim)) @ mixing) * 0.4
    mu_r, sigma_r = feature_statistics(real)
    loss = FIDLoss(mu_r, sigma_r)

    times = []
    for _ in range(args.repeats + 1):  # the first run warms up
        features = torch.tensor(fake, dtype=torch.float32, requires_grad=True)
        started = time.perf_counter()
        value = loss(features)
        value.backward()
        times.append(time.perf_counter() - started)
    ours = statistics.median(times[1:])
    assert torch.isfinite(features.grad).all()

    mu_s, sigma_s = feature_statistics(fake)
    reference, sqrtm_seconds = pytorch_fid_value(mu_r, sigma_r, mu_s, sigma_s)
    print(f"threads: {torch.get_num_threads()}  d={args.dim}  n={args.batch}  real n={args.real}")
    print(f"FID loss forward+backward (median of {args.repeats}): {ours * 1000:.1f} ms  (FID {value.item():.6f})")
    print(f"scipy sqrtm on {args.dim}x{args.dim}: {sqrtm_seconds:.2f} s  (FID {reference:.6f})")
    relative = abs(value.item() - reference) / abs(reference)
    print(f"speed-up: {sqrtm_seconds / ours:.0f}x   relative difference: {relative:.2e}")


if __name__ == "__main__":
    main()
