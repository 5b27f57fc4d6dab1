"""The gated order of questions: the graphical procedure, the report's gate graph, its family-wise error under the
evidence design (simulated), and ρ = Δ_GAN / Δ_oracle with Fieller's set."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dfgan.report.intervals.multiplicity import gate_graph, graphical, holm
from dfgan.report.intervals.paired import paired_difference
from dfgan.report.intervals.ratio import (
    BOUNDED, TWO_RAYS, WHOLE_LINE, contains, describe, fieller_bounds, synthetic_worth,
)
from dfgan.report.intervals.simulate import (
    familywise_error, gate_p_values, gate_rejections, ratio_coverage, simulate_runs, true_nulls, unit_means,
)

# --- the graphical procedure ---------------------------------------------------------------------------------------


def test_holm_is_the_complete_graph() -> None:
    rng = np.random.default_rng(0)
    for _ in range(300):
        m = int(rng.integers(1, 7))
        p = list(rng.uniform(0, 0.08, m))
        transitions = [[0.0 if i == j else 1.0 / (m - 1) for j in range(m)] for i in range(m)]
        for ours, theirs in zip(graphical(p, [1.0 / m] * m, transitions), holm(p)):
            assert ours["significant"] == theirs["significant"]
            assert ours["p_adjusted"] == pytest.approx(theirs["p_adjusted"])
            assert ours["step_level"] == pytest.approx(theirs["step_level"])


def test_gate_graph_of_two_sizes() -> None:
    weights, transitions = gate_graph([2, 2])
    # Order: P0, P1, S0a, S0b, S1a, S1b.
    assert weights == [0.5, 0.5, 0, 0, 0, 0]
    expected = np.zeros((6, 6))
    expected[0, 2] = expected[2, 3] = expected[3, 1] = 1.0  # P0 -> S0a -> S0b -> P1
    expected[1, 4] = expected[4, 5] = expected[5, 0] = 1.0  # P1 -> S1a -> S1b -> P0
    assert np.array_equal(np.array(transitions), expected)
    # One size: a fixed sequence at full alpha; no chain: Holm over the primaries.
    assert gate_graph([2]) == ([1.0, 0.0, 0.0], [[0, 1.0, 0], [0, 0, 1.0], [0, 0, 0]])
    assert gate_graph([0, 0, 0])[1] == [[0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]]
    assert gate_graph([]) == ([], [])


def test_the_gate_tests_secondaries_only_behind_a_significant_primary() -> None:
    weights, transitions = gate_graph([2, 2])
    # P0 significant, its first secondary too, the second not; P1 not significant: its secondaries are never tested
    # however small their p (they hold no alpha).
    decisions = graphical([0.001, 0.3, 0.01, 0.2, 1e-6, 1e-6], weights, transitions)
    assert [d["significant"] for d in decisions] == [True, False, True, False, False, False]
    assert [d["local_alpha"] for d in decisions] == pytest.approx([0.025, 0.025, 0.025, 0.025, 0.0, 0.0])
    assert decisions[4]["step_level"] is None
    # A whole chain rejected: its alpha recycles to the other primary, which is then tested at the full 0.05.
    decisions = graphical([0.001, 0.04, 0.01, 0.02, 0.5, 0.5], weights, transitions)
    assert [d["significant"] for d in decisions] == [True, True, True, True, False, False]
    assert decisions[1]["local_alpha"] == pytest.approx(0.05)
    assert decisions[5]["local_alpha"] == 0.0  # S1b is behind S1a, which was not rejected
    # Adjusted p-values agree with the decisions.
    assert all((d["p_adjusted"] < 0.05) == d["significant"] for d in decisions)


def test_graphical_rejects_bad_graphs() -> None:
    with pytest.raises(ValueError, match="sum to at most 1"):
        graphical([0.01, 0.02], [0.7, 0.7], [[0, 1], [1, 0]])
    with pytest.raises(ValueError, match="rows summing"):
        graphical([0.01, 0.02], [0.5, 0.5], [[0, 1.5], [1, 0]])
    with pytest.raises(ValueError, match="2 x 2"):
        graphical([0.01, 0.02], [0.5, 0.5], [[0, 1]])
    with pytest.raises(ValueError, match="p-value 1"):
        graphical([0.01, 2.0], [0.5, 0.5], [[0, 1], [1, 0]])
    with pytest.raises(ValueError, match="non-negative integers"):
        gate_graph([1, -1])


# --- the gate under the evidence design -------------------------------------------------------------------------------

N_SIMS = 1500
TOLERANCE = 1.96 * math.sqrt(0.05 * 0.95 / N_SIMS)  # Monte Carlo error of a 5% rate


@pytest.mark.parametrize("effects", [
    {},  # the global null
    {"dfgan": 0.1, "paste": 0.1, "pix2pix": 0.1},  # every primary true, every secondary null
    {"dfgan": 0.1, "pix2pix": 0.1},  # secondary 2 null behind true hypotheses
], ids=["global null", "primaries true, secondaries null", "only DF-GAN vs Pix2Pix null"])
def test_the_gate_controls_the_familywise_error(effects: dict[str, float]) -> None:
    rate = familywise_error(N_SIMS, 2, effects, seed=1)
    print(f"gate, evidence design, {effects or 'global null'}: family-wise error {rate:.3f}")
    assert rate <= 0.05 + TOLERANCE


def test_without_adjustment_the_same_design_errs_more_often() -> None:
    # The six raw tests of the global null at 0.05 each: the gate is what keeps the error at 5%.
    raw = gate_p_values(N_SIMS, 2, {}, seed=1) < 0.05
    print(f"six raw tests at 0.05 under the global null: family-wise error {raw.any(axis=1).mean():.3f}")
    assert raw.any(axis=1).mean() > 0.05 + 3 * TOLERANCE


def test_the_gate_opens_for_a_known_effect() -> None:
    rejected = gate_rejections(600, 2, {"dfgan": 0.15, "pix2pix": 0.0, "paste": 0.0}, seed=4)
    primary, secondary_paste, secondary_pix2pix = rejected[:, 0], rejected[:, 2], rejected[:, 3]
    print(f"gain 0.15: primary {primary.mean():.2f}, vs paste {secondary_paste.mean():.2f}, "
          f"vs Pix2Pix {secondary_pix2pix.mean():.2f}")
    assert primary.mean() >= 0.8 and secondary_paste.mean() >= 0.6 and secondary_pix2pix.mean() >= 0.5
    assert not (secondary_paste & ~primary).any()  # never behind a closed gate
    assert not (secondary_pix2pix & ~secondary_paste).any()
    assert list(true_nulls(2, {"dfgan": 0.15})) == [False, False, False, False, False, False]
    assert list(true_nulls(2, {})) == [True] * 6


# --- what a synthetic image is worth -----------------------------------------------------------------------------------


def test_fieller_set_hand_checked() -> None:
    # Independent numerator and denominator with equal variance terms: the set solves (a - ρb)^2 = c^2 V (1 + ρ^2).
    rng = np.random.default_rng(0)
    real = rng.uniform(0.2, 0.6, (6, 40))
    gan = real + 0.04 + rng.normal(0, 0.05, real.shape)
    oracle = real + 0.10 + rng.normal(0, 0.05, real.shape)
    worth = synthetic_worth(gan, oracle, real, clusters=list(range(6)))
    a, b = (gan - real).mean(), (oracle - real).mean()
    assert worth["ratio"] == pytest.approx(a / b) and worth["kind"] == BOUNDED
    assert worth["low"] < a / b < worth["high"]
    # Its ends are where the test of a - ρ b = 0 is exactly at the critical value.
    for end in (worth["low"], worth["high"]):
        combo = paired_difference(gan - end * oracle + end * real, real)
        assert abs(combo["mean"]) / combo["se"] == pytest.approx(
            (combo["ci_high"] - combo["mean"]) / combo["se"], rel=0.05)


def test_an_uncertain_oracle_gives_an_unbounded_set() -> None:
    rng = np.random.default_rng(1)
    real = rng.uniform(0.2, 0.6, (6, 40))
    gan = real + 0.04 + rng.normal(0, 0.05, real.shape)
    oracle = real + rng.normal(0, 0.2, real.shape)  # no gain, much noise
    worth = synthetic_worth(gan, oracle, real, clusters=list(range(6)))
    assert worth["kind"] in (TWO_RAYS, WHOLE_LINE)
    assert "too uncertain" in describe(worth)
    few = synthetic_worth(gan[:2], oracle[:2], real[:2], clusters=[0, 1])
    assert few["kind"] is None and few["reason"] and describe(few).endswith("(no interval)")


def test_contains_reads_each_kind() -> None:
    low, high = np.array([0.2, 0.2, np.nan]), np.array([0.8, 0.8, np.nan])
    kind = np.array([0, 1, 2])
    assert list(contains(0.5, low, high, kind)) == [True, False, True]
    assert list(contains(0.9, low, high, kind)) == [False, True, True]


@pytest.mark.parametrize(("ratio", "oracle"), [(0.5, 0.08), (1.0, 0.08), (0.0, 0.08), (0.5, 0.15)])
def test_fieller_sets_are_calibrated(ratio: float, oracle: float) -> None:
    rates = ratio_coverage(ratio, oracle, n_sims=N_SIMS, seed=7)
    print(f"ρ {ratio}, oracle gain {oracle}: coverage {rates['coverage']:.3f}, bounded {rates['bounded']:.2f}")
    assert rates["coverage"] >= 0.95 - TOLERANCE - 0.01
    assert rates["bounded"] > 0.5  # the oracle gain is large enough here to bound most sets


def test_batched_fieller_matches_synthetic_worth() -> None:
    runs, clusters = simulate_runs(20, {"gan": 0.04, "fresh": 0.1}, ["gan"], 6, 1, 30, np.random.default_rng(5))
    gan, fresh = unit_means(runs["gan"] - runs["real"], 6, 1), unit_means(runs["fresh"] - runs["real"], 6, 1)
    ratio, low, high, kind = fieller_bounds(gan, fresh, 0.95)
    for k in range(20):
        worth = synthetic_worth(runs["gan"][k], runs["fresh"][k], runs["real"][k], clusters)
        assert worth["ratio"] == pytest.approx(ratio[k])
        if kind[k] == 0:
            assert (worth["low"], worth["high"]) == pytest.approx((low[k], high[k]))
