"""Paired-difference intervals: exact small cases, simulated calibration, Holm's steps, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from dfgan.report.intervals.multiplicity import holm
from dfgan.report.intervals.paired import (
    COCHRAN_COX, WELCH, adjusted_interval, delta_mde, detectable_effect, equivalent, interval_bounds, moments,
    paired_difference,
)
from dfgan.report.intervals.simulate import calibration_rates, detection_rate, expected_mde, simulate_null

DESIGNS = ((3, 1), (3, 2), (6, 1), (6, 2))
SCENARIOS = {
    "default": {},
    "image term dominates": {"gan_sd": 0.01, "interaction_sd": 0.06},
    "GAN term dominates": {"gan_sd": 0.08},
}
N_SIMS = 2000


# --- exact small examples ------------------------------------------------------------------------------------------

def test_hand_computed_seed_units() -> None:
    # d rows (seeds) [[1, 3], [2, 2], [4, 6]]: unit means 2, 2, 5 -> mean 3, s_u^2 = 3, s_u^2/U = 1.
    # Image means 7/3, 11/3 -> s_i^2 = 8/9, s_i^2/I = 4/9. se^2 = 13/9.
    # Welch df = (13/9)^2 / (1^2/2 + (4/9)^2/1) = 338/113.
    baseline = np.array([[0.5, 0.1], [0.2, 0.3], [0.0, 0.4]])
    condition = baseline + np.array([[1.0, 3.0], [2.0, 2.0], [4.0, 6.0]])
    se, df = math.sqrt(13) / 3, 338 / 113
    welch = paired_difference(condition, baseline, method=WELCH)
    assert welch["mean"] == pytest.approx(3.0)
    assert welch["se"] == pytest.approx(se)
    assert welch["df"] == pytest.approx(df)
    half = stats.t.ppf(0.975, df) * se
    assert (welch["ci_low"], welch["ci_high"]) == pytest.approx((3 - half, 3 + half))
    assert welch["p"] == pytest.approx(2 * stats.t.sf(3 / se, df))
    assert welch["excludes_zero"] == (welch["ci_low"] > 0)
    assert welch["interval"] and welch["reason"] is None
    assert (welch["n_units"], welch["n_seeds"], welch["n_images"], welch["unit"]) == (3, 3, 2, "seed")

    # Cochran-Cox: the unit term's share is 1 / (13/9) = 9/13; c = 9/13 t_2 + 4/13 t_1.
    cc = paired_difference(condition, baseline)
    assert cc["method"] == COCHRAN_COX
    assert (cc["mean"], cc["se"], cc["df"]) == pytest.approx((3.0, se, df))
    half = (9 / 13 * stats.t.ppf(0.975, 2) + 4 / 13 * stats.t.ppf(0.975, 1)) * se
    assert (cc["ci_low"], cc["ci_high"]) == pytest.approx((3 - half, 3 + half))
    # p is where the interval's end reaches 0.
    assert adjusted_interval(cc, 1 - cc["p"])[0] == pytest.approx(0.0, abs=1e-9)


def test_hand_computed_gan_units_weigh_each_gan_once() -> None:
    # GAN 0 trained seeds 0 and 1; GANs 1 and 2 one seed each. Unit rows: [1, 2], [2, 6], [4, 6].
    d = np.array([[0.0, 2.0], [2.0, 2.0], [2.0, 6.0], [4.0, 6.0]])
    result = paired_difference(d, np.zeros_like(d), clusters=[0, 0, 1, 2], method=WELCH)
    # Unit means 1.5, 4, 5 -> 3.5 (seed-weighted would be 3); s_u^2/U = 3.25/3 = 13/12.
    # Image means 7/3, 14/3 -> s_i^2/I = (49/18)/2 = 49/36; se^2 = 22/9.
    var_u, var_i = 13 / 12, 49 / 36
    assert result["mean"] == pytest.approx(3.5)
    assert result["se"] == pytest.approx(math.sqrt(22 / 9))
    assert result["df"] == pytest.approx((22 / 9) ** 2 / (var_u**2 / 2 + var_i**2 / 1))
    assert (result["var_units"], result["var_images"]) == pytest.approx((var_u, var_i))
    assert (result["n_units"], result["n_seeds"], result["unit"]) == (3, 4, "gan")
    # Labels are only labels: strings, in any order, give the same result.
    relabelled = paired_difference(d, np.zeros_like(d), clusters=["b", "b", "a", "c"], method=WELCH)
    assert relabelled["mean"] == result["mean"] and relabelled["se"] == pytest.approx(result["se"])


def test_no_spread_gives_a_point_interval() -> None:
    baseline = np.random.default_rng(0).uniform(0.5, 0.9, (3, 4))
    shifted = paired_difference(baseline + 0.1, baseline)
    assert shifted["se"] == pytest.approx(0.0, abs=1e-12)
    assert shifted["ci_low"] == pytest.approx(0.1) and shifted["ci_high"] == pytest.approx(0.1)
    same = paired_difference(baseline, baseline)
    assert (same["mean"], same["se"], same["ci_low"], same["ci_high"], same["p"]) == (0.0, 0.0, 0.0, 0.0, 1.0)
    assert same["df"] == math.inf and not same["excludes_zero"]


def test_fewer_than_three_gan_seeds_give_no_interval() -> None:
    condition, baseline, clusters = simulate_null(2, 2, 20, np.random.default_rng(1), effect=0.3)
    result = paired_difference(condition, baseline, clusters)
    assert not result["interval"] and not result["excludes_zero"]
    assert result["reason"] == "2 GAN seeds; an interval needs at least 3"
    assert all(result[k] is None for k in ("se", "df", "ci_low", "ci_high", "p"))
    assert result["mean"] == pytest.approx((condition - baseline).mean())
    assert adjusted_interval(result, 0.99) is None
    # The same four seeds as independent units would give an interval: the clusters are what forbid it.
    assert paired_difference(condition, baseline)["interval"]
    assert paired_difference(condition[:2], baseline[:2])["reason"] == "2 seeds; an interval needs at least 3"
    assert "1 GAN seed;" in paired_difference(condition, baseline, [7, 7, 7, 7])["reason"]


def test_one_test_image_gives_no_interval() -> None:
    result = paired_difference(np.ones((4, 1)), np.zeros((4, 1)))
    assert not result["interval"] and "1 test image" in result["reason"]


# --- calibration by simulation ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_intervals_are_calibrated(scenario: str) -> None:
    sd = SCENARIOS[scenario]
    for n_gans, per_gan in DESIGNS:
        rates = calibration_rates(n_gans, per_gan, n_sims=N_SIMS, seed=11, **sd)
        print(f"{scenario:<21} {n_gans} GANs x {per_gan} seeds: false exclusion {rates['false_exclusion']:.3f}, "
              f"coverage {rates['coverage']:.3f}")
        assert rates["n_sims"] == N_SIMS
        assert rates["false_exclusion"] <= 0.07
        assert rates["coverage"] >= 0.92


def test_welch_df_is_liberal_with_three_gans_when_the_gan_term_dominates() -> None:
    # Why the default is Cochran-Cox: with 3 units a chance small s_u^2 both shrinks se and raises Welch's df.
    welch = calibration_rates(3, 1, n_sims=20000, seed=5, method=WELCH, gan_sd=0.08)["false_exclusion"]
    cc = calibration_rates(3, 1, n_sims=20000, seed=5, gan_sd=0.08)["false_exclusion"]
    print(f"GAN term dominates, 3 GANs x 1 seed: false exclusion Welch {welch:.3f}, Cochran-Cox {cc:.3f}")
    assert welch > 0.065 > 0.05 > cc


@pytest.mark.parametrize("scenario", ["default", "GAN term dominates"])
def test_seeds_as_units_understate_the_variance_when_seeds_share_a_gan(scenario: str) -> None:
    # Two U-Net++ seeds on one GAN share its draw; as "independent" seeds they look like more, tighter replicates.
    sd = SCENARIOS[scenario]
    for n_gans in (3, 6):
        clustered = calibration_rates(n_gans, 2, n_sims=4000, seed=3, **sd)["false_exclusion"]
        naive = calibration_rates(n_gans, 2, n_sims=4000, seed=3, by_gan=False, **sd)["false_exclusion"]
        print(f"{scenario:<21} {n_gans} GANs x 2 seeds: false exclusion by GAN {clustered:.3f}, "
              f"seeds as units {naive:.3f}")
        assert naive >= clustered + 0.02
        if scenario == "GAN term dominates":
            assert naive > 0.1 and naive >= 2 * clustered


def test_calibration_below_min_units_has_no_rates() -> None:
    rates = calibration_rates(2, 2, n_sims=10)
    assert rates["false_exclusion"] is None and rates["coverage"] is None and not rates["interval"]


def test_batched_simulation_matches_paired_difference() -> None:
    # calibration_rates computes every simulation at once; check it against the public function, one by one.
    rng = np.random.default_rng(4)
    for method in (COCHRAN_COX, WELCH):
        data = [simulate_null(3, 2, 30, rng, effect=0.02) for _ in range(50)]
        diff = np.stack([c - b for c, b, _ in data]).reshape(50, 3, 2, 30).mean(axis=2)
        low, high = interval_bounds(*moments(diff), 3, 30, 0.95, method)
        for (c, b, clusters), lo, hi in zip(data, low, high):
            result = paired_difference(c, b, clusters, method=method)
            assert (result["ci_low"], result["ci_high"]) == pytest.approx((lo, hi))


def test_simulate_null_shapes_and_clusters() -> None:
    condition, baseline, clusters = simulate_null(3, 2, 7, np.random.default_rng(0))
    assert condition.shape == baseline.shape == (6, 7)
    assert list(clusters) == [0, 0, 1, 1, 2, 2]


# --- Holm --------------------------------------------------------------------------------------------------------

def test_holm_textbook_example() -> None:
    decisions = holm([0.01, 0.04, 0.03, 0.005], alpha=0.05)
    assert [d["p_adjusted"] for d in decisions] == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert [d["significant"] for d in decisions] == [True, False, False, True]
    # Steps: 0.005 vs 0.05/4 and 0.01 vs 0.05/3 reject; 0.03 vs 0.05/2 does not, and 0.04 keeps that level.
    assert [d["step_level"] for d in decisions] == pytest.approx([1 - 0.05 / 3, 0.975, 0.975, 1 - 0.05 / 4])


def test_holm_passes_none_through_and_counts_only_tests() -> None:
    decisions = holm([None, 0.02, None, 0.01])
    assert decisions[0] == {"p": None, "p_adjusted": None, "significant": False, "step_level": None}
    assert decisions[2]["p_adjusted"] is None
    assert [decisions[1]["p_adjusted"], decisions[3]["p_adjusted"]] == pytest.approx([0.02, 0.02])  # m = 2
    assert holm([]) == [] and holm([None]) == [{"p": None, "p_adjusted": None, "significant": False,
                                                 "step_level": None}]
    assert holm([0.3])[0]["p_adjusted"] == 0.3 and holm([0.9, 0.8])[0]["p_adjusted"] == 1.0


@pytest.mark.parametrize("method", [COCHRAN_COX, WELCH])
def test_interval_at_the_step_level_excludes_zero_iff_holm_rejects(method: str) -> None:
    rng = np.random.default_rng(8)
    checked = significant = 0
    for _ in range(60):
        family = []
        for _ in range(int(rng.integers(1, 8))):
            n_gans, per_gan = int(rng.integers(2, 7)), int(rng.integers(1, 3))
            effect = float(rng.choice([0.0, 0.03, 0.06, 0.1]))
            condition, baseline, clusters = simulate_null(n_gans, per_gan, 40, rng, effect=effect)
            family.append(paired_difference(condition, baseline, clusters, method=method))
        for delta, decision in zip(family, holm([d["p"] for d in family], alpha=0.05)):
            bounds = adjusted_interval(delta, decision["step_level"]) if decision["step_level"] else None
            if bounds is None:
                assert not delta["interval"] and not decision["significant"]
                continue
            excludes = bounds[0] > 0 or bounds[1] < 0
            assert excludes == decision["significant"], (delta, decision, bounds)
            checked += 1
            significant += decision["significant"]
    assert checked > 100 and 0 < significant < checked  # both outcomes were exercised


# --- bad input -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((np.zeros((3, 4)), np.zeros((3, 5))), {}, "shape"),
        ((np.zeros(4), np.zeros(4)), {}, "2-D"),
        ((np.zeros((0, 4)), np.zeros((0, 4))), {}, "empty"),
        ((np.full((3, 2), np.nan), np.zeros((3, 2))), {}, "finite"),
        ((np.zeros((3, 4)), np.zeros((3, 4))), {"clusters": [0, 1]}, "one label per seed"),
        ((np.zeros((3, 4)), np.zeros((3, 4))), {"level": 1.0}, "level"),
        ((np.zeros((3, 4)), np.zeros((3, 4))), {"level": 0.0}, "level"),
        ((np.zeros((3, 4)), np.zeros((3, 4))), {"min_units": 1}, "min_units"),
        ((np.zeros((3, 4)), np.zeros((3, 4))), {"method": "z"}, "method"),
    ],
)
def test_paired_difference_rejects_bad_input(args: tuple, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        paired_difference(*args, **kwargs)


def test_holm_and_adjusted_interval_reject_bad_input() -> None:
    with pytest.raises(ValueError, match="p-value 1"):
        holm([0.1, 1.5])
    with pytest.raises(ValueError, match="p-value 0"):
        holm([float("nan")])
    with pytest.raises(ValueError, match="alpha"):
        holm([0.1], alpha=0.0)
    delta = paired_difference(np.eye(3), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="level"):
        adjusted_interval(delta, 1.2)
    with pytest.raises(ValueError, match="unknown sd"):
        calibration_rates(3, 1, n_sims=10, gan_sdd=0.1)


def test_a_huge_effect_has_a_tiny_p_and_is_significant() -> None:
    condition, baseline, clusters = simulate_null(3, 2, 50, np.random.default_rng(2), effect=5.0)
    for method in (COCHRAN_COX, WELCH):
        delta = paired_difference(condition, baseline, clusters, method=method)
        assert delta["excludes_zero"] and 0.0 <= delta["p"] < 1e-3
        decision = holm([delta["p"], 0.5])[0]
        assert decision["significant"]
        assert adjusted_interval(delta, decision["step_level"])[0] > 0


# --- what a design can detect, and equivalence -------------------------------------------------------------------

@pytest.mark.parametrize(("n_gans", "per_gan", "alpha"), [(6, 1, 0.05), (6, 1, 0.025), (12, 1, 0.05), (3, 2, 0.05)])
def test_the_mde_is_detected_with_80_percent_power(n_gans: int, per_gan: int, alpha: float) -> None:
    mde = expected_mde(n_gans, per_gan, 100, alpha)
    rate = detection_rate(mde, n_gans, per_gan, 100, alpha, n_sims=1500, seed=3)
    null = detection_rate(0.0, n_gans, per_gan, 100, alpha, n_sims=1500, seed=4)
    print(f"{n_gans} GANs x {per_gan}, alpha {alpha}: MDE {mde:.3f} detected in {rate:.3f}, null in {null:.3f}")
    assert 0.75 <= rate <= 0.87
    assert null <= alpha + 0.02
    # Half the MDE is detected far less often: the number is not loose.
    assert detection_rate(mde / 2, n_gans, per_gan, 100, alpha, n_sims=1500, seed=5) < 0.5


def test_mde_hand_computed_and_from_a_delta() -> None:
    # Seed units, all variance in the unit term: c = t_{U-1} quantiles, MDE = (t_{.975} + t_{.8}) * se.
    mde = detectable_effect(0.0004, 0.0, 6, 100, alpha=0.05, power=0.8)
    assert mde == pytest.approx((stats.t.isf(0.025, 5) + stats.t.isf(0.2, 5)) * 0.02)
    condition, baseline, clusters = simulate_null(6, 1, 50, np.random.default_rng(1))
    delta = paired_difference(condition, baseline, clusters)
    assert delta_mde(delta, 0.05) == pytest.approx(
        detectable_effect(delta["var_units"], delta["var_images"], 6, 50, 0.05))
    assert delta_mde(delta, 0.01) > delta_mde(delta, 0.05)  # a stricter level needs a larger effect
    assert delta_mde(paired_difference(condition[:2], baseline[:2]), 0.05) is None  # no interval, no MDE
    with pytest.raises(ValueError, match="power"):
        detectable_effect(0.01, 0.01, 6, 50, 0.05, power=0.3)


def test_equivalence_needs_both_one_sided_tests() -> None:
    rng = np.random.default_rng(6)
    base = rng.uniform(0.3, 0.7, (12, 200))
    tight = paired_difference(base + 0.01 + rng.normal(0, 0.01, base.shape), base)
    assert equivalent(tight, margin=0.05, alpha=0.05) is True
    assert equivalent(tight, margin=0.005, alpha=0.05) is False  # the margin is smaller than the difference
    few = base[:4, :20]
    wide = paired_difference(few + rng.normal(0, 0.3, few.shape), few)
    assert equivalent(wide, margin=0.02, alpha=0.05) is False  # too uncertain to show anything
    # TOST at alpha is the 1 - 2 alpha interval inside the margin.
    low, high = adjusted_interval(tight, 0.90)
    assert equivalent(tight, margin=max(-low, high) + 1e-9, alpha=0.05) is True
    assert equivalent(tight, margin=max(-low, high) - 1e-9, alpha=0.05) is False
    assert equivalent(paired_difference(base[:2], base[:2] + 0.1), 0.05, 0.05) is None
    with pytest.raises(ValueError, match="margin"):
        equivalent(tight, margin=0.0, alpha=0.05)


@pytest.mark.slow  # over 5 s: outside the fast tier
def test_equivalence_false_claims_are_rare_at_the_margin() -> None:
    # A true difference exactly at the margin must be called equivalent in at most alpha of runs.
    rng = np.random.default_rng(9)
    claims = 0
    for _ in range(600):
        condition, baseline, clusters = simulate_null(6, 1, 100, rng, effect=0.05)
        claims += bool(equivalent(paired_difference(condition, baseline, clusters), margin=0.05, alpha=0.05))
    assert claims / 600 <= 0.05 + 0.025
