"""Gaussian blur and resampling whose output bits do not depend on the CPU's instruction set.

OpenCV's float ``GaussianBlur`` and ``resize`` (linear, cubic; Intel IPP serves some of them) dispatch to SSE, AVX2,
FMA or AVX-512 kernels that sum in other orders or fuse multiply-adds, so their float results differ in the last
bits from one CPU to the next (issue 27). Here:

- :func:`gaussian_blur` quantizes the field to 16 bits and uses OpenCV's fixed-point Gaussian for ``uint16``, which
  OpenCV computes in integers with a kernel built in software floating point ("bit-exact" in its sources): the same
  bits from every code path. The 16-bit step (1/65535 of the stated range) is far below one grey level.
- :func:`resample` is a separable area, linear or cubic resize in float64 numpy, following OpenCV's pixel-centre
  conventions, with each output pixel a fixed-order sum of IEEE-754 products.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

LEVELS = 65535  # uint16 full scale
MIN_SIGMA = 0.3  # below this a blur is left out (as before: the kernel would be a single tap)
LOW_RES_SIGMA = 8.0  # pixels: wider blurs run on a reduced copy
CUBIC_A = -0.75  # OpenCV's INTER_CUBIC


def gaussian_blur(image: np.ndarray, sigma: float, low: float = 0.0, high: float = 1.0) -> np.ndarray:
    """Gaussian blur (replicated border) of a field whose values lie in [low, high] (clipped there), as float64.

    The field is rounded to 65535 levels of that range and blurred in OpenCV's integer fixed-point path (radius
    4 sigma, as OpenCV's float blur). A blur wider than ``LOW_RES_SIGMA`` pixels is computed on an area-reduced copy
    (its spacing at most sigma / 2, the Gaussian narrowed by what the reduction and the linear enlargement add)
    and enlarged back: smooth to well below a grey level, and a fraction of the work.
    """
    if sigma < MIN_SIGMA:
        return np.asarray(image, dtype=np.float64).copy()
    if not high > low:
        raise ValueError(f"gaussian_blur: need high > low, got [{low}, {high}]")
    factor = 1
    if sigma >= LOW_RES_SIGMA:
        while sigma / (2 * factor) >= 2.0:  # the reduced copy keeps at least 2 pixels per sigma
            factor *= 2
    if factor > 1:
        height, width = image.shape
        small_size = (max(1, round(height / factor)), max(1, round(width / factor)))
        small = resample(image, small_size, "area")
        # area (box, variance f**2/12) and linear enlargement (tent, f**2/6) widen the blur: leave that out
        small_sigma = math.sqrt(sigma * sigma / (factor * factor) - 0.25)
        return resample(gaussian_blur(small, small_sigma, low, high), (height, width), "linear")
    step = (high - low) / LEVELS
    mask = image.dtype == np.bool_ or (image.dtype == np.uint8 and image.max() <= 1)
    if mask and low == 0.0 and high == 1.0:
        levels = image.astype(np.uint16) * np.uint16(LEVELS)  # nothing to round
    else:
        scaled = (np.clip(np.asarray(image, dtype=np.float64), low, high) - low) / step
        levels = np.rint(scaled).astype(np.uint16)
    blurred = cv2.GaussianBlur(levels, (0, 0), float(sigma), borderType=cv2.BORDER_REPLICATE | cv2.BORDER_ISOLATED)
    out = blurred.astype(np.float64) * step
    return out + low if low else out


def _area_taps(n_src: int, n_dst: int) -> tuple[np.ndarray, np.ndarray]:
    """Source indices and weights (taps x n_dst) of an area (box) reduction: each output pixel averages the source
    pixels it covers, partly covered ones by their covered share."""
    if n_dst > n_src:
        raise ValueError(f"area resampling only reduces, got {n_src} -> {n_dst}")
    taps = -(-n_src // n_dst) + (n_src % n_dst != 0)  # a source pixel can straddle two outputs unless exact
    i = np.arange(n_dst)
    start, end = i * n_src / n_dst, (i + 1) * n_src / n_dst  # in source pixels; exact for integer ratios
    first = np.floor(start).astype(np.int64)
    index = first[None, :] + np.arange(taps)[:, None]
    overlap = np.minimum(index + 1.0, end[None, :]) - np.maximum(index.astype(np.float64), start[None, :])
    weight = np.maximum(overlap, 0.0) * (n_dst / n_src)
    return np.minimum(index, n_src - 1), weight


def _centre_positions(n_src: int, n_dst: int) -> tuple[np.ndarray, np.ndarray]:
    """For each output pixel, the source pixel left of its centre and the fractional offset (OpenCV's mapping)."""
    position = (np.arange(n_dst) + 0.5) * (n_src / n_dst) - 0.5
    left = np.floor(position)
    return left.astype(np.int64), position - left


def _linear_taps(n_src: int, n_dst: int) -> tuple[np.ndarray, np.ndarray]:
    left, t = _centre_positions(n_src, n_dst)
    t = np.where((left < 0) | (left >= n_src - 1), 0.0, t)
    left = np.clip(left, 0, n_src - 1)
    return np.stack([left, np.minimum(left + 1, n_src - 1)]), np.stack([1.0 - t, t])


def _cubic_taps(n_src: int, n_dst: int) -> tuple[np.ndarray, np.ndarray]:
    left, t = _centre_positions(n_src, n_dst)
    a = CUBIC_A
    u = t + 1.0
    w0 = ((a * u - 5.0 * a) * u + 8.0 * a) * u - 4.0 * a
    w1 = ((a + 2.0) * t - (a + 3.0)) * t * t + 1.0
    v = 1.0 - t
    w2 = ((a + 2.0) * v - (a + 3.0)) * v * v + 1.0
    w3 = 1.0 - w0 - w1 - w2
    index = np.clip(left[None, :] + np.arange(-1, 3)[:, None], 0, n_src - 1)  # replicated border
    return index, np.stack([w0, w1, w2, w3])


TAPS = {"area": _area_taps, "linear": _linear_taps, "cubic": _cubic_taps}


def _along(image: np.ndarray, axis: int, index: np.ndarray, weight: np.ndarray) -> np.ndarray:
    shape = (-1, 1) if axis == 0 else (1, -1)
    out = np.take(image, index[0], axis=axis) * weight[0].reshape(shape)
    for k in range(1, len(index)):
        out = out + np.take(image, index[k], axis=axis) * weight[k].reshape(shape)
    return out


def resample(image: np.ndarray, size: tuple[int, int], kind: str) -> np.ndarray:
    """Resize a 2-D float field to ``size`` = (height, width): ``area`` (reduction only), ``linear`` or ``cubic``."""
    image = np.asarray(image, dtype=np.float64)
    if image.ndim != 2 or kind not in TAPS:
        raise ValueError(f"resample: need a 2-D image and one of {sorted(TAPS)}, got {image.shape}, {kind!r}")
    height, width = size
    # gathering whole rows is fast: reduce the rows first, or enlarge them last
    for axis in ((0, 1) if height <= image.shape[0] else (1, 0)):
        n_dst = size[axis]
        if n_dst != image.shape[axis]:
            image = _along(image, axis, *TAPS[kind](image.shape[axis], n_dst))
    return image


def wide_blur(image: np.ndarray, sigma_px: float, reduction: int = 8) -> np.ndarray:
    """A large Gaussian blur of a smooth field in [0, 1], computed at 1/``reduction`` resolution (fast at 1024 px)."""
    height, width = image.shape
    small_size = (max(8, height // reduction), max(8, width // reduction))
    small = resample(image, small_size, "area")
    small = gaussian_blur(small, sigma_px * small_size[0] / height)
    return resample(small, (height, width), "linear")
