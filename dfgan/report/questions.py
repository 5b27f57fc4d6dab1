"""The report's answers, in the order it asks them (``questions.md``, the file to read first):

0. Did every U-Net++ seed train? Failed seeds per run (:mod:`dfgan.seg.stability`), as their own outcome.
1. Can this run detect a gain that exists? The oracle R + fresh - R: detected, or a banner that the GAN contrasts
   cannot be read.
2. The pre-declared primary at each declared size, then the gate's secondaries where it opened.
3. What a synthetic image is worth: ρ = Δ_GAN / Δ_oracle per size and GAN, with Fieller's interval.

Every non-significant contrast is worded by :func:`verdict`: "not detected (this design detects >= MDE with 80%
power)" unless both one-sided tests show it equivalent within ``report.equivalence_margin``; never "no effect".
"""

from __future__ import annotations

from typing import Any, Sequence

import pandas as pd

from dfgan.core.paths import run_label
from dfgan.core.settings import ReportSettings
from dfgan.report.contrasts import (
    EXPLORATORY, GATE, ORACLE, PRIMARY, Contrast, Deltas, RunKey, contrast_clusters, declared_sizes,
    gan_variants, primary_condition, run_frames,
)
from dfgan.report.intervals.ratio import describe, synthetic_worth
from dfgan.seg.stability import SeedOutcome, failed_seeds
from dfgan.seg.training_sets import AUG_TITLES, REAL, REAL_FRESH, condition_title, variant_title

ROLE_WORDS = {ORACLE: "oracle", PRIMARY: "primary", GATE: "gate", EXPLORATORY: "expl."}


# ---------------------------------------------------------------------------------------------------------------------
# Verdicts
# ---------------------------------------------------------------------------------------------------------------------


def verdict(delta: dict[str, Any], margin: float, power: float) -> str:
    """One contrast in words, claiming no more than its interval carries."""
    if not delta["interval"]:
        return f"no interval ({delta['reason']})"
    if not delta["tested"]:
        return "not tested: the gate at this size is closed (exploratory only)"
    if delta["significant"]:
        return "detected" if delta["family"] != EXPLORATORY else "raw interval excludes 0 (exploratory)"
    if delta["equivalent"]:
        return f"equivalent within ±{margin:g}"
    return f"not detected (this design detects ≥ {delta['mde']:.3f} with {power:.0%} power)"


def interval_text(delta: dict[str, Any]) -> str:
    """``+0.052 [+0.011, +0.090]``: the mean with the interval of its family (raw where it was not tested)."""
    if not delta["interval"]:
        return f"{delta['mean']:+.3f}"
    low, high = ((delta["adjusted_low"], delta["adjusted_high"]) if delta["tested"]
                 else (delta["ci_low"], delta["ci_high"]))
    return f"{delta['mean']:+.3f} [{low:+.3f}, {high:+.3f}]"


# ---------------------------------------------------------------------------------------------------------------------
# Failed seeds
# ---------------------------------------------------------------------------------------------------------------------


def seed_outcomes(metrics: dict[str, Any], frame: pd.DataFrame) -> list[SeedOutcome]:
    """Each seed's kept round, test Dice and empty share, from its run's metrics JSON and per-image CSV."""
    empty = frame.groupby("seed")["empty_prediction"].mean()
    return [
        SeedOutcome(best_round=int(best), rounds=int(metrics["rounds"]), test_dice=float(dice),
                    empty_fraction=float(empty.get(seed, 0.0)))
        for seed, best, dice in zip(metrics["seeds"], metrics["best_round_per_seed"], metrics["dice_per_seed"])
    ]


def failed_by_run(
    results: dict[RunKey, dict], frames: dict[RunKey, pd.DataFrame], report: ReportSettings
) -> dict[RunKey, list[int]]:
    """The failed seeds of every trained run (:func:`dfgan.seg.stability.failed_seeds`)."""
    failed = {}
    for key, metrics in results.items():
        flags = failed_seeds(seed_outcomes(metrics, frames[key]), report.failed_empty_share, report.failed_dice)
        failed[key] = [int(seed) for seed, bad in zip(metrics["seeds"], flags) if bad]
    return failed


# ---------------------------------------------------------------------------------------------------------------------
# What a synthetic image is worth
# ---------------------------------------------------------------------------------------------------------------------


