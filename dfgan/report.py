"""The report: Tables 1 and 2, Figures 3 and 4, and Dice vs training size, from the segmentation results.

Inputs are listed from params (sizes x conditions x augs, see :func:`dfgan.training_sets.conditions_from_params`),
never globbed, so a shrunk ``sizes`` leaves no stale rows and a missing run is an error naming its file. The paper's
numbers (SIIM-ACR, 256x256) are shown beside ours, labelled as the paper's, wherever the paper has that size.

Every comparison with R is paired: per seed, Dice(condition) - Dice(R) over the same test images (the per-image
CSVs of the seg stages), with the standard error over seeds and a two-way bootstrap interval over seeds and test
images (:func:`dfgan.metrics.paired_difference`); a difference whose interval excludes 0 is printed in bold.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from dfgan import paper_results
from dfgan.imaging import outline, save_grid
from dfgan.metrics import paired_difference
from dfgan.paper_results import PAPER_LABEL, PaperDice
from dfgan.prepared import load_prepared
from dfgan.training_sets import FLIPPED_SUFFIX, REAL, REAL_REPEATED, parse_condition, run_label, uses_synthetic
from dfgan.synthetic_data import load_synthetic

AUGS = ("none", "classic")
AUG_TITLES = {"none": "no", "classic": "yes"}  # the paper's "Classic Aug." column
VARIANT_TITLES = {"pix2pix": "Pix2Pix", "dfgan": "DF-GAN"}
TABLE1_VARIANTS = ("pix2pix", "dfgan")
TABLE2_VARIANT = "dfgan"
NOT_RUN = "not run"

RunKey = tuple[int, str, str]  # (size, condition, aug)


# ---------------------------------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------------------------------


def all_conditions(conditions: Sequence[str]) -> list[str]:
    """'real' first, then the other conditions in params order, without duplicates."""
    return list(dict.fromkeys([REAL, *conditions]))


def metrics_file(seg_metrics_dir: str | Path, size: int, condition: str, aug: str) -> Path:
    return Path(seg_metrics_dir) / str(size) / f"{run_label(condition, aug)}.json"


def per_image_file(seg_data_dir: str | Path, size: int, condition: str, aug: str) -> Path:
    return Path(seg_data_dir) / str(size) / run_label(condition, aug) / "per_image.csv"


def expected_files(
    path_of: Callable[[str | Path, int, str, str], Path], root: str | Path, sizes: Sequence[int],
    conditions: Sequence[str], what: str,
) -> dict[RunKey, Path]:
    """The file of every run the params imply (``path_of(root, size, condition, aug)``); names each missing one."""
    expected = {
        (int(size), condition, aug): path_of(root, size, condition, aug)
        for size in sizes
        for condition in all_conditions(conditions)
        for aug in AUGS
    }
    missing = [str(path) for path in expected.values() if not path.is_file()]
    if missing:
        raise FileNotFoundError(f"{what} missing (run the seg stages first): {', '.join(missing)}")
    return expected


def load_per_image_dice(
    seg_data_dir: str | Path, sizes: Sequence[int], conditions: Sequence[str]
) -> dict[RunKey, pd.DataFrame]:
    """Per-image Dice of every expected run as a (seed x test row) table."""
    expected = expected_files(per_image_file, seg_data_dir, sizes, conditions, "per-image Dice")
    return {key: pd.read_csv(path).pivot(index="seed", columns="row", values="dice") for key, path in expected.items()}


def paired_dice(
    per_image: dict[RunKey, pd.DataFrame], key: RunKey, baseline: RunKey, bootstrap: dict[str, int]
) -> dict[str, float | int | bool]:
    """Paired difference of two runs' per-image Dice; they must share their seeds and test images."""
    a, b = per_image[key], per_image[baseline]
    if list(a.index) != list(b.index) or list(a.columns) != list(b.columns):
        raise ValueError(
            f"runs {run_label(key[1], key[2])} and {run_label(baseline[1], baseline[2])} at size {key[0]} do not share "
            f"seeds {list(a.index)} vs {list(b.index)} and test images: rerun them with the same seg.seeds and data"
        )
    return paired_difference(a.to_numpy(), b.to_numpy(), int(bootstrap["samples"]), int(bootstrap["seed"]))


