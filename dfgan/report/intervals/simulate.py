"""Simulated designs: how often the report's intervals, gate and ratios err, and whether the MDE is what it says.

Data are Dice-like (seeds, test images) arrays with the nested design of the experiment: an image difficulty shared
by every condition (cancels in a paired difference), a GAN term shared by the U-Net++ seeds that trained on one GAN's
images, a U-Net++-seed term, a condition-by-image interaction shared by every seed, and per-image noise. Every term
is normal with its sd (:data:`DEFAULT_SDS`); nothing is clipped to [0, 1] (the adversarial shapes, zero-inflated and
skewed, are in docs/statistics.md). Everything is batched over simulations with the arithmetic of
:mod:`dfgan.report.intervals.paired`, so the rates are those of the report's own code.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from dfgan.report.intervals.multiplicity import gate_graph, graphical
from dfgan.report.intervals.paired import (
    COCHRAN_COX, check_level, check_method, detectable_effect, interval_bounds, moments, p_values,
)
from dfgan.report.intervals.ratio import contains, fieller_bounds

DEFAULT_SDS = {"gan_sd": 0.04, "seed_sd": 0.03, "image_sd": 0.05, "interaction_sd": 0.03, "noise_sd": 0.15}
REAL = "real"


def _sds(sd: Mapping[str, float]) -> dict[str, float]:
    """:data:`DEFAULT_SDS` updated by ``sd``, naming an unknown key."""
    unknown = set(sd) - set(DEFAULT_SDS)
    if unknown:
        raise ValueError(f"unknown sd {sorted(unknown)}; expected some of {sorted(DEFAULT_SDS)}")
    return {**DEFAULT_SDS, **{k: float(v) for k, v in sd.items()}}


def simulate_runs(
    n_sims: int, effects: Mapping[str, float], with_gan: Sequence[str], n_gans: int, seeds_per_gan: int,
    n_images: int, rng: np.random.Generator, **sd: float,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """``n_sims`` data sets of R and the conditions of ``effects`` (their true mean difference to R) at once:
    ({"real": (n_sims, seeds, images), condition: ...}, clusters), clusters[k] = k // seeds_per_gan.

    R[k, i] = base_i + seed_k + noise; condition c: base_i + effect_c + gan_c,g(k) (when c is in ``with_gan``: its own
    GANs) + seed'_k + interaction_c,i + noise'.
    """
    sds = _sds(sd)
    n_seeds = n_gans * seeds_per_gan
    clusters = np.arange(n_seeds) // seeds_per_gan
    base = 0.75 + sds["image_sd"] * rng.standard_normal((n_sims, 1, n_images))  # image difficulty, cancels in d

    def run(effect: float, gan: bool) -> np.ndarray:
        values = (base + effect + sds["seed_sd"] * rng.standard_normal((n_sims, n_seeds, 1))
                  + sds["interaction_sd"] * rng.standard_normal((n_sims, 1, n_images))  # shared by every seed
                  + sds["noise_sd"] * rng.standard_normal((n_sims, n_seeds, n_images)))
        if gan:
            values = values + sds["gan_sd"] * rng.standard_normal((n_sims, n_gans, 1))[:, clusters]
        return values

    runs = {REAL: base + sds["seed_sd"] * rng.standard_normal((n_sims, n_seeds, 1))
            + sds["noise_sd"] * rng.standard_normal((n_sims, n_seeds, n_images))}
    for name, effect in effects.items():
        runs[name] = run(float(effect), name in with_gan)
    return runs, clusters


def simulate_null(
    n_gans: int, seeds_per_gan: int, n_images: int, rng: np.random.Generator, effect: float = 0.0, **sd: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One data set of R + S (GAN images, true difference ``effect``) and R: (condition, baseline, clusters)."""
    runs, clusters = simulate_runs(1, {"gan": effect}, ["gan"], n_gans, seeds_per_gan, n_images, rng, **sd)
    return runs["gan"][0], runs[REAL][0], clusters


def unit_means(diff: np.ndarray, n_gans: int, seeds_per_gan: int) -> np.ndarray:
    """(sims, seeds, images) -> (sims, GANs, images): seeds of a GAN are adjacent rows, averaged as
    :func:`dfgan.report.intervals.paired.paired_difference` averages them."""
    n_sims, _, n_images = diff.shape
    return diff.reshape(n_sims, n_gans, seeds_per_gan, n_images).mean(axis=2)


