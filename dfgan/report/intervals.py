"""Paired differences of per-image Dice with intervals that respect the nesting of the design, and Holm's adjustment.

A contrast's data are two arrays (seeds, test images) paired by U-Net++ seed (row) and test image (column). When a
GAN is involved, U-Net++ seed k trained on images of GAN seed ``clusters[k]`` and the GAN is the unit of
replication: seeds sharing a GAN share its luck, so treating them as independent understates the variance (see
:func:`calibration_rates` with ``by_gan=False``). Without a GAN each U-Net++ seed is its own unit.

The interval's critical value is Cochran-Cox's by default, Welch-Satterthwaite's on request (see
:func:`paired_difference`). Run ``python -m dfgan.report.intervals`` for the simulated false-exclusion and coverage
rates.
"""

from __future__ import annotations

import math
from typing import Any, Hashable, Sequence

import numpy as np
from scipy import optimize, stats

UNIT_GAN, UNIT_SEED = "gan", "seed"
COCHRAN_COX, WELCH = "cochran-cox", "welch"
METHODS = (COCHRAN_COX, WELCH)
MIN_TAIL = 1e-150


def _moments(unit_by_image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and the two variance terms s_u^2/U, s_i^2/I of (..., units, images) unit-by-image mean differences.

    Batched over leading axes so that :func:`paired_difference` and the simulations share one implementation.
    """
    n_units, n_images = unit_by_image.shape[-2:]
    unit_means = unit_by_image.mean(axis=-1)
    image_means = unit_by_image.mean(axis=-2)
    return (unit_means.mean(axis=-1), unit_means.var(axis=-1, ddof=1) / n_units,
            image_means.var(axis=-1, ddof=1) / n_images)


def _welch_df(var_units: Any, var_images: Any, n_units: int, n_images: int) -> np.ndarray:
    """Welch-Satterthwaite df of var_units + var_images (inf where both are 0)."""
    var_units, var_images = np.asarray(var_units, np.float64), np.asarray(var_images, np.float64)
    # A zero term has no uncertainty of its own and contributes nothing to the denominator.
    denominator = var_units**2 / (n_units - 1) + var_images**2 / (n_images - 1)
    safe = np.where(denominator > 0, denominator, 1.0)
    return np.where(denominator > 0, (var_units + var_images) ** 2 / safe, np.inf)


def _critical(
    tail: Any, var_units: Any, var_images: Any, n_units: int, n_images: int, method: str
) -> np.ndarray:
    """The two-sided critical value whose upper tail is ``tail`` (= (1 - level)/2), elementwise.

    Cochran-Cox: the variance-weighted mean of the components' own t quantiles (U-1 and I-1 df); Welch: the t
    quantile at the Welch-Satterthwaite df. Where both terms are 0 the value is irrelevant (se = 0), returned as 0.
    """
    var_units, var_images = np.asarray(var_units, np.float64), np.asarray(var_images, np.float64)
    total = var_units + var_images
    if method == WELCH:
        value = stats.t.isf(tail, _welch_df(var_units, var_images, n_units, n_images))
    else:
        weight = var_units / np.where(total > 0, total, 1.0)
        value = weight * stats.t.isf(tail, n_units - 1) + (1.0 - weight) * stats.t.isf(tail, n_images - 1)
    return np.where(total > 0, value, 0.0)


def _interval(
    mean: Any, var_units: Any, var_images: Any, n_units: int, n_images: int, level: float, method: str
) -> tuple[np.ndarray, np.ndarray]:
    """mean ± critical * se, elementwise (a point where se = 0)."""
    half = _critical((1.0 - level) / 2.0, var_units, var_images, n_units, n_images, method)
    half = half * np.sqrt(np.asarray(var_units) + np.asarray(var_images))
    return mean - half, mean + half


def _p_value(mean: float, var_units: float, var_images: float, n_units: int, n_images: int, method: str) -> float:
    """Two-sided p: the 1 - level at which the interval's end reaches 0, so p < 1 - level iff it excludes 0.

    With se = 0: 1.0 if mean == 0 (no difference anywhere) else 0.0. Under Cochran-Cox a p below 2e-150 is 0.
    """
    se = math.sqrt(var_units + var_images)
    if se == 0:
        return 1.0 if mean == 0 else 0.0
    statistic = abs(mean) / se
    if method == WELCH:
        return float(2.0 * stats.t.sf(statistic, float(_welch_df(var_units, var_images, n_units, n_images))))
    if statistic == 0:
        return 1.0

    # The Cochran-Cox critical value falls monotonically from inf to 0 as the tail goes from 0 to 1/2; solve in
    # log(tail) so that tiny p keep their relative precision.
    def excess(log_tail: float) -> float:
        return float(_critical(math.exp(log_tail), var_units, var_images, n_units, n_images, method)) - statistic

    # scipy's t.isf turns to -inf for some df below a tail of about 1e-250, so stop at 1e-150: a smaller p is
    # reported as 0 (no Holm step comes anywhere near it).
    low = math.log(MIN_TAIL)
    if excess(low) < 0:
        return 0.0
    return 2.0 * math.exp(optimize.brentq(excess, low, math.log(0.5), xtol=1e-13, rtol=1e-13))


def _check_level(level: float, name: str = "level") -> float:
    level = float(level)
    if not 0.0 < level < 1.0:
        raise ValueError(f"{name} must lie strictly between 0 and 1, got {level}")
    return level


def _check_method(method: str) -> str:
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    return method


def _plural(n: int, word: str) -> str:
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
    level = _check_level(level)
    if isinstance(min_units, bool) or int(min_units) != min_units or min_units < 2:
        raise ValueError(f"min_units must be an integer >= 2 (a variance needs two units), got {min_units}")
    method = _check_method(method)
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
        result["reason"] = f"{_plural(n_units, word)}; an interval needs at least {min_units}"
        return result
    if n_images < 2:
        result["reason"] = "1 test image; the image term of the interval needs at least 2"
        return result

    mean, var_units, var_images = (float(x) for x in _moments(unit_by_image))
    low, high = _interval(mean, var_units, var_images, n_units, n_images, level, method)
    result.update(
        mean=mean, se=math.sqrt(var_units + var_images),
        df=float(_welch_df(var_units, var_images, n_units, n_images)), ci_low=float(low), ci_high=float(high),
        p=_p_value(mean, var_units, var_images, n_units, n_images, method),
        excludes_zero=bool(low > 0 or high < 0), interval=True, var_units=var_units, var_images=var_images,
    )
    return result


def adjusted_interval(delta: dict[str, Any], level: float) -> tuple[float, float] | None:
    """The interval of a :func:`paired_difference` result at another level, same method (None without one)."""
    level = _check_level(level)
    if not delta.get("interval"):
        return None
    low, high = _interval(delta["mean"], delta["var_units"], delta["var_images"], delta["n_units"],
                          delta["n_images"], level, delta["method"])
    return float(low), float(high)


def holm(p_values: Sequence[float | None], alpha: float = 0.05) -> list[dict[str, Any]]:
    """Holm's step-down over the non-None p-values, in input order; None (no test) passes through.

    Each entry: ``p``, ``p_adjusted`` (sorted ascending, p_adj_(j) = max_{i<=j} min(1, (m-i+1) p_(i))),
    ``significant`` (p_adjusted < alpha) and ``step_level`` = 1 - alpha_j, where alpha_j = alpha/(m-j+1) while
    every earlier step rejected, and the first non-rejected step's alpha for all after it. An interval at
    ``step_level`` (:func:`adjusted_interval`) then excludes 0 exactly when Holm rejects, because its p is below
    alpha_j exactly then. Rejection is strict (p < alpha_j) to match the strict ``excludes_zero``.
    """
    alpha = _check_level(alpha, "alpha")
    tested = []
    for index, p in enumerate(p_values):
        if p is None:
            continue
        p = float(p)
        if not 0.0 <= p <= 1.0:  # also rejects NaN
            raise ValueError(f"p-value {index} must lie in [0, 1], got {p}")
        tested.append((p, index))
    out: list[dict[str, Any]] = [
        {"p": None, "p_adjusted": None, "significant": False, "step_level": None} for _ in p_values
    ]
    m = len(tested)
    running_max, step_alpha, rejecting = 0.0, alpha, True
    # A stable sort keeps ties in input order; tied p-values get the same decision either way.
    for j, (p, index) in enumerate(sorted(tested, key=lambda item: item[0])):
        running_max = max(running_max, min(1.0, (m - j) * p))
        if rejecting:
            step_alpha = alpha / (m - j)
            rejecting = p < step_alpha  # later steps keep the alpha of the first step that did not reject
        out[index] = {"p": p, "p_adjusted": running_max, "significant": running_max < alpha,
                      "step_level": 1.0 - step_alpha}
    return out


def _simulate(
    n_sims: int, n_gans: int, seeds_per_gan: int, n_images: int, rng: np.random.Generator, effect: float,
    gan_sd: float, seed_sd: float, image_sd: float, interaction_sd: float, noise_sd: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n_sims`` data sets of :func:`simulate_null` at once: (n_sims, seeds, images) arrays and the clusters."""
    n_seeds = n_gans * seeds_per_gan
    clusters = np.arange(n_seeds) // seeds_per_gan
    base = 0.75 + image_sd * rng.standard_normal((n_sims, 1, n_images))  # image difficulty, cancels in d
    baseline = (base + seed_sd * rng.standard_normal((n_sims, n_seeds, 1))
                + noise_sd * rng.standard_normal((n_sims, n_seeds, n_images)))
    gan = gan_sd * rng.standard_normal((n_sims, n_gans, 1))[:, clusters]
    interaction = interaction_sd * rng.standard_normal((n_sims, 1, n_images))  # the same for every seed
    condition = (base + effect + gan + seed_sd * rng.standard_normal((n_sims, n_seeds, 1)) + interaction
                 + noise_sd * rng.standard_normal((n_sims, n_seeds, n_images)))
    return condition, baseline, clusters


def simulate_null(
    n_gans: int, seeds_per_gan: int, n_images: int, rng: np.random.Generator, effect: float = 0.0,
    gan_sd: float = 0.04, seed_sd: float = 0.03, image_sd: float = 0.05, interaction_sd: float = 0.03,
    noise_sd: float = 0.15,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One Dice-like data set with the nested design: (condition, baseline, clusters), clusters[k] = k // seeds_per_gan.

    baseline[k, i] = base_i + seed_k + noise; condition[k, i] = base_i + effect + gan_{g(k)} + seed'_k +
    interaction_i + noise', every term normal with its sd, interaction_i shared by all seeds. Not clipped to [0, 1].
    """
    condition, baseline, clusters = _simulate(1, n_gans, seeds_per_gan, n_images, rng, effect, gan_sd, seed_sd,
                                              image_sd, interaction_sd, noise_sd)
    return condition[0], baseline[0], clusters


def calibration_rates(
    n_gans: int, seeds_per_gan: int, n_images: int = 50, n_sims: int = 1000, effect: float = 0.05, seed: int = 0,
    level: float = 0.95, by_gan: bool = True, min_units: int = 3, method: str = COCHRAN_COX, **sd: float,
) -> dict[str, Any]:
    """Simulated false-exclusion rate (nulls whose interval excludes 0) and coverage of ``effect``.

    ``sd`` are :func:`simulate_null`'s sds. ``by_gan=False`` treats each U-Net++ seed as a unit (the naive
    analysis) to show what ignoring the GAN clustering costs. Below ``min_units`` units the rates are None.
    Computes all simulations at once with the same helpers as :func:`paired_difference`.
    """
    level = _check_level(level)
    method = _check_method(method)
    n_units = n_gans if by_gan else n_gans * seeds_per_gan
    out: dict[str, Any] = {"false_exclusion": None, "coverage": None, "n_sims": int(n_sims), "n_units": n_units,
                           "interval": n_units >= min_units}
    if n_units < min_units:
        return out
    rng = np.random.default_rng(seed)
    sds = _sds(sd)
    for key, true in (("false_exclusion", 0.0), ("coverage", float(effect))):
        condition, baseline, _ = _simulate(n_sims, n_gans, seeds_per_gan, n_images, rng, true, **sds)
        diff = condition - baseline
        if by_gan:  # seeds of a GAN are adjacent rows: average them, as paired_difference does
            diff = diff.reshape(n_sims, n_gans, seeds_per_gan, n_images).mean(axis=2)
        low, high = _interval(*_moments(diff), n_units, n_images, level, method)
        if key == "false_exclusion":
            out[key] = float(np.mean((low > 0) | (high < 0)))
        else:
            out[key] = float(np.mean((low <= true) & (true <= high)))
    return out


def _sds(sd: dict[str, float]) -> dict[str, float]:
    """simulate_null's default sds updated by ``sd``, naming an unknown key."""
    defaults = {"gan_sd": 0.04, "seed_sd": 0.03, "image_sd": 0.05, "interaction_sd": 0.03, "noise_sd": 0.15}
    unknown = set(sd) - set(defaults)
    if unknown:
        raise ValueError(f"unknown sd {sorted(unknown)}; expected some of {sorted(defaults)}")
    return {**defaults, **{k: float(v) for k, v in sd.items()}}


DESIGNS = ((3, 1), (3, 2), (6, 1), (6, 2), (2, 2))
SCENARIOS = {"default": {}, "image term dominates": {"gan_sd": 0.01, "interaction_sd": 0.06},
             "GAN term dominates": {"gan_sd": 0.08}}


def _format(rate: float | None) -> str:
    return "no interval" if rate is None else f"{rate:.3f}"


def main() -> None:
    """Print the simulated rates of each design and scenario (1000 simulations each, 95% intervals)."""
    header = ("scenario", "GANs x seeds", "CC false ex", "CC coverage", "W false ex", "W coverage", "naive CC fe")
    print(f"{header[0]:<21}" + "".join(f"{h:>13}" for h in header[1:]))
    for name, sd in SCENARIOS.items():
        for n_gans, per_gan in DESIGNS:
            cc = calibration_rates(n_gans, per_gan, method=COCHRAN_COX, **sd)
            welch = calibration_rates(n_gans, per_gan, method=WELCH, **sd)
            naive = (_format(calibration_rates(n_gans, per_gan, by_gan=False, **sd)["false_exclusion"])
                     if per_gan > 1 else "-")
            cells = (f"{n_gans} x {per_gan}", _format(cc["false_exclusion"]), _format(cc["coverage"]),
                     _format(welch["false_exclusion"]), _format(welch["coverage"]), naive)
            print(f"{name:<21}" + "".join(f"{c:>13}" for c in cells))
    print("CC: Cochran-Cox critical value (the default); W: Welch-Satterthwaite df. naive: each U-Net++ seed taken "
          "as a unit, ignoring the GAN it shares.")


if __name__ == "__main__":
    main()
