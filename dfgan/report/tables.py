"""The report's tables: the rows of Table 1, Table 2, the controls and the convergence table (also written as JSON),
and their Markdown.

A Δ cell is a paired difference from :mod:`dfgan.report.contrasts`: its mean and interval (adjusted where it is one of
the report's questions, raw where it is exploratory), its role, its MDE, **bold** only when a question's answer is
significant, ``(no interval)`` with too few replicates.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from dfgan.core.settings import AUGS
from dfgan.report import paper_results
from dfgan.report.contrasts import (
    EXPLORATORY, GATE, ORACLE, PRIMARY, Deltas, RunKey, all_conditions, gan_variants, lookup, primary_condition,
)
from dfgan.report.paper_results import PAPER_LABEL, PaperDice
from dfgan.report.questions import interval_text
from dfgan.seg.training_sets import (
    AUG_TITLES, FLIPPED_SUFFIX, REAL, REAL_FLIPPED, REAL_FRESH, REAL_PASTED, REAL_PASTED2X, REAL_REPEATED,
    condition_title, variant_title,
)

TABLE2_VARIANT = "dfgan"
NOT_RUN = "not run"
AUG_PHRASES = {"none": "without classic augmentation", "classic": "with classic augmentation"}


# ---------------------------------------------------------------------------------------------------------------------
# The rows (also written as table*.json)
# ---------------------------------------------------------------------------------------------------------------------


def dice_of(results: dict[RunKey, dict], size: int, condition: str, aug: str) -> dict[str, float] | None:
    run = results.get((size, condition, aug))
    return None if run is None else {"mean": float(run["dice_mean"]), "sem": float(run["dice_sem"])}


def paper_dice(value: PaperDice) -> dict[str, float]:
    return {"mean": value.mean, "sem": value.sem}


def table1(
    results: dict[RunKey, dict], sizes: Sequence[int], conditions: Sequence[str], deltas: Deltas
) -> list[dict[str, Any]]:
    """Rows (size, aug): R, the R x2 control and R + S of every trained variant (None = not run), each with its
    paired difference to R (adjusted in its family); DF-GAN - Pix2Pix; and the paper's R and R+S where it has them."""
    rows = []
    # Pix2Pix and DF-GAN always have their columns (marked "not run" when not trained), then any other variant.
    shown = (REAL_REPEATED, REAL_FRESH,
             *dict.fromkeys(["pix2pix", "dfgan", *gan_variants(all_conditions(conditions))]))
    for size in sizes:
        for aug in AUGS:
            paper = paper_results.paper_table1(aug, size)
            rows.append(
                {
                    "size": int(size),
                    "aug": aug,
                    "classic_aug": AUG_TITLES[aug],
                    "real": dice_of(results, size, REAL, aug),
                    **{condition: dice_of(results, size, condition, aug) for condition in shown},
                    "delta_vs_real": {c: lookup(deltas, size, c, REAL, aug) for c in shown},
                    "dfgan_minus_pix2pix": lookup(deltas, size, "dfgan", "pix2pix", aug),
                    "paper": None if paper is None else {"real": paper_dice(paper[0]), "dfgan": paper_dice(paper[1])},
                }
            )
    return rows


def table2(results: dict[RunKey, dict], sizes: Sequence[int], deltas: Deltas) -> list[dict[str, Any]]:
    """Rows (size, aug): R, R+S, R+2S for DF-GAN (None = not run), with the paired differences to R."""
    synthetic, synthetic2x = TABLE2_VARIANT, f"{TABLE2_VARIANT}{FLIPPED_SUFFIX}"
    return [
        {
            "size": int(size),
            "aug": aug,
            "classic_aug": AUG_TITLES[aug],
            "real": dice_of(results, size, REAL, aug),
            "synthetic": dice_of(results, size, synthetic, aug),
            "synthetic2x": dice_of(results, size, synthetic2x, aug),
            "delta_vs_real": {
                "synthetic": lookup(deltas, size, synthetic, REAL, aug),
                "synthetic2x": lookup(deltas, size, synthetic2x, REAL, aug),
            },
        }
        for size in sizes
        for aug in AUGS
    ]


