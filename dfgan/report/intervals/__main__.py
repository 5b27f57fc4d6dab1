"""``python -m dfgan.report.intervals``: the simulated error rates of the report's statistics (about a minute).

1. Paired-difference intervals: false exclusions of 0 under the null and coverage of a known effect, per design
   (GAN seeds x U-Net++ seeds per GAN) and variance scenario, Cochran-Cox (the report's) against Welch and against
   the naive analysis that takes each U-Net++ seed as a unit.
2. The gated order of questions (the evidence design: 2 sizes, 6 GAN seeds x 1 U-Net++ seed, 100 test images):
   family-wise error under the global null and under partial nulls, and how often a real gain opens the gate.
3. ρ = Δ_GAN / Δ_oracle: coverage of Fieller's set and the share of bounded sets.
4. The MDE: the simulated detection rate of a true difference equal to the design's MDE (80% by construction).
"""

from __future__ import annotations

from dfgan.report.intervals.paired import COCHRAN_COX, WELCH
from dfgan.report.intervals.simulate import (
    DESIGNS, SCENARIOS, calibration_rates, detection_rate, expected_mde, familywise_error, gate_rejections,
    ratio_coverage,
)

N_SIMS = 2000
# Null and partial-null configurations of the gate: true differences to R.
GATE_CASES = {
    "global null": {},
    "DF-GAN helps, as much as paste and Pix2Pix": {"dfgan": 0.08, "paste": 0.08, "pix2pix": 0.08},
    "DF-GAN helps, more than paste, as much as Pix2Pix": {"dfgan": 0.08, "pix2pix": 0.08},
    "both GANs help, paste does not": {"dfgan": 0.08, "pix2pix": 0.08, "paste": 0.0},
}
RATIO_CASES = ((0.5, 0.08), (1.0, 0.08), (0.0, 0.08), (0.5, 0.15))


def _format(rate: float | None) -> str:
    return "no interval" if rate is None else f"{rate:.3f}"


def print_interval_rates() -> None:
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
    print("CC: Cochran-Cox critical value (the report's); W: Welch-Satterthwaite df. naive: each U-Net++ seed taken "
          "as a unit, ignoring the GAN it shares. 1000 simulations each, 95% intervals.")


def print_gate_rates() -> None:
    print(f"\nThe gate (2 sizes, 6 GAN seeds x 1 U-Net++ seed, 100 test images, alpha 0.05, {N_SIMS} runs each):")
    for name, effects in GATE_CASES.items():
        print(f"  {name:<52} family-wise error {familywise_error(N_SIMS, 2, effects):.3f}")
    rejected = gate_rejections(N_SIMS, 2, {"dfgan": 0.15, "pix2pix": 0.15})
    print(f"  a gain of 0.15 at both sizes: primary detected at size 1 in {rejected[:, 0].mean():.1%} of runs, "
          f"R + S - R + paste (gated) in {rejected[:, 2].mean():.1%}")


def print_ratio_rates() -> None:
    print(f"\nρ = Δ_GAN / Δ_oracle, Fieller's 95% set (6 GAN seeds x 1, 100 test images, {N_SIMS} runs each):")
    for ratio, oracle in RATIO_CASES:
        rates = ratio_coverage(ratio, oracle, n_sims=N_SIMS)
        print(f"  ρ {ratio:.1f}, oracle gain {oracle:.2f}: coverage {rates['coverage']:.3f}, "
              f"bounded {rates['bounded']:.1%}")


def print_mde_rates() -> None:
    print(f"\nThe MDE (80% power) against simulation ({N_SIMS} runs each, 100 test images):")
    for n_gans, per_gan, alpha in ((6, 1, 0.05), (6, 1, 0.025), (12, 1, 0.05), (3, 2, 0.05)):
        mde = expected_mde(n_gans, per_gan, 100, alpha)
        rate = detection_rate(mde, n_gans, per_gan, 100, alpha, n_sims=N_SIMS)
        print(f"  {n_gans} GANs x {per_gan}, alpha {alpha}: MDE {mde:.3f}, detected in {rate:.1%}")


def main() -> None:
    print_interval_rates()
    print_gate_rates()
    print_ratio_rates()
    print_mde_rates()


if __name__ == "__main__":
    main()