def calibration_rates(
    n_gans: int, seeds_per_gan: int, n_images: int = 50, n_sims: int = 1000, effect: float = 0.05, seed: int = 0,
    level: float = 0.95, by_gan: bool = True, min_units: int = 3, method: str = COCHRAN_COX, **sd: float,
) -> dict[str, Any]:
    """Simulated false-exclusion rate (nulls whose interval excludes 0) and coverage of ``effect``.

    ``by_gan=False`` treats each U-Net++ seed as a unit (the naive analysis) to show what ignoring the GAN
    clustering costs. Below ``min_units`` units the rates are None.
    """
    level = check_level(level)
    method = check_method(method)
    n_units = n_gans if by_gan else n_gans * seeds_per_gan
    out: dict[str, Any] = {"false_exclusion": None, "coverage": None, "n_sims": int(n_sims), "n_units": n_units,
                           "interval": n_units >= min_units}
    if n_units < min_units:
        return out
    rng = np.random.default_rng(seed)
    for key, true in (("false_exclusion", 0.0), ("coverage", float(effect))):
        runs, _ = simulate_runs(n_sims, {"gan": true}, ["gan"], n_gans, seeds_per_gan, n_images, rng, **sd)
        diff = runs["gan"] - runs[REAL]
        if by_gan:
            diff = unit_means(diff, n_gans, seeds_per_gan)
        low, high = interval_bounds(*moments(diff), n_units, n_images, level, method)
        if key == "false_exclusion":
            out[key] = float(np.mean((low > 0) | (high < 0)))
        else:
            out[key] = float(np.mean((low <= true) & (true <= high)))
    return out


def detection_rate(
    effect: float, n_gans: int, seeds_per_gan: int, n_images: int, alpha: float, n_sims: int = 1000, seed: int = 0,
    **sd: float,
) -> float:
    """Share of simulated runs whose two-sided test at ``alpha`` detects a true difference ``effect`` (GAN units)."""
    runs, _ = simulate_runs(n_sims, {"gan": effect}, ["gan"], n_gans, seeds_per_gan, n_images,
                            np.random.default_rng(seed), **sd)
    diff = unit_means(runs["gan"] - runs[REAL], n_gans, seeds_per_gan)
    mean, var_units, var_images = moments(diff)
    return float(np.mean(p_values(mean, var_units, var_images, n_gans, n_images) < alpha))


def expected_mde(n_gans: int, seeds_per_gan: int, n_images: int, alpha: float, power: float = 0.8,
                 **sd: float) -> float:
    """The MDE of :func:`dfgan.report.intervals.paired.detectable_effect` from the simulation's true variance terms
    (what a run's estimated terms estimate), for checking it against :func:`detection_rate`."""
    s = _sds(sd)
    # Unit means of d = S - R: GAN + the two seed terms and the noise averaged over the seeds and images of a GAN;
    # image means: the interaction and the noise averaged over the units.
    var_unit = (s["gan_sd"] ** 2 + (2 * s["seed_sd"] ** 2 + 2 * s["noise_sd"] ** 2 / n_images) / seeds_per_gan)
    var_image = s["interaction_sd"] ** 2 + 2 * s["noise_sd"] ** 2 / (n_gans * seeds_per_gan)
    return detectable_effect(var_unit / n_gans, var_image / n_images, n_gans, n_images, alpha, power)


# --- the gated order of questions ----------------------------------------------------------------------------------

# The evidence design's gate at each size: R + S (DF-GAN) - R, then R + S (DF-GAN) - R + paste, then DF-GAN - Pix2Pix.
GATE_CONTRASTS = (("dfgan", REAL), ("dfgan", "paste"), ("dfgan", "pix2pix"))
GAN_CONDITIONS = ("dfgan", "pix2pix")


