"""The design planner: variance terms from a pilot, the MDE of a planned design checked against simulation."""

from __future__ import annotations

import numpy as np
import pytest

from dfgan.report.design import VarianceTerms, design_mde, pilot_terms, plan_design, residual_variance
from dfgan.report.intervals.simulate import detection_rate, simulate_runs, unit_means

TRUE = VarianceTerms(gan=0.04**2, seed=2 * 0.03**2, interaction=0.03**2, noise=2 * 0.15**2)


def pilot(n_gans: int, per_gan: int, n_images: int, seed: int) -> VarianceTerms:
    """The terms a pilot with that design estimates from data drawn with :data:`TRUE`."""
    runs, clusters = simulate_runs(1, {"gan": 0.0, "free": 0.0}, ["gan"], n_gans, per_gan, n_images,
                                   np.random.default_rng(seed), **TRUE.simulation_sds())
    return pilot_terms(runs["gan"][0] - runs["real"][0], clusters, runs["free"][0] - runs["real"][0])


def test_residual_variance_of_a_known_table() -> None:
    rng = np.random.default_rng(0)
    table = np.add.outer(rng.normal(0, 1, 40), rng.normal(0, 1, 300)) + rng.normal(0, 0.5, (40, 300))
    assert residual_variance(table) == pytest.approx(0.25, rel=0.05)


def test_a_pilot_recovers_the_terms_on_average() -> None:
    estimates = [pilot(12, 1, 100, seed) for seed in range(150)]
    for name in ("gan", "seed", "interaction", "noise"):
        mean = float(np.mean([getattr(e, name) for e in estimates]))
        print(f"{name}: true {getattr(TRUE, name):.5f}, mean estimate {mean:.5f}")
        # Floored at 0 the small terms are biased up a little; the noise is estimated from 1,200 cells.
        assert mean == pytest.approx(getattr(TRUE, name), rel=0.35 if name != "noise" else 0.03)


@pytest.mark.parametrize(("target", "alpha"), [(0.08, 0.025), (0.05, 0.025), (0.10, 0.05)])
def test_the_planned_design_detects_its_target(target: float, alpha: float) -> None:
    """The plan for a target MDE, from the true terms, detects a true difference of that size in >= 75% of 600
    simulated runs with those terms, and a null difference in <= 7%."""
    plan = plan_design(TRUE, target, 100, alpha, cost=lambda g, k: g * 1.0 + g * k * 0.5)
    assert plan.reached and plan.mde <= target
    sds = TRUE.simulation_sds()
    power = detection_rate(target, plan.n_gans, plan.seeds_per_gan, 100, alpha, n_sims=600, seed=1, **sds)
    null = detection_rate(0.0, plan.n_gans, plan.seeds_per_gan, 100, alpha, n_sims=600, seed=2, **sds)
    print(f"target {target} at alpha {alpha}: {plan.n_gans} GANs x {plan.seeds_per_gan}, MDE {plan.mde:.3f}, "
          f"detected in {power:.1%}, null in {null:.1%}")
    assert power >= 0.75 and null <= 0.07


def test_the_mde_of_the_terms_is_the_simulated_one() -> None:
    runs, _ = simulate_runs(2000, {"gan": 0.0}, ["gan"], 6, 1, 100, np.random.default_rng(4), **TRUE.simulation_sds())
    diff = unit_means(runs["gan"] - runs["real"], 6, 1)
    var_units = float(np.mean(diff.mean(axis=2).var(axis=1, ddof=1))) / 6
    var_images = float(np.mean(diff.mean(axis=1).var(axis=1, ddof=1))) / 100
    assert TRUE.variances(6, 1, 100) == pytest.approx((var_units, var_images), rel=0.05)


def test_the_plan_is_the_cheapest_that_reaches_the_target() -> None:
    def cost(n_gans: int, per_gan: int) -> float:
        return 2.0 * n_gans + 1.0 * n_gans * per_gan  # a GAN costs twice a U-Net++ seed

    plan = plan_design(TRUE, 0.07, 100, 0.05, cost)
    for n_gans in range(3, 49):
        for per_gan in range(1, 5):
            if design_mde(TRUE, n_gans, per_gan, 100, 0.05) <= 0.07:
                assert cost(n_gans, per_gan) >= plan.cost
    unreachable = plan_design(TRUE, 0.001, 100, 0.05, cost, max_gans=6)
    assert not unreachable.reached and unreachable.n_gans == 6
    with pytest.raises(ValueError, match="at least 2 GAN seeds"):
        pilot_terms(np.zeros((1, 10)), [0], np.zeros((3, 10)))