def worth_rows(
    per_image: dict[RunKey, pd.DataFrame], results: dict[RunKey, dict], sizes: Sequence[int],
    conditions: Sequence[str], report: ReportSettings,
) -> list[dict[str, Any]]:
    """ρ per size and GAN variant (the primary's augmentation), where the oracle and the GAN were both trained."""
    _, aug = primary_condition(report.primary)
    rows = []
    for size in sizes:
        oracle_key = (int(size), REAL_FRESH, aug)
        if oracle_key not in per_image:
            continue
        for variant in gan_variants(conditions):
            if (int(size), variant, aug) not in per_image:
                continue
            gan, real = run_frames(Contrast(int(size), variant, REAL, aug), per_image)
            oracle, _ = run_frames(Contrast(int(size), REAL_FRESH, REAL, aug), per_image)
            clusters = contrast_clusters(Contrast(int(size), variant, REAL, aug), results)
            worth = synthetic_worth(gan.to_numpy(), oracle.to_numpy(), real.to_numpy(), clusters, report.level,
                                    report.min_units)
            rows.append({"size": int(size), "variant": variant, "aug": aug, **worth})
    return rows


# ---------------------------------------------------------------------------------------------------------------------
# The summary's view and the Markdown
# ---------------------------------------------------------------------------------------------------------------------


def oracle_detected(deltas: Deltas) -> bool | None:
    """Whether the oracle gain was detected at some declared size (None: no oracle contrast was computed)."""
    oracle = [d for d in deltas.values() if d["family"] == ORACLE]
    return None if not oracle else any(d["significant"] for d in oracle)


def banner(deltas: Deltas, skipped: dict[RunKey, str]) -> str | None:
    """The warning every report file opens with when the run cannot read its GAN contrasts."""
    detected = oracle_detected(deltas)
    if detected is None:
        why = "not trained" if not any(k[1] == REAL_FRESH for k in skipped) else "skipped (too few fresh positives)"
        return (f"> **No positive control**: the oracle R + fresh was {why} at the declared sizes, so nothing shows "
                "that this run could detect a gain that exists; read every \"not detected\" with that in mind.")
    if not detected:
        oracle = [d for d in deltas.values() if d["family"] == ORACLE]
        if all(d["equivalent"] for d in oracle):
            # More replicates would not help: the oracle gain itself is shown to be small.
            return ("> **Fresh real images added no detectable gain here, and less than the equivalence margin** "
                    "(R + fresh − R is equivalent to 0 at every declared size): what a perfect GAN could add is shown "
                    "to be below the margin, so a GAN contrast here can show synthetic images costing Dice but not a "
                    "gain above the margin; such a gain needs another size, augmentation arm or data.")
        return ("> **This run could not detect its own oracle gain** (R + fresh − R: as many fresh real images as "
                "a GAN adds): its GAN contrasts cannot be read. More U-Net++ seeds, GAN seeds or test images "
                "are needed (questions.md gives each contrast's MDE).")
    return None


def failed_summary(failed: dict[RunKey, list[int]], results: dict[RunKey, dict]) -> dict[str, Any]:
    """Failed seeds per run and overall, for summary.json."""
    runs = {f"{size}/{run_label(condition, aug)}": {"failed": len(seeds), "seeds": len(results[(size, condition,
            aug)]["seeds"]), "which": seeds} for (size, condition, aug), seeds in sorted(failed.items())}
    total = sum(run["seeds"] for run in runs.values())
    return {"runs": runs, "share": sum(run["failed"] for run in runs.values()) / total if total else None}


