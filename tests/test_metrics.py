"""Dice edge cases and mean ± standard error."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dfgan.seg.dice import dice_per_image, dice_score, mean_and_sem


def square(size: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    mask = np.zeros((size, size), np.uint8)
    mask[y0:y1, x0:x1] = 1
    return mask


def test_perfect_prediction_scores_one() -> None:
    target = square(8, 2, 6, 2, 6)
    assert dice_score(target, target) == 1.0
    assert dice_score(target.astype(bool), target) == 1.0


def test_empty_prediction_on_a_lesion_scores_zero() -> None:
    assert dice_score(np.zeros((8, 8), bool), square(8, 2, 6, 2, 6)) == 0.0


def test_both_empty_scores_one_by_convention() -> None:
    assert dice_score(np.zeros((8, 8)), np.zeros((8, 8))) == 1.0


def test_prediction_on_an_empty_target_scores_zero() -> None:
    assert dice_score(square(8, 0, 1, 0, 1), np.zeros((8, 8))) == 0.0


def test_half_overlap_by_hand() -> None:
    # Target: 4x4 = 16 pixels. Prediction: the same rows shifted right by 2 -> 8 pixels overlap.
    # Dice = 2 * 8 / (16 + 16) = 0.5.
    target = square(8, 0, 4, 0, 4)
    pred = square(8, 0, 4, 2, 6)
    assert dice_score(pred, target) == pytest.approx(0.5)
    # A prediction covering half of the target only: 2 * 8 / (8 + 16) = 2/3.
    assert dice_score(square(8, 0, 2, 0, 4), target) == pytest.approx(2 / 3)


def test_shape_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match="shape"):
        dice_score(np.zeros((4, 4)), np.zeros((4, 5)))
    with pytest.raises(ValueError):
        dice_per_image(np.zeros((2, 4, 4)), np.zeros((3, 4, 4)))
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        dice_per_image(np.zeros((4, 4)), np.zeros((4, 4)))


def test_dice_per_image_scores_each_image() -> None:
    target = np.stack([square(8, 0, 4, 0, 4)] * 3)
    preds = np.stack([square(8, 0, 4, 0, 4), square(8, 0, 4, 2, 6), np.zeros((8, 8), np.uint8)])
    np.testing.assert_allclose(dice_per_image(preds, target), [1.0, 0.5, 0.0])


def test_mean_and_sem() -> None:
    mean, sem = mean_and_sem([0.2, 0.4, 0.6])
    assert mean == pytest.approx(0.4)
    assert sem == pytest.approx(0.2 / math.sqrt(3))  # std(ddof=1) = 0.2
    assert mean_and_sem([0.3]) == (0.3, 0.0)
    assert mean_and_sem(np.array([0.5, 0.5])) == (0.5, 0.0)
    with pytest.raises(ValueError):
        mean_and_sem([])