CONTROL_PAIRS = ((REAL_FLIPPED, ""), (REAL_PASTED, ""), (REAL_PASTED2X, FLIPPED_SUFFIX))


def controls_table(
    results: dict[RunKey, dict], sizes: Sequence[int], conditions: Sequence[str], deltas: Deltas
) -> list[dict[str, Any]]:
    """Rows (size, aug): each GAN-free control with its difference to R, and each GAN condition against the control
    that matches it (R + S vs R + flip and R + paste, R + 2S vs R + paste 2x)."""
    trained = all_conditions(conditions)
    rows = []
    for size in sizes:
        for aug in AUGS:
            controls = {
                control: {
                    "dice": dice_of(results, size, control, aug),
                    "delta_vs_real": lookup(deltas, size, control, REAL, aug),
                    "gan_minus_control": {
                        f"{variant}{suffix}": lookup(deltas, size, f"{variant}{suffix}", control, aug)
                        for variant in gan_variants(trained)
                        if f"{variant}{suffix}" in trained
                    },
                }
                for control, suffix in CONTROL_PAIRS
                if control in trained
            }
            rows.append({"size": int(size), "aug": aug, "classic_aug": AUG_TITLES[aug], "controls": controls})
    return rows


def convergence(
    results: dict[RunKey, dict], sizes: Sequence[int], conditions: Sequence[str], failed: dict[RunKey, list[int]]
) -> list[dict[str, Any]]:
    """Per size, condition and aug: the failed seeds (:mod:`dfgan.seg.stability`), the share of seeds whose kept
    round was the schedule's last (still improving when the budget ran out), the steps they ran, and the share of
    test images with an empty prediction. Runs that were skipped are left out."""
    rows = []
    for size in sizes:
        for condition in all_conditions(conditions):
            for aug in AUGS:
                run = results.get((int(size), condition, aug))
                if run is None:
                    continue
                best, rounds = run.get("best_round_per_seed") or [], run.get("rounds")
                share = run.get("best_round_last_share")
                if share is None and best and rounds:  # metrics written before the share was recorded
                    share = float(np.mean([b == rounds for b in best]))
                steps = run.get("optimizer_steps_per_seed") or [run.get("optimizer_steps")]
                rows.append({
                    "size": int(size), "condition": condition, "aug": aug, "rounds": rounds,
                    "best_round_last_share": share, "best_round_per_seed": best,
                    "steps_min": min(s for s in steps if s is not None) if any(s is not None for s in steps) else None,
                    "steps_max": max(s for s in steps if s is not None) if any(s is not None for s in steps) else None,
                    "empty_fraction": run.get("empty_fraction"),
                    "failed_seeds": failed.get((int(size), condition, aug), []), "seeds": len(run["seeds"]),
                })
    return rows


def table2_paper_row() -> dict[str, Any]:
    real, synthetic, synthetic2x = paper_results.TABLE2
    return {
        "size": paper_results.TABLE2_SIZE,
        "aug": paper_results.TABLE2_AUG,
        "classic_aug": AUG_TITLES[paper_results.TABLE2_AUG],
        "real": paper_dice(real),
        "synthetic": paper_dice(synthetic),
        "synthetic2x": paper_dice(synthetic2x),
        "source": PAPER_LABEL,
    }


# ---------------------------------------------------------------------------------------------------------------------
# Markdown
# ---------------------------------------------------------------------------------------------------------------------


def fmt(value: dict[str, float] | None) -> str:
    return NOT_RUN if value is None else f"{value['mean']:.3f} ± {value['sem']:.3f}"


ROLE_WORDS = {ORACLE: "oracle", PRIMARY: "primary", GATE: "gate", EXPLORATORY: "expl."}