def load_seg_metrics(
    seg_metrics_dir: str | Path, sizes: Sequence[int], conditions: Sequence[str]
) -> dict[RunKey, dict]:
    """Every expected metrics JSON."""
    expected = expected_files(metrics_file, seg_metrics_dir, sizes, conditions, "segmentation metrics")
    return {key: json.loads(path.read_text()) for key, path in expected.items()}


# ---------------------------------------------------------------------------------------------------------------------
# Numbers
# ---------------------------------------------------------------------------------------------------------------------


def dice_of(results: dict[RunKey, dict], size: int, condition: str, aug: str) -> dict[str, float] | None:
    run = results.get((size, condition, aug))
    return None if run is None else {"mean": float(run["dice_mean"]), "sem": float(run["dice_sem"])}


def paper_dice(value: PaperDice) -> dict[str, float]:
    return {"mean": value.mean, "sem": value.sem}


def relative_improvement(real: float, synthetic: float) -> float:
    """(R+S - R) / R; NaN when the real Dice is 0 (no baseline to be relative to)."""
    return (synthetic - real) / real if real > 0 else float("nan")


Deltas = dict[RunKey, dict[str, Any]]  # (size, condition, aug) -> paired difference against R (or a variant)


def paired_deltas(
    per_image: dict[RunKey, pd.DataFrame], sizes: Sequence[int], conditions: Sequence[str], bootstrap: dict[str, int]
) -> tuple[Deltas, Deltas]:
    """Every condition against R, and DF-GAN against Pix2Pix (same copies), at every size and augmentation."""
    versus_real: Deltas = {}
    dfgan_vs_pix2pix: Deltas = {}
    trained = all_conditions(conditions)
    for size in sizes:
        for aug in AUGS:
            for condition in trained[1:]:
                versus_real[(size, condition, aug)] = paired_dice(
                    per_image, (size, condition, aug), (size, REAL, aug), bootstrap
                )
            for suffix in ("", FLIPPED_SUFFIX):
                dfgan, pix2pix = f"dfgan{suffix}", f"pix2pix{suffix}"
                if {dfgan, pix2pix} <= set(trained):
                    dfgan_vs_pix2pix[(size, dfgan, aug)] = paired_dice(
                        per_image, (size, dfgan, aug), (size, pix2pix, aug), bootstrap
                    )
    return versus_real, dfgan_vs_pix2pix


def table1(
    results: dict[RunKey, dict], sizes: Sequence[int], versus_real: Deltas, dfgan_vs_pix2pix: Deltas
) -> list[dict[str, Any]]:
    """Rows (size, aug): R, the R x2 control, R+S Pix2Pix and DF-GAN (None = not run), each with its paired
    difference to R; DF-GAN - Pix2Pix; and the paper's R and R+S where it has them."""
    rows = []
    for size in sizes:
        for aug in AUGS:
            paper = paper_results.paper_table1(aug, size)
            conditions = (REAL_REPEATED, *TABLE1_VARIANTS)
            rows.append(
                {
                    "size": int(size),
                    "aug": aug,
                    "classic_aug": AUG_TITLES[aug],
                    "real": dice_of(results, size, REAL, aug),
                    **{condition: dice_of(results, size, condition, aug) for condition in conditions},
                    "delta_vs_real": {c: versus_real.get((size, c, aug)) for c in conditions},
                    "dfgan_minus_pix2pix": dfgan_vs_pix2pix.get((size, "dfgan", aug)),
                    "paper": None if paper is None else {"real": paper_dice(paper[0]), "dfgan": paper_dice(paper[1])},
                }
            )
    return rows


def table2(results: dict[RunKey, dict], sizes: Sequence[int], versus_real: Deltas) -> list[dict[str, Any]]:
    """Rows (size, aug): R, R+S, R+2S for DF-GAN (None = not run), with the paired differences to R."""
    synthetic, synthetic2x = TABLE2_VARIANT, f"{TABLE2_VARIANT}2x"
    return [
        {
            "size": int(size),
            "aug": aug,
            "classic_aug": AUG_TITLES[aug],
            "real": dice_of(results, size, REAL, aug),
            "synthetic": dice_of(results, size, synthetic, aug),
            "synthetic2x": dice_of(results, size, synthetic2x, aug),
            "delta_vs_real": {
                "synthetic": versus_real.get((size, synthetic, aug)),
                "synthetic2x": versus_real.get((size, synthetic2x, aug)),
            },
        }
        for size in sizes
        for aug in AUGS
    ]


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