def gate_p_values(
    n_sims: int, n_sizes: int, effects: Mapping[str, float], n_gans: int = 6, seeds_per_gan: int = 1,
    n_images: int = 100, seed: int = 0, **sd: float,
) -> np.ndarray:
    """(n_sims, n_sizes * 3) raw p-values of the gate's hypotheses over ``n_sizes`` sizes, each with the three of
    :data:`GATE_CONTRASTS`, in the order of :func:`dfgan.report.intervals.multiplicity.gate_graph` (the primaries
    first, then each size's chain). ``effects``: the true difference to R of ``dfgan``, ``pix2pix`` and ``paste``
    (missing: 0), the same at every size."""
    rng = np.random.default_rng(seed)
    true = {name: float(effects.get(name, 0.0)) for name in ("dfgan", "pix2pix", "paste")}
    p_by_size = []
    for _ in range(n_sizes):
        runs, _ = simulate_runs(n_sims, true, GAN_CONDITIONS, n_gans, seeds_per_gan, n_images, rng, **sd)
        columns = []
        for condition, baseline in GATE_CONTRASTS:
            mean, var_units, var_images = moments(unit_means(runs[condition] - runs[baseline], n_gans, seeds_per_gan))
            columns.append(p_values(mean, var_units, var_images, n_gans, n_images))
        p_by_size.append(columns)
    primaries = [columns[0] for columns in p_by_size]
    chains = [p for columns in p_by_size for p in columns[1:]]
    return np.stack(primaries + chains, axis=1)


def gate_rejections(n_sims: int, n_sizes: int, effects: Mapping[str, float], alpha: float = 0.05,
                    **kwargs: Any) -> np.ndarray:
    """(n_sims, n_sizes * 3) decisions of the gate on :func:`gate_p_values` (same order)."""
    weights, transitions = gate_graph([len(GATE_CONTRASTS) - 1] * n_sizes)
    p = gate_p_values(n_sims, n_sizes, effects, **kwargs)
    return np.array([[d["significant"] for d in graphical(list(row), weights, transitions, alpha)] for row in p])


def true_nulls(n_sizes: int, effects: Mapping[str, float]) -> np.ndarray:
    """Which hypotheses of :func:`gate_rejections` are true nulls under ``effects`` (graph order)."""
    true = {name: float(effects.get(name, 0.0)) for name in ("dfgan", "pix2pix", "paste")}
    true[REAL] = 0.0
    null = [true[c] == true[b] for c, b in GATE_CONTRASTS]
    return np.array([null[0]] * n_sizes + null[1:] * n_sizes)


def familywise_error(n_sims: int = 2000, n_sizes: int = 2, effects: Mapping[str, float] | None = None,
                     **kwargs: Any) -> float:
    """Share of simulated runs in which the gate rejects at least one true null."""
    effects = effects or {}
    rejected = gate_rejections(n_sims, n_sizes, effects, **kwargs)
    return float(np.mean((rejected & true_nulls(n_sizes, effects)).any(axis=1)))


# --- what a synthetic image is worth --------------------------------------------------------------------------------


def ratio_coverage(
    ratio: float, oracle_gain: float, n_gans: int = 6, seeds_per_gan: int = 1, n_images: int = 100,
    n_sims: int = 2000, level: float = 0.95, seed: int = 0, **sd: float,
) -> dict[str, float]:
    """Coverage of the true ρ by Fieller's set (:func:`dfgan.report.intervals.ratio.fieller_bounds`) when R + S
    gains ``ratio * oracle_gain`` and R + fresh gains ``oracle_gain``; also the share of bounded sets."""
    runs, _ = simulate_runs(n_sims, {"gan": ratio * oracle_gain, "fresh": oracle_gain}, ["gan"], n_gans,
                            seeds_per_gan, n_images, np.random.default_rng(seed), **sd)
    gan = unit_means(runs["gan"] - runs[REAL], n_gans, seeds_per_gan)
    fresh = unit_means(runs["fresh"] - runs[REAL], n_gans, seeds_per_gan)
    _, low, high, kind = fieller_bounds(gan, fresh, level)
    return {"coverage": float(np.mean(contains(ratio, low, high, kind))), "bounded": float(np.mean(kind == 0))}


DESIGNS = ((3, 1), (3, 2), (6, 1), (6, 2), (2, 2))
SCENARIOS = {"default": {}, "image term dominates": {"gan_sd": 0.01, "interaction_sd": 0.06},
             "GAN term dominates": {"gan_sd": 0.08}}

