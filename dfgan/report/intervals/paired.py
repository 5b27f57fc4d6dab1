"""Paired differences of per-image Dice with intervals that respect the nesting of the design; what each design can
detect (its minimum detectable effect) and when two conditions are shown equivalent (two one-sided tests).

A contrast's data are two arrays (seeds, test images) paired by U-Net++ seed (row) and test image (column). When a
GAN is involved, U-Net++ seed k trained on images of GAN seed ``clusters[k]`` and the GAN is the unit of
replication: seeds sharing a GAN share its luck, so treating them as independent understates the variance (see
:func:`dfgan.report.intervals.simulate.calibration_rates` with ``by_gan=False``). Without a GAN each U-Net++ seed is its own unit.

The interval's critical value is Cochran-Cox's by default, Welch-Satterthwaite's on request (see
:func:`paired_difference`). Run ``python -m dfgan.report.intervals`` for the simulated false-exclusion and coverage
rates.
"""

from __future__ import annotations

import math
from typing import Any, Hashable, Sequence

import numpy as np
from scipy import stats

UNIT_GAN, UNIT_SEED = "gan", "seed"
COCHRAN_COX, WELCH = "cochran-cox", "welch"
METHODS = (COCHRAN_COX, WELCH)
MIN_TAIL = 1e-150


