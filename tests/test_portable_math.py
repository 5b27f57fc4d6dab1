"""The CPU-independent elementary functions, blur and resampling the phantom renders with (issue 27).

Their point is to give the same bits on every CPU (tests/test_phantom_determinism.py checks that in subprocesses
with the vector paths switched off); here: that they compute what their names say, closely enough for the phantom.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from dfgan.core import portable_math as pm
from dfgan.core.portable_filters import gaussian_blur, resample, wide_blur

RNG = np.random.default_rng(0)


@pytest.mark.parametrize(
    "ours, reference, low, high, tolerance",
    [
        (pm.exp, np.exp, -30.0, 30.0, 1e-15),  # relative
        (pm.log, np.log, 1e-9, 1e3, 1e-15),
        (pm.sin, np.sin, -100.0, 100.0, 1e-15),
        (pm.cos, np.cos, -100.0, 100.0, 1e-15),
        (pm.tanh, np.tanh, -5.0, 5.0, 1e-15),
        (lambda x: pm.power(x, 0.7), lambda x: x**0.7, 0.0, 1.0, 1e-14),
        (lambda x: pm.unit_power(x, 1.3), lambda x: x**1.3, 0.0, 1.0, 1e-7),
        (lambda x: pm.unit_power(x, 0.85), lambda x: x**0.85, 0.0, 1.0, 1e-6),
    ],
)
def test_functions_agree_with_numpy(ours, reference, low, high, tolerance) -> None:
    x = RNG.uniform(low, high, 100_000)
    expected = reference(x)
    scale = np.maximum(np.abs(expected), 1.0)
    assert np.max(np.abs(ours(x) - expected) / scale) < tolerance


def test_atan2_covers_every_quadrant_and_the_axes() -> None:
    y, x = RNG.uniform(-3, 3, 100_000), RNG.uniform(-3, 3, 100_000)
    y[:10], x[10:20] = 0.0, 0.0
    assert np.max(np.abs(pm.atan2(y, x) - np.arctan2(y, x))) < 1e-15
    assert float(pm.atan2(0.0, 0.0)) == 0.0 and float(pm.atan2(1.0, 0.0)) == pm.PI / 2
    assert float(pm.atan2(0.0, -1.0)) == pm.PI and float(pm.degrees(pm.atan2(-1.0, -1.0))) == pytest.approx(-135.0)


def test_scalar_sine_and_cosine_are_the_array_ones_bit_for_bit() -> None:
    x = RNG.uniform(-20, 20, 2000)
    pairs = np.array([pm.sin_cos_scalar(float(v)) for v in x])
    assert np.array_equal(pairs[:, 0], pm.sin(x)) and np.array_equal(pairs[:, 1], pm.cos(x))


def test_exact_points() -> None:
    assert float(pm.exp(0.0)) == 1.0 and float(pm.log(1.0)) == 0.0 and float(pm.cos(0.0)) == 1.0
    np.testing.assert_array_equal(pm.unit_power(np.array([0.0, 1.0, 2.0]), 0.4), [0.0, 1.0, 1.0])
    np.testing.assert_array_equal(pm.power(np.array([0.0, 1.0]), 2.5), [0.0, 1.0])


def test_resampling_follows_opencv_conventions() -> None:
    image = RNG.random((96, 80))
    for size in ((24, 20), (40, 30)):  # integer and fractional reductions
        expected = cv2.resize(image, size[::-1], interpolation=cv2.INTER_AREA)
        np.testing.assert_allclose(resample(image, size, "area"), expected, atol=1e-12)
    np.testing.assert_allclose(resample(image, (200, 170), "linear"),
                               cv2.resize(image, (170, 200), interpolation=cv2.INTER_LINEAR), atol=1e-12)
    np.testing.assert_allclose(resample(image, (200, 170), "cubic"),
                               cv2.resize(image, (170, 200), interpolation=cv2.INTER_CUBIC), atol=1e-5)
    with pytest.raises(ValueError, match="only reduces"):
        resample(image, (200, 170), "area")


@pytest.mark.parametrize("sigma, tolerance", [(0.8, 3e-5), (4.0, 3e-5), (12.0, 1e-2)])  # 12: on a reduced copy
def test_gaussian_blur_matches_a_float_blur(sigma: float, tolerance: float) -> None:
    mask = np.zeros((256, 256), np.uint8)
    mask[60:180, 40:150] = 1
    expected = cv2.GaussianBlur(mask.astype(np.float64), (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)
    assert np.abs(gaussian_blur(mask, sigma) - expected).max() < tolerance
    np.testing.assert_array_equal(gaussian_blur(mask, sigma), gaussian_blur(mask.astype(np.float64), sigma))
    np.testing.assert_array_equal(gaussian_blur(mask, sigma), gaussian_blur(mask > 0, sigma))  # masks' fast path
    field = RNG.uniform(-2.0, 2.0, (128, 128))
    expected = cv2.GaussianBlur(field, (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)
    # the reduced copy of a wide blur replicates a block's mean at the border, not the edge pixel: look inside
    inside = slice(int(3 * sigma), -int(3 * sigma))
    difference = gaussian_blur(field, sigma, low=-2.0, high=2.0) - expected
    assert np.abs(difference[inside, inside]).max() < 4 * tolerance
    np.testing.assert_array_equal(gaussian_blur(field, 0.2), field)  # too narrow to blur


def test_gaussian_blur_clips_to_its_range_and_wide_blur_is_smooth() -> None:
    field = np.full((64, 64), 3.0)
    assert np.all(gaussian_blur(field, 2.0) == 1.0)
    with pytest.raises(ValueError, match="high > low"):
        gaussian_blur(field, 2.0, low=1.0, high=1.0)
    mask = np.zeros((256, 256), np.uint8)
    mask[:, 128:] = 1
    row = wide_blur(mask, 30.0)[128]
    assert np.all(np.diff(row) >= 0) and row[0] < 0.01 and row[-1] > 0.99