def fmt_delta(delta: dict[str, Any] | None) -> str:
    """``**+0.052 [+0.011, +0.090]** primary, MDE 0.061``: the mean and its interval (adjusted for a question, raw
    for an exploratory contrast), in bold only when a question's answer is significant; the contrast's role; its
    MDE, or ``≡`` when it is shown equivalent within the margin. ``+0.052 (no interval)`` with too few replicates;
    ``—`` when not run."""
    if delta is None:
        return "—"
    if not delta["interval"]:
        return f"{delta['mean']:+.3f} (no interval)"
    text = interval_text(delta)
    role = ROLE_WORDS[delta["family"]] if delta["tested"] else "gate closed, expl."
    detail = "≡ within margin" if delta["equivalent"] else f"MDE {delta['mde']:.3f}"
    return f"{f'**{text}**' if delta['significant'] else text} {role}, {detail}"


def delta_note(deltas: Deltas, level: float, min_units: int, primary: str, weights: dict[str, float]) -> str:
    """What a Δ cell means, and why some have no interval."""
    variant, aug = primary_condition(primary)
    note = (
        f"Δ: paired difference on the same seeds and test images, mean [{level:.0%} interval]; the unit of "
        "replication is the GAN seed wherever GAN images are involved, else the U-Net++ seed; the interval adds the "
        "spread over test images (t with Cochran-Cox's critical value; docs/statistics.md). Roles: *oracle*, "
        f"*primary* (R + S ({variant_title(variant, weights)}) - R {AUG_PHRASES.get(aug, f'with augmentation {aug}')}, "
        "the pre-declared question) and *gate* are the report's questions (questions.md), their intervals adjusted "
        "for the order in which they are asked, **bold** when significant; *expl.* is exploratory: a raw interval, "
        "never bold, that cannot carry a claim. MDE: the smallest true difference this design detects with 80% power "
        "at that contrast's level; a contrast that is not significant was not detected, which is not evidence that "
        "there is no difference unless it is marked ≡ (both one-sided tests show it within the equivalence margin)."
    )
    # The reasons read "<n> GAN seed(s); an interval needs at least <m>": name the replicate counts once.
    missing = sorted({d["reason"].split(";")[0] for d in deltas.values() if not d["interval"] and d["reason"]})
    if missing:
        note += (f" \"(no interval)\": too few replicates for an interval ({', '.join(missing)}; report.min_units is "
                 f"{min_units}): the mean alone, never bold.")
    return note


def table1_markdown(rows: list[dict[str, Any]], note: str, weights: dict[str, float]) -> str:
    """Table 1 in the paper's layout, with the R x2 control, the oracle R + fresh where it ran, and every variant."""
    gan = [c for c in rows[0]["delta_vs_real"] if c not in (REAL_REPEATED, REAL_FRESH)] if rows else []
    oracle = any(row[REAL_FRESH] is not None for row in rows)
    header = (
        "| Size | Classic aug. | R | R ×2 (control) | Δ | "
        + ("R + fresh (oracle) | Δ | " if oracle else "")
        + "".join(f"R + S ({variant_title(v, weights)}) | Δ | " for v in gan)
        + f"DF-GAN − Pix2Pix | {PAPER_LABEL}: R | {PAPER_LABEL}: R + S (DF-GAN) |"
    )
    lines = [
        "# Table 1: segmentation Dice (mean ± standard error over seeds)",
        "",
        "R: the real training images of size N (less the validation images); S: one synthetic image per real lesion "
        "from the GAN trained on them; R ×2: the real images listed twice (no synthetic image); R + fresh: as many "
        "fresh real training images as S adds (the oracle). "
        + note
        + " The paper's columns are its published numbers on SIIM-ACR at 256x256, shown only where the paper has "
        "that training size.",
        "",
        header,
        "|" + "---|" * (header.count("|") - 1),
    ]
    for row in rows:
        paper, delta = row["paper"], row["delta_vs_real"]
        shown = [REAL_REPEATED, *([REAL_FRESH] if oracle else []), *gan]
        lines.append(
            f"| {row['size']} | {row['classic_aug']} | {fmt(row['real'])} | "
            + "".join(f"{fmt(row[c])} | {fmt_delta(delta[c])} | " for c in shown)
            + f"{fmt_delta(row['dfgan_minus_pix2pix'])} "
            f"| {'—' if paper is None else fmt(paper['real'])} | {'—' if paper is None else fmt(paper['dfgan'])} |"
        )
    return "\n".join(lines) + "\n"