def moments(unit_by_image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and the two variance terms s_u^2/U, s_i^2/I of (..., units, images) unit-by-image mean differences.

    Batched over leading axes so that :func:`paired_difference` and the simulations share one implementation.
    """
    n_units, n_images = unit_by_image.shape[-2:]
    unit_means = unit_by_image.mean(axis=-1)
    image_means = unit_by_image.mean(axis=-2)
    return (unit_means.mean(axis=-1), unit_means.var(axis=-1, ddof=1) / n_units,
            image_means.var(axis=-1, ddof=1) / n_images)


def welch_df(var_units: Any, var_images: Any, n_units: int, n_images: int) -> np.ndarray:
    """Welch-Satterthwaite df of var_units + var_images (inf where both are 0)."""
    var_units, var_images = np.asarray(var_units, np.float64), np.asarray(var_images, np.float64)
    # A zero term has no uncertainty of its own and contributes nothing to the denominator.
    denominator = var_units**2 / (n_units - 1) + var_images**2 / (n_images - 1)
    safe = np.where(denominator > 0, denominator, 1.0)
    return np.where(denominator > 0, (var_units + var_images) ** 2 / safe, np.inf)


def critical(
    tail: Any, var_units: Any, var_images: Any, n_units: int, n_images: int, method: str
) -> np.ndarray:
    """The two-sided critical value whose upper tail is ``tail`` (= (1 - level)/2), elementwise.

    Cochran-Cox: the variance-weighted mean of the components' own t quantiles (U-1 and I-1 df); Welch: the t
    quantile at the Welch-Satterthwaite df. Where both terms are 0 the value is irrelevant (se = 0), returned as 0.
    """
    var_units, var_images = np.asarray(var_units, np.float64), np.asarray(var_images, np.float64)
    total = var_units + var_images
    if method == WELCH:
        value = stats.t.isf(tail, welch_df(var_units, var_images, n_units, n_images))
    else:
        weight = var_units / np.where(total > 0, total, 1.0)
        value = weight * stats.t.isf(tail, n_units - 1) + (1.0 - weight) * stats.t.isf(tail, n_images - 1)
    return np.where(total > 0, value, 0.0)


def interval_bounds(
    mean: Any, var_units: Any, var_images: Any, n_units: int, n_images: int, level: float, method: str
) -> tuple[np.ndarray, np.ndarray]:
    """mean ± critical * se, elementwise (a point where se = 0)."""
    half = critical((1.0 - level) / 2.0, var_units, var_images, n_units, n_images, method)
    half = half * np.sqrt(np.asarray(var_units) + np.asarray(var_images))
    return mean - half, mean + half


def p_values(
    mean: Any, var_units: Any, var_images: Any, n_units: int, n_images: int, method: str = COCHRAN_COX
) -> np.ndarray:
    """Two-sided p, elementwise: the 1 - level at which the interval's end reaches 0, so p < 1 - level iff it
    excludes 0 (batched over the simulations of :mod:`dfgan.report.intervals.simulate`).

    With se = 0: 1.0 if mean == 0 (no difference anywhere) else 0.0. Under Cochran-Cox a p below 2e-150 is 0.
    """
    mean, var_units, var_images = np.broadcast_arrays(*(np.asarray(x, np.float64) for x in (mean, var_units,
                                                                                            var_images)))
    se = np.sqrt(var_units + var_images)
    with np.errstate(divide="ignore", invalid="ignore"):
        statistic = np.where(se > 0, np.abs(mean) / np.where(se > 0, se, 1.0), 0.0)
    if method == WELCH:
        p = 2.0 * stats.t.sf(statistic, welch_df(var_units, var_images, n_units, n_images))
    else:
        # The Cochran-Cox critical value falls monotonically from inf to 0 as the tail goes from 0 to 1/2: bisect in
        # log(tail), so that tiny p keep their relative precision (64 halvings of [log 1e-150, log 0.5] leave
        # ~2e-17). scipy's t.isf turns to -inf for some df below a tail of about 1e-250, so stop at 1e-150: a smaller
        # p is reported as 0 (no multiplicity step comes anywhere near it).
        def excess(log_tail: np.ndarray) -> np.ndarray:
            return critical(np.exp(log_tail), var_units, var_images, n_units, n_images, method) - statistic

        low = np.full(statistic.shape, math.log(MIN_TAIL))
        high = np.full(statistic.shape, math.log(0.5))
        for _ in range(64):
            middle = (low + high) / 2.0
            above = excess(middle) > 0
            low, high = np.where(above, middle, low), np.where(above, high, middle)
        p = np.where(excess(np.full(statistic.shape, math.log(MIN_TAIL))) < 0, 0.0, 2.0 * np.exp((low + high) / 2.0))
    p = np.where(statistic == 0, 1.0, p)
    return np.where(se > 0, p, np.where(mean == 0, 1.0, 0.0))


def check_level(level: float, name: str = "level") -> float:
    level = float(level)
    if not 0.0 < level < 1.0:
        raise ValueError(f"{name} must lie strictly between 0 and 1, got {level}")
    return level


def check_method(method: str) -> str:
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    return method


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def paired_difference(
    condition: Any,
    baseline: Any,
    clusters: Sequence[Hashable] | None = None,
    level: float = 0.95,
    min_units: int = 3,
    method: str = COCHRAN_COX,
) -> dict[str, Any]:
    """Mean of d = condition - baseline with an interval over units (GAN seeds or seeds) and test images.

    Unit means average d over images per seed, then over the seeds of each cluster (each GAN weighs the same,
    however many U-Net++ seeds it trained); the mean weighs units equally. se^2 = s_u^2/U + s_i^2/I: s_u^2 the
    sample variance of the U unit means, s_i^2 that of the I image-wise mean differences (same weights). The image
    term is there because the test images are a sample too and an image-by-condition effect is shared by every
    unit, so the unit variance alone misses it; the residual (cell) noise enters both terms, which makes se
    slightly conservative.

    Interval mean ± c * se. ``method="cochran-cox"`` (default): c = w t_{U-1} + (1-w) t_{I-1} at (1+level)/2,
    w = (s_u^2/U)/se^2. ``"welch"``: c = t_{df} at the Welch-Satterthwaite df. Welch is liberal with 3 units when
    the unit term dominates (about 7% false exclusions at 95%: ``python -m dfgan.report.intervals``), because a chance
    small s_u^2 both shrinks se and raises df; Cochran-Cox stayed at or below the nominal rate in every simulated
    design, at the price of intervals ~20% wider with 3 units. p is the two-sided p of the same rule (p < 1 - level
    exactly when the interval excludes 0), so Holm's steps match the intervals.
    ``df`` is always the Welch-Satterthwaite df (for information under Cochran-Cox).

    If se == 0 (every unit and every image show the same difference) the interval is [mean, mean], df = inf and
    p = 1.0 when mean == 0 else 0.0. With fewer than ``min_units`` units (or one test image) only the mean is
    returned: se, df, ci_low, ci_high, p, var_units, var_images are None, ``interval`` False and ``reason`` why.

    Returns keys mean, se, df, ci_low, ci_high, p, excludes_zero, interval, reason, n_units, n_seeds, n_images,
    unit ("gan" with clusters, "seed" without), level, method, var_units (s_u^2/U), var_images (s_i^2/I).
    """
    cond = np.asarray(condition, dtype=np.float64)
    base = np.asarray(baseline, dtype=np.float64)
    if cond.ndim != 2 or base.ndim != 2:
        raise ValueError(f"condition and baseline must be 2-D (seeds, images), got {cond.shape} and {base.shape}")
    if cond.shape != base.shape:
        raise ValueError(f"condition shape {cond.shape} != baseline shape {base.shape}")
    if cond.size == 0:
        raise ValueError(f"condition and baseline are empty (shape {cond.shape})")
    if not (np.isfinite(cond).all() and np.isfinite(base).all()):
        raise ValueError("condition and baseline must be finite (a NaN or inf Dice is a bug upstream)")
    level = check_level(level)
    if isinstance(min_units, bool) or int(min_units) != min_units or min_units < 2:
        raise ValueError(f"min_units must be an integer >= 2 (a variance needs two units), got {min_units}")
    method = check_method(method)
    n_seeds, n_images = cond.shape
    diff = cond - base

    if clusters is None:
        unit, unit_by_image = UNIT_SEED, diff
    else:
        labels = np.asarray(list(clusters))
        if labels.ndim != 1 or len(labels) != n_seeds:
            raise ValueError(f"clusters must give one label per seed ({n_seeds} seeds), got {len(labels)} labels")
        unit = UNIT_GAN
        # Average the seeds of each GAN first, so a GAN that trained two U-Net++ seeds is not counted twice.
        _, inverse = np.unique(labels, return_inverse=True)
        unit_by_image = np.stack([diff[inverse == g].mean(axis=0) for g in range(inverse.max() + 1)])
    n_units = unit_by_image.shape[0]

    result: dict[str, Any] = {
        "mean": float(unit_by_image.mean()),  # rows are unit means, so this weighs units (and images) equally
        "se": None, "df": None, "ci_low": None, "ci_high": None, "p": None,
        "excludes_zero": False, "interval": False, "reason": None,
        "n_units": int(n_units), "n_seeds": int(n_seeds), "n_images": int(n_images), "unit": unit, "level": level,
        "method": method, "var_units": None, "var_images": None,
    }
    word = "GAN seed" if unit == UNIT_GAN else "seed"
    if n_units < min_units:
        result["reason"] = f"{plural(n_units, word)}; an interval needs at least {min_units}"
        return result
    if n_images < 2:
        result["reason"] = "1 test image; the image term of the interval needs at least 2"
        return result

    mean, var_units, var_images = (float(x) for x in moments(unit_by_image))
    low, high = interval_bounds(mean, var_units, var_images, n_units, n_images, level, method)
    result.update(
        mean=mean, se=math.sqrt(var_units + var_images),
        df=float(welch_df(var_units, var_images, n_units, n_images)), ci_low=float(low), ci_high=float(high),
        p=float(p_values(mean, var_units, var_images, n_units, n_images, method)),
        excludes_zero=bool(low > 0 or high < 0), interval=True, var_units=var_units, var_images=var_images,
    )
    return result


def adjusted_interval(delta: dict[str, Any], level: float) -> tuple[float, float] | None:
    """The interval of a :func:`paired_difference` result at another level, same method (None without one)."""
    level = check_level(level)
    if not delta.get("interval"):
        return None
    low, high = interval_bounds(delta["mean"], delta["var_units"], delta["var_images"], delta["n_units"],
                                delta["n_images"], level, delta["method"])
    return float(low), float(high)


def detectable_effect(
    var_units: float, var_images: float, n_units: int, n_images: int, alpha: float, power: float = 0.8,
    method: str = COCHRAN_COX,
) -> float:
    """The minimum detectable effect (MDE): the true difference that the two-sided test at level ``alpha`` (the
    interval at 1 - alpha excludes 0) detects with probability ``power``, for a design with these variance terms.

    MDE = (c_{alpha/2} + c_{1-power}) * se, each c the critical value of :func:`critical` (Cochran-Cox: the
    variance-weighted t quantiles of U-1 and I-1 df), the usual normal-theory power formula with t quantiles. It is
    what a non-significant contrast can be read against: "not detected; this design detects >= MDE with 80% power".
    ``tests/test_intervals.py`` checks it against simulated designs.
    """
    alpha = check_level(alpha, "alpha")
    power = check_level(power, "power")
    if not 0.5 <= power < 1.0:
        raise ValueError(f"power must lie in [0.5, 1), got {power}")
    se = math.sqrt(var_units + var_images)
    quantiles = critical(alpha / 2.0, var_units, var_images, n_units, n_images, method) + critical(
        1.0 - power, var_units, var_images, n_units, n_images, method)
    return float(quantiles * se)


def delta_mde(delta: dict[str, Any], alpha: float, power: float = 0.8) -> float | None:
    """:func:`detectable_effect` of a :func:`paired_difference` result (None without an interval)."""
    if not delta.get("interval"):
        return None
    return detectable_effect(delta["var_units"], delta["var_images"], delta["n_units"], delta["n_images"], alpha,
                             power, delta["method"])


def equivalent(delta: dict[str, Any], margin: float, alpha: float) -> bool | None:
    """Two one-sided tests (TOST) at level ``alpha``: True when both "difference <= -margin" and "difference >=
    margin" are rejected, i.e. the 1 - 2 alpha interval lies strictly inside (-margin, +margin). None without an
    interval (nothing can be shown)."""
    alpha = check_level(alpha, "alpha")
    if margin <= 0:
        raise ValueError(f"the equivalence margin must be positive, got {margin}")
    if not delta.get("interval"):
        return None
    low, high = interval_bounds(delta["mean"], delta["var_units"], delta["var_images"], delta["n_units"],
                                delta["n_images"], 1.0 - 2.0 * alpha, delta["method"])
    return bool(-margin < low and high < margin)
