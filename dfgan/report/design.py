"""Planning a design from a pilot run: its variance terms, the MDE of any (GAN seeds, U-Net++ seeds per GAN, test
images) design, and the cheapest design that reaches a target MDE (``python -m benchmarks.design`` prints it with
its GPU- and CPU-hours).

A GAN contrast's per-image differences d[k, i] (U-Net++ seed k, test image i) are modelled as
g_{GAN(k)} + s_k + t_i + e_ki: a GAN term (variance ``gan``), a U-Net++-seed term (``seed``), a condition-by-image
interaction shared by every seed (``interaction``) and cell noise (``noise``). For G GANs with k seeds each and I
test images, the report's interval (:func:`dfgan.report.intervals.paired.paired_difference`) has

    var_units  = (gan + (seed + noise / I) / k) / G
    var_images = (interaction + noise / (G k)) / I

From a pilot: ``noise`` is the residual variance of the two-way (seed x image) decomposition of the primary's
differences; ``seed`` comes from a GAN-free contrast of the same size and augmentation (its units are seeds: their
spread is seed + noise / I); ``gan`` is what the GAN contrast's unit spread holds beyond that, ``interaction`` what
its image spread holds beyond the noise (each floored at 0). These are the terms :mod:`dfgan.report.intervals.simulate`
draws, so a plan can be checked against simulation (``tests/test_design.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Hashable, Sequence

import numpy as np
import pandas as pd

from dfgan.report.contrasts import Contrast, RunKey, contrast_clusters, run_frames
from dfgan.report.intervals.paired import detectable_effect
from dfgan.report.intervals.ratio import unit_rows
from dfgan.seg.training_sets import REAL


@dataclass(frozen=True)
class VarianceTerms:
    """The variance terms of one GAN contrast (see the module docstring), and where they came from."""

    gan: float
    seed: float
    interaction: float
    noise: float
    source: str = ""

    def variances(self, n_gans: int, seeds_per_gan: int, n_images: int) -> tuple[float, float]:
        """(var_units, var_images): the two terms of se² for that design."""
        units = (self.gan + (self.seed + self.noise / n_images) / seeds_per_gan) / n_gans
        images = (self.interaction + self.noise / (n_gans * seeds_per_gan)) / n_images
        return units, images

    def simulation_sds(self) -> dict[str, float]:
        """The sds of :func:`dfgan.report.intervals.simulate.simulate_runs` that draw data with these terms (its seed
        and noise terms enter both sides of a difference)."""
        return {"gan_sd": math.sqrt(self.gan), "seed_sd": math.sqrt(self.seed / 2),
                "interaction_sd": math.sqrt(self.interaction), "noise_sd": math.sqrt(self.noise / 2)}


def residual_variance(diff: np.ndarray) -> float:
    """Unbiased cell variance left after the row (seed) and column (image) means of a (seeds, images) array."""
    rows, columns = diff.shape
    residual = diff - diff.mean(axis=1, keepdims=True) - diff.mean(axis=0, keepdims=True) + diff.mean()
    return float((residual**2).sum() / ((rows - 1) * (columns - 1)))


def pilot_terms(
    gan_diff: np.ndarray, clusters: Sequence[Hashable], free_diff: np.ndarray, source: str = ""
) -> VarianceTerms:
    """The terms of a GAN contrast from a pilot: ``gan_diff`` its (seeds, images) per-image differences with the
    GAN of each seed in ``clusters``; ``free_diff`` a GAN-free contrast's differences on the same test images."""
    gan_diff, free_diff = np.asarray(gan_diff, np.float64), np.asarray(free_diff, np.float64)
    if gan_diff.shape[1] != free_diff.shape[1]:
        raise ValueError(f"the contrasts have {gan_diff.shape[1]} and {free_diff.shape[1]} test images")
    n_seeds, n_images = gan_diff.shape
    units = unit_rows(gan_diff, clusters)
    n_gans = len(units)
    if n_gans < 2 or len(free_diff) < 2:
        raise ValueError(f"a pilot needs at least 2 GAN seeds and 2 GAN-free seeds, got {n_gans} and {len(free_diff)}")
    per_gan = n_seeds / n_gans
    noise = residual_variance(gan_diff)
    seed = max(0.0, float(free_diff.mean(axis=1).var(ddof=1)) - residual_variance(free_diff) / n_images)
    gan = max(0.0, float(units.mean(axis=1).var(ddof=1)) - (seed + noise / n_images) / per_gan)
    interaction = max(0.0, float(units.mean(axis=0).var(ddof=1)) - noise / n_seeds)
    return VarianceTerms(gan=gan, seed=seed, interaction=interaction, noise=noise, source=source)


