"""The prepare stage's output, whatever the input format: resized images and masks -> splits, index, metrics, and
``data/prepared`` written at once.

Everything is read, decoded and validated before anything is written: a bad input raises
:class:`dfgan.data.siim.PrepareError` and leaves no output behind. The output directory is written under a hidden,
git-ignored staging name (``data/.prepared.staging``) and swapped in at the end, so a stale or half-written
``data/prepared`` never survives; a staging directory left by a killed run is removed when the stage next starts.

The formats (:mod:`dfgan.data.prepare_siim`, :mod:`dfgan.data.prepare_folder`) decode their files into
:class:`PreparedImage` with :func:`resize_mask` and :func:`run_prepare_jobs`, and hand them to :func:`split_and_write`.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import cv2
import numpy as np
import pandas as pd
from tqdm import tqdm

from dfgan.core.runtime import progress_disabled, worker_pool
from dfgan.data.prepared_arrays import save_prepared, split_pools
from dfgan.data.siim import PrepareError

STAGING_SUFFIX = ".staging"


def staging_path(path: Path) -> Path:
    """Where ``path`` is written before it is swapped in: a hidden sibling that ``.gitignore`` covers."""
    return path.with_name(f".{path.name}{STAGING_SUFFIX}")


def remove_stale_staging(*paths: Path) -> None:
    """Remove what a killed run left: the staging copies (and the ``<name>.tmp`` of earlier versions)."""
    for path in paths:
        for leftover in (staging_path(path), path.with_name(path.name + ".tmp")):
            if leftover.is_dir():
                shutil.rmtree(leftover, ignore_errors=True)
            elif leftover.exists():
                leftover.unlink()


# ----------------------------------------------------------------------------------------------------------------
# Resizing, and the process pool the formats' decoders run in.


@dataclass(frozen=True)
class PreparedImage:
    image: np.ndarray  # uint8 (S, S)
    mask: np.ndarray  # uint8 (S, S) in {0, 1}
    native_fraction: float  # mask area fraction at the native size
    readings: tuple[str, ...]  # per code: relative / absolute / both (see dfgan.data.rle.code_reading); auto mode only


def resize_mask(mask: np.ndarray, size: int | tuple[int, int], threshold: float) -> np.ndarray:
    """Area-resize a binary mask to ``size`` (square) or (height, width) and keep pixels at least ``threshold``
    covered; thin regions survive because a non-empty mask always keeps its best-covered pixels."""
    height, width = (size, size) if isinstance(size, int) else size
    coverage = cv2.resize(mask.astype(np.float32), (width, height), interpolation=cv2.INTER_AREA)
    small = (coverage >= threshold).astype(np.uint8)
    if mask.any() and not small.any():
        small = (coverage >= coverage.max()).astype(np.uint8)
    return small


def run_prepare_jobs(
    worker: Callable[[Any], PreparedImage], jobs: list[Any], workers: int
) -> Iterator[PreparedImage]:
    """``worker(job)`` for every job, in a process pool of ``workers`` (in this process for one) with a progress bar."""
    bar = dict(total=len(jobs), desc="prepare", unit="img", disable=progress_disabled())
    if workers <= 1 or len(jobs) < 2:
        yield from tqdm(map(worker, jobs), **bar)
        return
    chunk = max(1, min(32, len(jobs) // (4 * workers)))
    with worker_pool(workers) as pool:
        yield from tqdm(pool.map(worker, jobs, chunksize=chunk), **bar)


# ----------------------------------------------------------------------------------------------------------------
# Splits and output.


def make_splits(n: int, test_size: int, sizes: Sequence[int], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A fixed test set and a shuffled training order; every training subset is a prefix of that order."""
    sizes = sorted(int(s) for s in sizes)
    if test_size < 0 or (sizes and sizes[0] < 1):
        raise PrepareError(f"test_size must be >= 0 and sizes >= 1, got test_size={test_size}, sizes={sizes}")
    needed = (sizes[-1] if sizes else 0) + test_size
    if needed > n:
        raise PrepareError(
            f"sizes {sizes} need max(sizes) + test_size = {sizes[-1] if sizes else 0} + {test_size} = {needed} "
            f"positive images, but only {n} are available"
        )
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[:test_size]), order[test_size:]


