"""ρ = Δ_GAN / Δ_oracle: what each synthetic image is worth in fresh real images, with Fieller's interval.

Δ_GAN is R + S - R (S: one synthetic image per training lesion), Δ_oracle is R + fresh - R (as many *fresh real*
training positives as the GAN adds): ρ = 1 means a synthetic image is worth a real one, 0 nothing. Both differences
share the baseline R (same U-Net++ seeds and test images), so they are correlated; Fieller's method inverts the test
of a - ρ b = 0 with the variance of that combination, which keeps the correlation and gives an honest answer when
the oracle gain is not clearly above 0: an interval without bounds.

The variance terms are those of :func:`dfgan.report.intervals.paired.paired_difference` (units: GAN seeds, each
the mean of its U-Net++ seeds, plus the test-image term), computed jointly: Var(a), Var(b) and Cov(a, b) each
= (unit term)/U + (image term)/I. The critical value is Cochran-Cox's for the combination a - ρ̂ b.
``python -m dfgan.report.intervals`` prints the simulated coverage.
"""

from __future__ import annotations

import math
from typing import Any, Hashable, Sequence

import numpy as np

from dfgan.report.intervals.paired import COCHRAN_COX, check_level, critical, moments

BOUNDED, TWO_RAYS, WHOLE_LINE = "bounded", "two rays", "whole line"


def unit_rows(diff: np.ndarray, clusters: Sequence[Hashable] | None) -> np.ndarray:
    """(seeds, images) differences -> (units, images): seeds averaged within their cluster (GAN), in label order."""
    if clusters is None:
        return diff
    labels = np.asarray(list(clusters))
    if labels.ndim != 1 or len(labels) != len(diff):
        raise ValueError(f"clusters must give one label per seed ({len(diff)} seeds), got {len(labels)} labels")
    _, inverse = np.unique(labels, return_inverse=True)
    return np.stack([diff[inverse == g].mean(axis=0) for g in range(inverse.max() + 1)])


def _covariance_terms(a: np.ndarray, b: np.ndarray) -> float:
    """Cov of the unit means / U + Cov of the image means / I, for (..., units, images) arrays (the cross term of
    :func:`dfgan.report.intervals.paired.moments`)."""
    n_units, n_images = a.shape[-2:]
    unit_a, unit_b = a.mean(axis=-1), b.mean(axis=-1)
    image_a, image_b = a.mean(axis=-2), b.mean(axis=-2)

    def cov(x: np.ndarray, y: np.ndarray, n: int) -> np.ndarray:
        return ((x - x.mean(axis=-1, keepdims=True)) * (y - y.mean(axis=-1, keepdims=True))).sum(axis=-1) / (n - 1)

    return cov(unit_a, unit_b, n_units) / n_units + cov(image_a, image_b, n_images) / n_images