def design_mde(terms: VarianceTerms, n_gans: int, seeds_per_gan: int, n_images: int, alpha: float,
               power: float = 0.8) -> float:
    """The MDE of a design with these terms (the report's interval, units = GAN seeds)."""
    var_units, var_images = terms.variances(n_gans, seeds_per_gan, n_images)
    return detectable_effect(var_units, var_images, n_gans, n_images, alpha, power)


@dataclass(frozen=True)
class Plan:
    n_gans: int
    seeds_per_gan: int
    mde: float
    cost: float  # in the unit of the cost function (e.g. GPU-hours)
    reached: bool  # the MDE is at most the target (False: the largest design searched, which falls short)


def plan_design(
    terms: VarianceTerms, target: float, n_images: int, alpha: float, cost: Callable[[int, int], float],
    power: float = 0.8, max_gans: int = 48, max_seeds_per_gan: int = 4, min_gans: int = 3,
) -> Plan:
    """The cheapest (GAN seeds, U-Net++ seeds per GAN) whose MDE is at most ``target``; ``cost(G, k)`` prices a design
    (e.g. GPU-hours). When none within the limits reaches it, the one with the smallest MDE, ``reached`` False."""
    best: Plan | None = None
    closest: Plan | None = None
    for n_gans in range(min_gans, max_gans + 1):
        for per_gan in range(1, max_seeds_per_gan + 1):
            mde = design_mde(terms, n_gans, per_gan, n_images, alpha, power)
            candidate = Plan(n_gans, per_gan, mde, cost(n_gans, per_gan), mde <= target)
            if candidate.reached and (best is None or candidate.cost < best.cost):
                best = candidate
            if closest is None or mde < closest.mde:
                closest = candidate
    assert closest is not None
    return best if best is not None else closest


# GAN-free contrasts whose seed spread estimates the U-Net++-seed term, in order of preference.
SEED_CONTRASTS = ("real2x", "real+paste", "real+flip", "real+fresh")


def run_terms(
    per_image: dict[RunKey, pd.DataFrame], results: dict[RunKey, dict], size: int, variant: str, aug: str,
    source: str = "",
) -> VarianceTerms:
    """The terms of R + S (``variant``) - R at one size and augmentation of a finished run (its per-image tables and
    metrics as :func:`dfgan.report.build.load_per_image_dice` and ``load_seg_metrics`` read them)."""
    gan = Contrast(int(size), variant, REAL, aug)
    condition, real = run_frames(gan, per_image)
    free = next((c for c in SEED_CONTRASTS if (int(size), c, aug) in per_image), None)
    if free is None:
        raise ValueError(f"size {size}: no GAN-free run ({', '.join(SEED_CONTRASTS)}) to estimate the seed term from")
    other, _ = run_frames(Contrast(int(size), free, REAL, aug), per_image)
    clusters = contrast_clusters(gan, results) or list(range(len(condition)))
    return pilot_terms((condition - real).to_numpy(), clusters, (other - real).to_numpy(),
                       source or f"{size}/{variant}-{aug} (seed term from {free})")