def build_index(
    sources: Sequence[tuple[str, Path]],
    fractions: Sequence[float],
    test_rows: np.ndarray,
    train_order: np.ndarray,
    raw_dir: Path,
) -> pd.DataFrame:
    """One row per (image id, source file); ``dicom_path`` (for a folder dataset: the image file) is relative to
    ``raw_dir``, so the same tree in another folder gives the same index."""
    rank = np.full(len(sources), -1, dtype=np.int64)
    rank[train_order] = np.arange(len(train_order))
    split = np.where(rank >= 0, "train", "test")
    return pd.DataFrame(
        {
            "row": np.arange(len(sources)),
            "image_id": [image_id for image_id, _ in sources],
            "dicom_path": [path.relative_to(raw_dir).as_posix() for _, path in sources],
            "mask_fraction": np.round(np.asarray(fractions, dtype=np.float64), 8),
            "split": split,
            "train_rank": rank,
        }
    )


def _write_atomically(out_dir: Path, metrics_path: Path, write_data: Any, metrics: dict[str, Any]) -> None:
    """Write into the staging directory then swap it in; the metrics file follows only after the data succeeded."""
    staging = staging_path(out_dir)
    shutil.rmtree(staging, ignore_errors=True)
    try:
        write_data(staging)
        shutil.rmtree(out_dir, ignore_errors=True)
        os.replace(staging, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    metrics_path.parent.mkdir(parents=True, exist_ok=True)
    temporary = staging_path(metrics_path)
    temporary.write_text(json.dumps(metrics, indent=2) + "\n")
    os.replace(temporary, metrics_path)


def _quantiles(values: np.ndarray) -> dict[str, float | None]:
    if not len(values):
        return {"p5": None, "median": None, "p95": None}
    p5, median, p95 = np.percentile(values, [5, 50, 95])
    return {"p5": round(float(p5), 6), "median": round(float(median), 6), "p95": round(float(p95), 6)}


def split_and_write(
    sources: Sequence[tuple[str, Path]],
    prepared: Sequence[PreparedImage],
    regions: np.ndarray,
    raw_dir: Path,
    out_dir: Path,
    metrics_path: Path,
    head: dict[str, Any],
    tail: dict[str, Any],
    *,
    image_size: int,
    test_size: int,
    sizes: Sequence[int],
    seed: int,
    val_fraction: float,
) -> dict[str, Any]:
    """The kept positives -> splits, index, metrics (``head``, the splits, ``tail``, the mask statistics)."""
    test_rows, train_order = make_splits(len(sources), test_size, sizes, seed)
    try:
        train_rows, val_rows = split_pools({int(s): train_order[: int(s)] for s in sorted(sizes)}, val_fraction, seed)
    except ValueError as error:
        raise PrepareError(f"data.val_fraction: {error}") from None
    fractions = [p.native_fraction for p in prepared]
    index = build_index(sources, fractions, test_rows, train_order, raw_dir)
    metrics: dict[str, Any] = {
        **head,
        "splits": {"test": len(test_rows), "train_pool": len(train_order), "train": {str(k): len(v) for k, v in train_rows.items()},
                   "val": {str(k): len(v) for k, v in val_rows.items()}},
        "image_size": image_size,
        **tail,
        "mask_fraction_native": _quantiles(np.asarray(fractions)),
        "regions_per_image": {"1": int((regions == 1).sum()), "2": int((regions == 2).sum()), "3+": int((regions >= 3).sum())},
        "seed": seed,
    }
    images = np.stack([p.image for p in prepared]) if prepared else np.zeros((0, image_size, image_size), np.uint8)
    masks = np.stack([p.mask for p in prepared]) if prepared else np.zeros((0, image_size, image_size), np.uint8)
    _write_atomically(
        out_dir,
        metrics_path,
        lambda directory: save_prepared(directory, images, masks, index, test_rows, train_rows, seed, val_rows, val_fraction),
        metrics,
    )
    return metrics
