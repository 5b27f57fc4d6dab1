"""Decode throughput of dfgan.data.rle on a table shaped like SIIM-ACR's train-rle.csv.

12,954 rows at 1024x1024, 3,576 of them positive (crescent-like regions of realistic size), the rest ``-1``.
Run from the repository root: ``python -m benchmarks.bench_rle [--rows N]``. Prints rows/s; asserts nothing.
"""

from __future__ import annotations

import argparse
import time

import cv2
import numpy as np

from dfgan.data.rle import decode_union, rle_decode, rle_encode

REAL_ROWS = 12_954
REAL_POSITIVE_ROWS = 3_576


def crescent_codes(n: int, size: int, seed: int) -> list[str]:
    """Run-length codes of ``n`` crescents (the difference of two offset ellipses) of 0.1-5 % of the image."""
    rng = np.random.default_rng(seed)
    codes = []
    for _ in range(n):
        mask = np.zeros((size, size), np.uint8)
        centre = (int(rng.uniform(0.15, 0.85) * size), int(rng.uniform(0.15, 0.6) * size))
        axes = (int(rng.uniform(0.06, 0.2) * size), int(rng.uniform(0.1, 0.3) * size))
        cv2.ellipse(mask, centre, axes, rng.uniform(0, 180), 0, 360, 1, -1)
        inner = (int(axes[0] * rng.uniform(0.75, 0.97)), int(axes[1] * rng.uniform(0.75, 0.97)))
        shift = (centre[0] + int(rng.uniform(-0.1, 0.1) * axes[0]), centre[1] + int(0.06 * axes[1]))
        cv2.ellipse(mask, shift, inner, rng.uniform(0, 180), 0, 360, 0, -1)
        codes.append(rle_encode(mask))
    return codes


def table_codes(rows: int, positive_rows: int, size: int, seed: int = 0) -> list[str]:
    """A shuffled list of ``rows`` codes, ``positive_rows`` of them drawn from 64 distinct crescents."""
    distinct = crescent_codes(64, size, seed)
    rng = np.random.default_rng(seed)
    codes = [distinct[i % len(distinct)] for i in range(positive_rows)] + ["-1"] * (rows - positive_rows)
    rng.shuffle(codes)
    return codes


def time_decoding(codes: list[str], size: int) -> float:
    start = time.perf_counter()
    for i, code in enumerate(codes):
        rle_decode(code, size, size, f"bench-{i}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=REAL_ROWS)
    parser.add_argument("--size", type=int, default=1024)
    args = parser.parse_args()
    positive = round(args.rows * REAL_POSITIVE_ROWS / REAL_ROWS)
    codes = table_codes(args.rows, positive, args.size)
    tokens = np.mean([len(c.split()) for c in codes if c != "-1"])
    seconds = time_decoding(codes, args.size)
    print(f"{args.rows} rows ({positive} positive, {tokens:.0f} tokens each) at {args.size}x{args.size}: "
          f"{seconds:.2f} s, {args.rows / seconds:,.0f} rows/s")
    positives = [c for c in codes if c != "-1"]
    seconds = time_decoding(positives, args.size)
    print(f"positive rows only: {len(positives) / seconds:,.0f} rows/s")
    start = time.perf_counter()
    for i in range(0, len(positives) - 1, 2):
        decode_union(positives[i : i + 2], args.size, args.size, "bench")
    print(f"2-row unions: {(len(positives) // 2) / (time.perf_counter() - start):,.0f} images/s")


if __name__ == "__main__":
    main()
