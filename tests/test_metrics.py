"""Dice edge cases and mean ± standard error."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dfgan.metrics import dice_per_image, dice_score, mean_and_sem, paired_difference


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


def test_paired_difference_against_a_hand_computed_example() -> None:
    condition = np.array([[0.5, 0.7], [0.4, 0.6]])  # rows: seeds, columns: test images
    baseline = np.array([[0.4, 0.4], [0.4, 0.5]])
    # Differences [[0.1, 0.3], [0.0, 0.1]]; per-seed means 0.2 and 0.05.
    result = paired_difference(condition, baseline, bootstrap_samples=20000, seed=0)
    assert result["mean"] == pytest.approx(0.125)
    assert result["sem"] == pytest.approx(np.std([0.2, 0.05], ddof=1) / np.sqrt(2))  # 0.075
    # Resampling 2 seeds x 2 images gives nine weightings; their exact distribution puts 6.25% on 0.0 (seed 1,
    # image 0 twice) and 6.25% on 0.3 (seed 0, image 1 twice), so the 2.5% and 97.5% quantiles are those values.
    assert (result["ci_low"], result["ci_high"]) == pytest.approx((0.0, 0.3))
    assert result["excludes_zero"] is False and (result["n_seeds"], result["n_images"]) == (2, 2)
    # Seeded: the same call gives the same interval.
    assert paired_difference(condition, baseline, 20000, 0) == result


def test_paired_difference_pairs_seeds_and_images() -> None:
    rng = np.random.default_rng(0)
    shared = rng.uniform(0.0, 0.8, (3, 40))  # seed and image effects common to both runs
    result = paired_difference(shared + 0.1, shared, 500, seed=1)
    # Pairing removes the shared variation entirely: a constant difference has a zero-width interval.
    assert result["mean"] == pytest.approx(0.1) and result["sem"] == pytest.approx(0.0, abs=1e-12)
    assert (result["ci_low"], result["ci_high"]) == pytest.approx((0.1, 0.1)) and result["excludes_zero"]
    worse = paired_difference(shared - 0.02 + rng.normal(0, 0.01, shared.shape), shared, 500, seed=1)
    assert worse["ci_high"] < 0 and worse["excludes_zero"]
    with pytest.raises(ValueError, match="equal"):
        paired_difference(shared, shared[:, :5], 10, 0)