def fieller_bounds(
    numerator: np.ndarray, denominator: np.ndarray, level: float, method: str = COCHRAN_COX
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Batched Fieller set of (..., units, images) unit-by-image differences: (ratio, low, high, kind code).

    kind code 0: bounded [low, high]; 1: two rays (-inf, low] and [high, inf); 2: the whole line (low = high = nan).
    """
    n_units, n_images = numerator.shape[-2:]
    a, var_ua, var_ia = moments(numerator)
    b, var_ub, var_ib = moments(denominator)
    v_aa, v_bb = var_ua + var_ia, var_ub + var_ib
    v_ab = _covariance_terms(numerator, denominator)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = a / b
        plug_in = np.where(np.isfinite(ratio), ratio, 0.0)[..., None, None]
    # The critical value of the combination a - ρ̂ b (its unit and image terms), as paired_difference would use.
    _, var_u, var_i = moments(numerator - plug_in * denominator)
    c2 = critical((1.0 - level) / 2.0, var_u, var_i, n_units, n_images, method) ** 2
    qa, qb, qc = b * b - c2 * v_bb, a * b - c2 * v_ab, a * a - c2 * v_aa
    disc = qb * qb - qa * qc
    root = np.sqrt(np.maximum(disc, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        r1, r2 = (qb - root) / qa, (qb + root) / qa
    bounded = qa > 0
    kind = np.where(bounded, 0, np.where(disc >= 0, 1, 2))
    low = np.where(kind == 2, np.nan, np.minimum(r1, r2))
    high = np.where(kind == 2, np.nan, np.maximum(r1, r2))
    return ratio, low, high, kind


def contains(value: float, low: np.ndarray, high: np.ndarray, kind: np.ndarray) -> np.ndarray:
    """Whether each Fieller set of :func:`fieller_bounds` holds ``value``."""
    with np.errstate(invalid="ignore"):
        inside = (low <= value) & (value <= high)
        outside = (value <= low) | (value >= high)
    return np.where(kind == 0, inside, np.where(kind == 1, outside, True))


def synthetic_worth(
    gan: Any, oracle: Any, real: Any, clusters: Sequence[Hashable] | None, level: float = 0.95,
    min_units: int = 3, method: str = COCHRAN_COX,
) -> dict[str, Any]:
    """ρ = mean(gan - real) / mean(oracle - real) with its Fieller set at ``level``.

    ``gan``, ``oracle``, ``real``: (seeds, images) per-image Dice paired by U-Net++ seed and test image; ``clusters``:
    the GAN seed of each U-Net++ seed (both differences are averaged per GAN, so the oracle's seeds pair with the
    GAN conditions' through R). Returns ``ratio``, ``low``/``high`` (None unless bounded; with ``kind`` "two rays"
    the set is (-inf, low] and [high, inf)), ``kind`` ("bounded", "two rays", "whole line": the oracle gain is not
    clearly above its noise, so the data cannot say what a synthetic image is worth), ``gan_gain``,
    ``oracle_gain``, ``n_units``, ``level``; with fewer than ``min_units`` units only the ratio and ``reason``.
    """
    level = check_level(level)
    arrays = [np.asarray(x, dtype=np.float64) for x in (gan, oracle, real)]
    if any(x.ndim != 2 for x in arrays) or len({x.shape for x in arrays}) != 1:
        raise ValueError(f"gan, oracle and real must be 2-D arrays of one shape, got {[x.shape for x in arrays]}")
    gan_diff = unit_rows(arrays[0] - arrays[2], clusters)
    oracle_diff = unit_rows(arrays[1] - arrays[2], clusters)
    n_units, n_images = gan_diff.shape
    gan_gain, oracle_gain = float(gan_diff.mean()), float(oracle_diff.mean())
    result: dict[str, Any] = {
        "ratio": gan_gain / oracle_gain if oracle_gain != 0 else None, "low": None, "high": None, "kind": None,
        "gan_gain": gan_gain, "oracle_gain": oracle_gain, "n_units": int(n_units), "level": level, "reason": None,
    }
    if n_units < min_units or n_images < 2:
        result["reason"] = f"{n_units} units and {n_images} test images; an interval needs at least {min_units} units"
        return result
    _, low, high, kind = fieller_bounds(gan_diff, oracle_diff, level, method)
    code = int(kind)
    result["kind"] = (BOUNDED, TWO_RAYS, WHOLE_LINE)[code]
    if code != 2:
        result["low"], result["high"] = float(low), float(high)
    return result


def describe(worth: dict[str, Any]) -> str:
    """``0.42 [0.10, 0.81]``, ``0.42 (interval unbounded: ...)``, for tables and notes."""
    ratio = worth.get("ratio")
    text = "—" if ratio is None or not math.isfinite(ratio) else f"{ratio:.2f}"
    kind = worth.get("kind")
    if kind == BOUNDED:
        return f"{text} [{worth['low']:.2f}, {worth['high']:.2f}]"
    if kind == TWO_RAYS:
        return f"{text} (≤ {worth['low']:.2f} or ≥ {worth['high']:.2f}: the oracle gain is too uncertain)"
    if kind == WHOLE_LINE:
        return f"{text} (any value: the oracle gain is too uncertain)"
    return f"{text} (no interval)"
