"""The report's Markdown tables: Table 1, Table 2, the controls and the convergence table, from the report's rows.

A Δ cell is a paired difference from :mod:`dfgan.report.contrasts`: its mean and Holm-adjusted interval, **bold** when
significant after adjustment, ``(no interval)`` with too few replicates.
"""

from __future__ import annotations

from typing import Any

from dfgan.report.contrasts import Deltas, primary_condition
from dfgan.report.paper_results import PAPER_LABEL
from dfgan.seg.training_sets import AUG_TITLES, REAL_REPEATED, VARIANT_TITLES, condition_title, variant_title

NOT_RUN = "not run"
AUG_PHRASES = {"none": "without classic augmentation", "classic": "with classic augmentation"}


def fmt(value: dict[str, float] | None) -> str:
    return NOT_RUN if value is None else f"{value['mean']:.3f} ± {value['sem']:.3f}"


def fmt_delta(delta: dict[str, Any] | None) -> str:
    """``+0.052 [+0.011, +0.090]``: the mean and its Holm-adjusted interval, in bold when significant after
    adjustment; ``+0.052 (no interval)`` with too few replicates; ``—`` when not run."""
    if delta is None:
        return "—"
    if not delta["interval"]:
        return f"{delta['mean']:+.3f} (no interval)"
    text = f"{delta['mean']:+.3f} [{delta['adjusted_low']:+.3f}, {delta['adjusted_high']:+.3f}]"
    return f"**{text}**" if delta["significant"] else text


def delta_note(deltas: Deltas, level: float, min_units: int, primary: str) -> str:
    """What a Δ cell means, and why some have no interval."""
    variant, aug = primary_condition(primary)
    note = (
        f"Δ: paired difference on the same seeds and test images, mean [{level:.0%} interval, Holm-adjusted within "
        f"its family]; the unit of replication is the GAN seed wherever GAN images are involved, else the U-Net++ "
        f"seed; the interval adds the spread over test images (t with Cochran-Cox's critical value, "
        f"dfgan/intervals.py). **Bold**: significant after adjustment. The pre-declared primary contrast, "
        f"R + S ({VARIANT_TITLES.get(variant, variant)}) - R {AUG_PHRASES.get(aug, f'with augmentation {aug}')}, "
        f"is its own family across sizes."
    )
    missing = sorted({d["reason"] for d in deltas.values() if not d["interval"] and d["reason"]})
    if missing:
        note += f" (no interval): {'; '.join(missing)} (report.min_units {min_units}); never bold."
    return note


def table1_markdown(rows: list[dict[str, Any]], note: str, weights: dict[str, float]) -> str:
    variants = [c for c in rows[0]["delta_vs_real"] if c != REAL_REPEATED] if rows else []
    header = (
        "| Size | Classic aug. | R | R ×2 (control) | Δ | "
        + "".join(f"R + S ({variant_title(v, weights)}) | Δ | " for v in variants)
        + f"DF-GAN − Pix2Pix | {PAPER_LABEL}: R | {PAPER_LABEL}: R + S (DF-GAN) |"
    )
    lines = [
        "# Table 1: segmentation Dice (mean ± standard error over seeds)",
        "",
        "R: the real training images of size N (less the validation images); S: one synthetic image per real lesion "
        "from the GAN trained on them; R ×2: the real images listed twice (no synthetic image). "
        + note
        + " The paper's columns are its published numbers on SIIM-ACR at 256x256, shown only where the paper has "
        "that training size.",
        "",
        header,
        "|" + "---|" * (header.count("|") - 1),
    ]
    for row in rows:
        paper, delta = row["paper"], row["delta_vs_real"]
        lines.append(
            f"| {row['size']} | {row['classic_aug']} | {fmt(row['real'])} "
            f"| {fmt(row[REAL_REPEATED])} | {fmt_delta(delta[REAL_REPEATED])} | "
            + "".join(f"{fmt(row[v])} | {fmt_delta(delta[v])} | " for v in variants)
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


def convergence_markdown(rows: list[dict[str, Any]], weights: dict[str, float]) -> str:
    lines = [
        "# Convergence of the U-Net++ runs",
        "",
        "Best round last: share of seeds whose kept (best validation Dice) round was the schedule's last, i.e. still "
        "improving when the budget ran out (seg.epochs rounds; seg.patience stops a seed early). Empty: share of test "
        "images on which the model predicted no lesion at all.",
        "",
        "| Size | Condition | Classic aug. | Rounds | Best round last | Kept rounds | Steps run | Empty |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        share, empty = row["best_round_last_share"], row["empty_fraction"]
        steps = "—" if row["steps_min"] is None else (
            f"{row['steps_min']}" if row["steps_min"] == row["steps_max"] else f"{row['steps_min']}-{row['steps_max']}")
        lines.append(
            f"| {row['size']} | {condition_title(row['condition'], weights)} | {AUG_TITLES[row['aug']]} "
            f"| {row['rounds']} | {'—' if share is None else f'{share:.0%}'} "
            f"| {', '.join(str(b) for b in row['best_round_per_seed']) or '—'} | {steps} "
            f"| {'—' if empty is None else f'{empty:.0%}'} |"
        )
    return "\n".join(lines) + "\n"