def table2_markdown(rows: list[dict[str, Any]], paper_row: dict[str, Any], note: str) -> str:
    lines = [
        "# Table 2: more synthetic data (DF-GAN), Dice mean ± standard error over seeds",
        "",
        "R + 2S adds N more DF-GAN images grown from the horizontally flipped lesions (R itself never sees a flip: "
        "compare R + 2S with R + paste 2x in controls.md). " + note,
        "",
        "| Source | Size | Classic aug. | R | R + S | Δ | R + 2S | Δ |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        delta = row["delta_vs_real"]
        lines.append(
            f"| this run | {row['size']} | {row['classic_aug']} | {fmt(row['real'])} | {fmt(row['synthetic'])} "
            f"| {fmt_delta(delta['synthetic'])} | {fmt(row['synthetic2x'])} | {fmt_delta(delta['synthetic2x'])} |"
        )
    lines.append(
        f"| {paper_row['source']} | {paper_row['size']} | {paper_row['classic_aug']} | {fmt(paper_row['real'])} "
        f"| {fmt(paper_row['synthetic'])} | — | {fmt(paper_row['synthetic2x'])} | — |"
    )
    return "\n".join(lines) + "\n"


def controls_markdown(rows: list[dict[str, Any]], note: str, weights: dict[str, float]) -> str:
    """Do GAN images beat what a user can do without a GAN? One line per (size, aug, control)."""
    lines = [
        "# Controls without a GAN: do GAN images beat the cheap alternatives?",
        "",
        "R + flip: R plus the mirror image of each training image; R + paste: R plus each training lesion's real "
        "pixels pasted at the same place into another training image (its mask the union of both lesions); "
        "R + paste 2x: the flipped lesions pasted too. Each GAN condition is compared with the control that gives "
        "it the same number of images. " + note,
        "",
        "| Size | Classic aug. | Control | Dice | Δ vs R | GAN condition − control |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        for control, entry in row["controls"].items():
            versus = "; ".join(
                f"{condition_title(c, weights)}: {fmt_delta(d)}" for c, d in entry["gan_minus_control"].items()
            ) or "—"
            lines.append(
                f"| {row['size']} | {row['classic_aug']} | {condition_title(control, weights)} | {fmt(entry['dice'])} "
                f"| {fmt_delta(entry['delta_vs_real'])} | {versus} |"
            )
    if not any(row["controls"] for row in rows):
        lines.append("| — | — | none trained (seg.real_conditions) | — | — | — |")
    return "\n".join(lines) + "\n"


def convergence_markdown(rows: list[dict[str, Any]], weights: dict[str, float], failed_rule: str) -> str:
    lines = [
        "# Convergence of the U-Net++ runs",
        "",
        f"Failed: seeds that never learned to segment ({failed_rule}), an outcome of their own: a condition that "
        "trains less stably shows it here instead of in a lower mean. Best round last: share of seeds whose kept "
        "(best validation Dice) round was the schedule's last, i.e. still improving when the budget ran out "
        "(seg.epochs rounds; seg.patience stops a seed early, never before seg.min_rounds). Empty: share of test "
        "images on which the model predicted no lesion at all.",
        "",
        "| Size | Condition | Classic aug. | Failed seeds | Rounds | Best round last | Kept rounds | Steps run | Empty |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        share, empty = row["best_round_last_share"], row["empty_fraction"]
        steps = "—" if row["steps_min"] is None else (
            f"{row['steps_min']}" if row["steps_min"] == row["steps_max"] else f"{row['steps_min']}-{row['steps_max']}")
        lines.append(
            f"| {row['size']} | {condition_title(row['condition'], weights)} | {AUG_TITLES[row['aug']]} "
            f"| {len(row['failed_seeds'])} of {row['seeds']}"
            f"{' (' + ', '.join(map(str, row['failed_seeds'])) + ')' if row['failed_seeds'] else ''} "
            f"| {row['rounds']} | {'—' if share is None else f'{share:.0%}'} "
            f"| {', '.join(str(b) for b in row['best_round_per_seed']) or '—'} | {steps} "
            f"| {'—' if empty is None else f'{empty:.0%}'} |"
        )
    return "\n".join(lines) + "\n"