def questions_markdown(
    deltas: Deltas, worth: list[dict[str, Any]], failed: dict[RunKey, list[int]], results: dict[RunKey, dict],
    skipped: dict[RunKey, str], sizes: Sequence[int], report: ReportSettings, weights: dict[str, float],
) -> str:
    """``questions.md``: the answers in the order the report asks them."""
    variant, aug = primary_condition(report.primary)
    declared = declared_sizes(report, sizes)
    margin, power = report.equivalence_margin, report.power
    primary_title = f"R + S ({variant_title(variant, weights)}) − R, classic augmentation: {AUG_TITLES[aug]}"
    lines = [f"# The questions of this run, in order — primary: {primary_title}; sizes {', '.join(map(str, declared))}",
             ""]
    warning = banner(deltas, skipped)
    if warning:
        lines += [warning, ""]
    lines += [
        f"Each answer reads its interval at the level the question is asked at ({report.level:.0%} overall; "
        "docs/statistics.md, \"The order of questions\"). Not significant reads \"not detected (this design detects "
        f"≥ MDE with {power:.0%} power)\" unless two one-sided tests show the difference within "
        f"±{margin:g} Dice (\"equivalent\").",
        "",
        "## 0. Did every U-Net++ seed train?",
        "",
        f"A seed failed when it predicts nothing on more than {report.failed_empty_share:.0%} of the test images, or "
        f"kept its first round and scored a test Dice below {report.failed_dice:g} (dfgan/seg/stability.py).",
        "",
    ]
    total = sum(len(r["seeds"]) for r in results.values())
    bad = {key: seeds for key, seeds in failed.items() if seeds}
    lines.append(f"Failed seeds: {sum(len(s) for s in bad.values())} of {total} seed-runs"
                 + (":" if bad else "."))
    for (size, condition, run_aug), seeds in sorted(bad.items()):
        lines.append(f"- {size}, {condition_title(condition, weights)}, classic aug. {AUG_TITLES[run_aug]}: seeds "
                     f"{', '.join(map(str, seeds))} of {len(results[(size, condition, run_aug)]['seeds'])}")
    for (size, condition, run_aug), reason in sorted(skipped.items()):
        lines.append(f"- {size}, {condition_title(condition, weights)}, classic aug. {AUG_TITLES[run_aug]}: "
                     f"skipped: {reason}")

    def section(title: str, family: str, explain: str) -> None:
        lines.extend(["", f"## {title}", "", explain, "", "| Size | Contrast | Δ [interval] | MDE | Answer |",
                      "|---|---|---|---|---|"])
        rows = [(c, d) for c, d in deltas.items() if d["family"] == family]
        for contrast, delta in rows:
            mde = "—" if delta["mde"] is None else f"{delta['mde']:.3f}"
            text = interval_text(delta)
            text = f"**{text}**" if delta["significant"] else text
            lines.append(f"| {contrast.size} | {condition_title(contrast.condition, weights)} − "
                         f"{condition_title(contrast.baseline, weights)} | {text} | {mde} "
                         f"| {verdict(delta, margin, power)} |")
        if not rows:
            lines.append("| — | none computed | — | — | — |")

    section("1. Can this run detect a gain that exists? (the oracle)", ORACLE,
            "R + fresh: R plus as many fresh real training positives as a GAN adds (the next rows of the training "
            "order, never a validation or test image): what a perfect GAN could give. Holm-adjusted over the "
            "declared sizes.")
    section("2. The pre-declared question", PRIMARY,
            "The primary contrast at each declared size; each size starts with its share of alpha (the MDE is at "
            "that level).")
    trained = {key[1] for key in results}
    asked = [condition_title(b, weights) + ("" if b in trained else " (not trained in this run: not asked)")
             for b in report.gate]
    section("3. The gate: asked only where the primary is significant, in this order", GATE,
            f"R + S ({variant_title(variant, weights)}) against {', then '.join(asked) or 'nothing (report.gate)'}. "
            "A significant primary passes its alpha to its first secondary, and so on; a closed gate tests nothing.")
    lines += ["", "## 4. What a synthetic image is worth: ρ = Δ_GAN / Δ_oracle", "",
              "ρ = 1: a synthetic image is worth a fresh real one; 0: nothing. Fieller's "
              f"{report.level:.0%} interval over GAN seeds (unadjusted: a description, not a test); an unbounded one "
              "means the oracle gain is too uncertain to scale by.", "",
              "| Size | GAN | Δ_GAN | Δ_oracle | ρ [interval] |", "|---|---|---|---|---|"]
    for row in worth:
        lines.append(f"| {row['size']} | {variant_title(row['variant'], weights)} | {row['gan_gain']:+.3f} "
                     f"| {row['oracle_gain']:+.3f} | {describe(row)} |")
    if not worth:
        lines.append("| — | no oracle run to compare with | — | — | — |")
    lines += ["", "Everything else (tables 1 and 2, controls.md) is exploratory: raw intervals, never bold."]
    return "\n".join(lines) + "\n"


def headline(deltas: Deltas, worth: list[dict[str, Any]], failed: dict[RunKey, list[int]],
             results: dict[RunKey, dict], report: ReportSettings, weights: dict[str, float]) -> dict[str, Any]:
    """What summary.json says of the questions: the primary (variant, aug, λ_FID, sizes), the oracle's detection,
    ρ per size and GAN, and the failed seeds."""
    variant, aug = primary_condition(report.primary)
    return {
        "primary": {"name": report.primary, "variant": variant, "aug": aug, "lambda_fid": weights.get(variant),
                    "sizes": declared_sizes(report, sorted({k[0] for k in results}))},
        "oracle_detected": oracle_detected(deltas),
        "synthetic_worth": {f"{row['size']}/{row['variant']}-{row['aug']}": {
            key: (None if row[key] is None else round(float(row[key]), 6)) if key not in ("kind",) else row[key]
            for key in ("ratio", "low", "high", "kind", "gan_gain", "oracle_gain")} for row in worth},
        "failed_seeds": failed_summary(failed, results),
    }

