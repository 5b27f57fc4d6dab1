"""Segmentation metrics: per-image Dice and the mean ± standard error the paper reports."""

from __future__ import annotations

from typing import Sequence

import numpy as np


def dice_score(pred: np.ndarray, target: np.ndarray) -> float:
    """Dice = 2|P∩G| / (|P| + |G|) of one binary prediction against one binary target.

    Inputs are boolean or 0/1 arrays of the same shape (any non-zero value counts as foreground).
    Conventions: an empty prediction on a non-empty target scores 0.0 (the formula already gives that);
    when both are empty the score is 1.0, because predicting "no lesion" on a lesion-free image is correct.
    """
    pred = np.asarray(pred)
    target = np.asarray(target)
    if pred.shape != target.shape:
        raise ValueError(f"dice_score: prediction shape {pred.shape} != target shape {target.shape}")
    p = pred != 0
    g = target != 0
    denominator = int(p.sum()) + int(g.sum())
    if denominator == 0:
        return 1.0
    return 2.0 * int(np.logical_and(p, g).sum()) / denominator


def dice_per_image(preds: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Dice of each image of a stack (N, H, W) against its target, as a float64 array of length N."""
    preds = np.asarray(preds)
    targets = np.asarray(targets)
    if preds.shape != targets.shape:
        raise ValueError(f"dice_per_image: predictions {preds.shape} != targets {targets.shape}")
    if preds.ndim != 3:
        raise ValueError(f"dice_per_image: expected (N, H, W) stacks, got shape {preds.shape}")
    return np.array([dice_score(p, t) for p, t in zip(preds, targets)], dtype=np.float64)


def mean_and_sem(values: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """Mean and standard error of the mean, std(ddof=1) / sqrt(n); the error is 0.0 for a single value."""
    array = np.asarray(values, dtype=np.float64).ravel()
    if array.size == 0:
        raise ValueError("mean_and_sem: no values")
    mean = float(array.mean())
    if array.size == 1:
        return mean, 0.0
    return mean, float(array.std(ddof=1) / np.sqrt(array.size))


def paired_difference(
    condition: np.ndarray, baseline: np.ndarray, bootstrap_samples: int, seed: int, level: float = 0.95
) -> dict[str, float | int | bool]:
    """Dice(condition) - Dice(baseline), paired by seed and test image.

    ``condition`` and ``baseline`` are (seeds, test images) arrays of per-image Dice, row k of both from seed k, column
    j of both the same test image. Returns the mean difference, its standard error over seeds (of the per-seed mean
    differences, ddof=1; 0 for one seed), and a percentile bootstrap interval that resamples seeds and test images
    independently with replacement (a two-way bootstrap, seeded), so both the training randomness and the finite
    test set are in it. ``excludes_zero`` flags an interval that lies wholly above or below 0.
    """
    condition, baseline = np.asarray(condition, np.float64), np.asarray(baseline, np.float64)
    if condition.shape != baseline.shape or condition.ndim != 2 or condition.size == 0:
        raise ValueError(f"paired_difference: need two equal (seeds, images) arrays, got {condition.shape} and "
                         f"{baseline.shape}")
    if bootstrap_samples < 1 or not 0.0 < level < 1.0:
        raise ValueError(f"paired_difference: bootstrap_samples >= 1 and 0 < level < 1, got {bootstrap_samples}, {level}")
    differences = condition - baseline
    n_seeds, n_images = differences.shape
    mean, sem = mean_and_sem(differences.mean(axis=1))
    rng = np.random.default_rng(seed)
    # Resampling with replacement = multinomial counts; the resampled mean is w_seeds . D . w_images.
    seed_weights = rng.multinomial(n_seeds, np.full(n_seeds, 1.0 / n_seeds), size=bootstrap_samples) / n_seeds
    image_weights = rng.multinomial(n_images, np.full(n_images, 1.0 / n_images), size=bootstrap_samples) / n_images
    resampled = np.einsum("bs,si,bi->b", seed_weights, differences, image_weights)
    low, high = np.quantile(resampled, [(1.0 - level) / 2.0, (1.0 + level) / 2.0])
    return {
        "mean": mean,
        "sem": sem,
        "ci_low": float(low),
        "ci_high": float(high),
        "excludes_zero": bool(low > 0.0 or high < 0.0),
        "n_seeds": n_seeds,
        "n_images": n_images,
    }
