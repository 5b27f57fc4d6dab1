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