def dice_vs_size(results: dict[RunKey, dict], sizes: Sequence[int], conditions: Sequence[str]) -> pd.DataFrame:
    """Wide form for DVC plots: ``size`` and one mean-Dice column per run label (``real-none``, ...)."""
    columns = {"size": [int(s) for s in sizes]}
    for aug in AUGS:
        for condition in all_conditions(conditions):
            columns[run_label(condition, aug)] = [results[(int(s), condition, aug)]["dice_mean"] for s in sizes]
    return pd.DataFrame(columns)


def improvement(results: dict[RunKey, dict], sizes: Sequence[int], conditions: Sequence[str]) -> pd.DataFrame:
    """Wide form: ``size`` and one column ``<condition>-<aug>`` of (R+S - R) / R per synthetic condition."""
    columns = {"size": [int(s) for s in sizes]}
    for aug in AUGS:
        for condition in all_conditions(conditions)[1:]:
            columns[f"{condition}-{aug}"] = [
                relative_improvement(
                    results[(int(s), REAL, aug)]["dice_mean"], results[(int(s), condition, aug)]["dice_mean"]
                )
                for s in sizes
            ]
    return pd.DataFrame(columns)


def finite_or_none(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def delta_summary(delta: dict[str, Any]) -> dict[str, float]:
    """The numbers of one paired difference that ``dvc metrics diff`` should show."""
    return {key: round(float(delta[key]), 6) for key in ("mean", "sem", "ci_low", "ci_high")}


def summary(
    results: dict[RunKey, dict],
    sizes: Sequence[int],
    conditions: Sequence[str],
    gains: pd.DataFrame,
    versus_real: Deltas,
    dfgan_vs_pix2pix: Deltas,
) -> dict[str, Any]:
    """Headline numbers for ``dvc metrics diff``: Dice at the largest size, mean over sizes, the paired differences
    to R (mean, s.e., 95% interval) at every size, and DF-GAN - Pix2Pix."""
    largest = max(int(s) for s in sizes)
    return {
        "largest_size": largest,
        "dice_at_largest_size": {
            run_label(c, a): results[(largest, c, a)]["dice_mean"] for a in AUGS for c in all_conditions(conditions)
        },
        "mean_dice_over_sizes": {
            run_label(c, a): float(np.mean([results[(int(s), c, a)]["dice_mean"] for s in sizes]))
            for a in AUGS
            for c in all_conditions(conditions)
        },
        "mean_improvement_over_real": {
            column: finite_or_none(float(gains[column].mean())) for column in gains.columns if column != "size"
        },
        "delta_vs_real": {
            str(size): {run_label(c, a): delta_summary(d) for (s, c, a), d in versus_real.items() if s == size}
            for size in sizes
        },
        "dfgan_minus_pix2pix": {
            str(size): {run_label(c, a): delta_summary(d) for (s, c, a), d in dfgan_vs_pix2pix.items() if s == size}
            for size in sizes
        },
        "intervals_excluding_zero": {
            "delta_vs_real": sorted(f"{s}/{run_label(c, a)}" for (s, c, a), d in versus_real.items() if d["excludes_zero"]),
            "dfgan_minus_pix2pix": sorted(
                f"{s}/{run_label(c, a)}" for (s, c, a), d in dfgan_vs_pix2pix.items() if d["excludes_zero"]
            ),
        },
    }


# ---------------------------------------------------------------------------------------------------------------------
# Markdown
# ---------------------------------------------------------------------------------------------------------------------


def fmt(value: dict[str, float] | None) -> str:
    return NOT_RUN if value is None else f"{value['mean']:.3f} ± {value['sem']:.3f}"


def fmt_delta(delta: dict[str, Any] | None) -> str:
    """``+0.052 [+0.011, +0.090]``, in bold when the 95% interval excludes 0; ``—`` when not run."""
    if delta is None:
        return "—"
    text = f"{delta['mean']:+.3f} [{delta['ci_low']:+.3f}, {delta['ci_high']:+.3f}]"
    return f"**{text}**" if delta["excludes_zero"] else text


DELTA_NOTE = (
    "Δ: paired difference to R on the same seeds and test images, mean [95% bootstrap interval over seeds and test "
    "images]; **bold** where the interval excludes 0."
)


def table1_markdown(rows: list[dict[str, Any]]) -> str:
    header = (
        "| Size | Classic aug. | R | R ×2 (control) | Δ | R + S (Pix2Pix) | Δ | R + S (DF-GAN) | Δ "
        f"| DF-GAN − Pix2Pix | {PAPER_LABEL}: R | {PAPER_LABEL}: R + S (DF-GAN) |"
    )
    lines = [
        "# Table 1: segmentation Dice (mean ± standard error over seeds)",
        "",
        "R: the real training images of size N (less the validation images); S: one synthetic image per real lesion "
        "from the GAN trained on them; R ×2: the real images listed twice (no synthetic image). "
        + DELTA_NOTE
        + " The paper's columns are its published numbers on SIIM-ACR at 256x256, shown only where the paper has "
        "that training size.",
        "",
        header,
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        paper, delta = row["paper"], row["delta_vs_real"]
        lines.append(
            f"| {row['size']} | {row['classic_aug']} | {fmt(row['real'])} "
            f"| {fmt(row[REAL_REPEATED])} | {fmt_delta(delta[REAL_REPEATED])} "
            f"| {fmt(row['pix2pix'])} | {fmt_delta(delta['pix2pix'])} "
            f"| {fmt(row['dfgan'])} | {fmt_delta(delta['dfgan'])} | {fmt_delta(row['dfgan_minus_pix2pix'])} "
            f"| {'—' if paper is None else fmt(paper['real'])} | {'—' if paper is None else fmt(paper['dfgan'])} |"
        )
    return "\n".join(lines) + "\n"


def table2_markdown(rows: list[dict[str, Any]], paper_row: dict[str, Any]) -> str:
    lines = [
        "# Table 2: more synthetic data (DF-GAN), Dice mean ± standard error over seeds",
        "",
        "R + 2S adds N more DF-GAN images grown from the horizontally flipped lesions. " + DELTA_NOTE,
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


# ---------------------------------------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------------------------------------


def condition_title(condition: str) -> str:
    if condition == REAL:
        return "R"
    if condition == REAL_REPEATED:
        return "R ×2 (control)"
    parsed = parse_condition(condition)
    name = VARIANT_TITLES.get(parsed.variant, parsed.variant)
    return f"R + {'2S' if parsed.copies == 2 else 'S'} ({name})"


def size_panels() -> tuple[Figure, list[Any]]:
    """A figure with one panel per augmentation setting, sharing the y axis."""
    figure = Figure(figsize=(10, 4), layout="constrained")
    return figure, list(figure.subplots(1, 2, sharey=True))


def finish_size_panel(ax: Any, aug: str, legend_size: int) -> None:
    """Log-scaled training-size axis, the augmentation setting as the title, and the legend."""
    ax.set_xscale("log")
    ax.set_xlabel("real training images (N)")
    ax.set_title(f"classic augmentation: {AUG_TITLES[aug]}")
    ax.legend(fontsize=legend_size)


def plot_improvement(gains: pd.DataFrame, conditions: Sequence[str], path: Path) -> Path:
    """Fig. 4: relative improvement vs training size, one panel per augmentation, the paper's DF-GAN dashed."""
    figure, axes = size_panels()
    for ax, aug in zip(axes, AUGS):
        for condition in all_conditions(conditions)[1:]:
            ax.plot(gains["size"], 100 * gains[f"{condition}-{aug}"], "o-", label=condition_title(condition))
        paper = paper_results.paper_improvement(aug)
        ax.plot(list(paper), [100 * v for v in paper.values()], "k--", label=f"{PAPER_LABEL}: DF-GAN")
        ax.axhline(0.0, color="grey", linewidth=0.8)
        finish_size_panel(ax, aug, legend_size=8)
    axes[0].set_ylabel("relative Dice improvement over R (%)")
    figure.savefig(path, dpi=120)
    return path


def plot_dice_vs_size(results: dict[RunKey, dict], sizes: Sequence[int], conditions: Sequence[str], path: Path) -> Path:
    """Dice ± s.e. vs training size per condition, one panel per augmentation; the paper's R and R+S dashed."""
    figure, axes = size_panels()
    xs = [int(s) for s in sizes]
    for ax, aug in zip(axes, AUGS):
        for condition in all_conditions(conditions):
            runs = [results[(s, condition, aug)] for s in xs]
            ax.errorbar(
                xs, [r["dice_mean"] for r in runs], yerr=[r["dice_sem"] for r in runs], marker="o", capsize=3,
                label=condition_title(condition),
            )
        table = paper_results.TABLE1[aug]
        paper_sizes = sorted(table)
        ax.plot(paper_sizes, [table[s][0].mean for s in paper_sizes], "--", color="grey", label=f"{PAPER_LABEL}: R")
        ax.plot(
            paper_sizes, [table[s][1].mean for s in paper_sizes], "k--", label=f"{PAPER_LABEL}: R + S (DF-GAN)"
        )
        finish_size_panel(ax, aug, legend_size=7)
    axes[0].set_ylabel("test Dice (mean ± s.e. over seeds)")
    figure.savefig(path, dpi=120)
    return path


def sample_variants(conditions: Sequence[str]) -> list[str]:
    """GAN variants named by the conditions (``dfgan2x`` -> ``dfgan``), in order, once each."""
    return list(dict.fromkeys(str(parse_condition(c).variant) for c in conditions if uses_synthetic(c)))


def pick_evenly(values: np.ndarray, count: int) -> np.ndarray:
    if len(values) <= count:
        return values
    return values[np.linspace(0, len(values) - 1, count).round().astype(int)]


def plot_samples(
    synthetic_root: str | Path,
    size: int,
    variants: Sequence[str],
    gan_seed: int,
    prepared_dir: str | Path | None,
    sample_count: int,
    path: Path,
) -> Path:
    """Fig. 3: rows real | Pix2Pix | DF-GAN (GAN seed ``gan_seed``), columns the SAME source lesions, outlined."""
    sets = {variant: load_synthetic(synthetic_root, size, variant, gan_seed).plain for variant in variants}
    prepared = None if prepared_dir is None else load_prepared(prepared_dir)
    if sets:
        common = np.array(sorted(set.intersection(*(set(s.source_rows.tolist()) for s in sets.values()))), np.int64)
    elif prepared is not None:
        common = np.asarray(prepared.train(size).rows)
    else:
        raise ValueError("fig3: no synthetic variant and no prepared data to draw samples from")
    sources = pick_evenly(common, sample_count)
    if len(sources) == 0:
        raise ValueError(f"fig3: the synthetic sets of size {size} share no source lesion")

    rows, labels = [], []
    if prepared is not None:
        rows.append([outline(np.asarray(prepared.images[r]), np.asarray(prepared.masks[r])) for r in sources])
        labels.append("real")
    for variant, part in sets.items():
        position = {int(r): i for i, r in enumerate(part.source_rows)}
        rows.append([outline(part.images[position[int(r)]], part.masks[position[int(r)]]) for r in sources])
        labels.append(VARIANT_TITLES.get(variant, variant))
    # Upscale small tiles so that the row labels stay legible beside them.
    tile = max(rows[0][0].shape[0], 128)
    return save_grid(rows, path, row_labels=labels, tile=tile)


# ---------------------------------------------------------------------------------------------------------------------
# Entry
# ---------------------------------------------------------------------------------------------------------------------


# Every file build_report writes and what a reader finds in it (printed after a run: a newcomer knows where to look).
REPORT_FILES: dict[str, str] = {
    "table1.md": "Table 1: Dice of R, R x2, R + S (Pix2Pix, DF-GAN) per size, paired differences, the paper's",
    "table2.md": "Table 2: Dice of R, R + S and R + 2S (DF-GAN), paired differences to R",
    "fig3_samples.png": "Figure 3: real, Pix2Pix and DF-GAN images around the same lesions",
    "fig4_improvement.png": "Figure 4: relative Dice improvement over R vs size, with the paper's",
    "dice_vs_size.png": "Dice vs training size for every condition",
    "summary.json": "headline numbers and paired differences with 95% intervals (dvc metrics show)",
    "table1.json": "Table 1 as data",
    "table2.json": "Table 2 as data",
    "improvement.csv": "Figure 4 as data",
    "dice_vs_size.csv": "Dice vs training size as data (dvc plots show)",
}
OTHER_RESULTS = (
    ("metrics/", "what every stage measured (FID, KID, Dice per run): dvc metrics show"),
    ("data/synthetic/<size>/<variant>/s<seed>/preview.png", "synthetic images of each GAN"),
    ("dvclive/", "training curves of every GAN and U-Net++: dvc plots show"),
)


def results_guide(out_dir: str | Path) -> str:
    """Where the results are: the report files present in ``out_dir``, then the other outputs worth a look."""
    out = Path(out_dir)
    present = [(out / name, about) for name, about in REPORT_FILES.items() if (out / name).is_file()]
    width = max(len(path) for path in [*(p.as_posix() for p, _ in present), *(p for p, _ in OTHER_RESULTS)])
    if present:
        lines = ["Results:"] + [f"  {path.as_posix():<{width}}  {about}" for path, about in present]
    else:
        lines = [f"No report in {out.as_posix()}/ yet: the pipeline has not reached its 'report' stage."]
    lines += ["Also:"] + [f"  {path:<{width}}  {about}" for path, about in OTHER_RESULTS]
    return "\n".join(lines)


def write_json(path: Path, payload: Any) -> None:
    path.write_text(json.dumps(payload, indent=2, allow_nan=False) + "\n")


def build_report(
    sizes: Sequence[int],
    conditions: Sequence[str],
    seg_metrics_dir: str | Path,
    seg_data_dir: str | Path,
    synthetic_root: str | Path,
    out_dir: str | Path,
    prepared_dir: str | Path | None = None,
    sample_count: int = 6,
    gan_seed: int = 0,
    bootstrap: dict[str, int] | None = None,
) -> dict[str, Any]:
    """Write every report file into ``out_dir`` and return the summary.

    ``sizes`` is params ``sizes``; ``conditions`` every trained condition ('real' is always added);
    ``seg_data_dir`` holds the per-image Dice CSVs the paired differences need; ``bootstrap`` is
    ``{"samples": B, "seed": s}``. The samples figure uses the largest size's synthetic sets of ``gan_seed`` and,
    when ``prepared_dir`` is given, the real images.
    """
    sizes = sorted(int(s) for s in sizes)
    if not sizes:
        raise ValueError("build_report: no sizes")
    bootstrap = bootstrap or {"samples": 2000, "seed": 0}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results = load_seg_metrics(seg_metrics_dir, sizes, conditions)
    per_image = load_per_image_dice(seg_data_dir, sizes, conditions)
    versus_real, dfgan_vs_pix2pix = paired_deltas(per_image, sizes, conditions, bootstrap)

    rows1 = table1(results, sizes, versus_real, dfgan_vs_pix2pix)
    (out / "table1.md").write_text(table1_markdown(rows1))
    write_json(out / "table1.json", {"sizes": sizes, "rows": rows1, "paper_source": PAPER_LABEL})

    rows2, paper_row = table2(results, sizes, versus_real), table2_paper_row()
    (out / "table2.md").write_text(table2_markdown(rows2, paper_row))
    write_json(out / "table2.json", {"sizes": sizes, "rows": rows2, "paper": paper_row})

    dice_vs_size(results, sizes, conditions).to_csv(out / "dice_vs_size.csv", index=False)
    gains = improvement(results, sizes, conditions)
    gains.to_csv(out / "improvement.csv", index=False)

    plot_improvement(gains, conditions, out / "fig4_improvement.png")
    plot_dice_vs_size(results, sizes, conditions, out / "dice_vs_size.png")
    plot_samples(synthetic_root, sizes[-1], sample_variants(conditions), gan_seed, prepared_dir, sample_count,
                 out / "fig3_samples.png")

    headline = summary(results, sizes, conditions, gains, versus_real, dfgan_vs_pix2pix)
    write_json(out / "summary.json", headline)
    return headline
