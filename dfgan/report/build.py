"""The report: Tables 1 and 2, Figures 3 and 4, and Dice vs training size, from the segmentation results.

Inputs are listed from params (sizes x conditions x augs, see :func:`dfgan.seg.training_sets.trained_conditions`),
never globbed, so a shrunk ``sizes`` leaves no stale rows and a missing run is an error naming its file. The paper's
numbers (SIIM-ACR, 256x256) are shown beside ours, labelled as the paper's, wherever the paper has that size.

Every comparison is paired (per seed and test image, from the per-image CSVs of the seg stages); which contrasts,
their unit of replication (the GAN seed wherever GAN images are involved), their interval and their Holm families
are :mod:`dfgan.report.contrasts`; the figures are :mod:`dfgan.report.figures`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from dfgan.core.settings import ReportSettings, Settings, variant_lambda_fid
from dfgan.core.paths import REPORT_FILES, report_file, run_label, seg_run, synthetic_dir
from dfgan.gan.synthetic_sets import PREVIEW_FILE
from dfgan.report import paper_results
from dfgan.report.contrasts import (
    AUGS, Deltas, RunKey, all_contrasts, condition_interval, gan_variants, lookup,
)
from dfgan.report.figures import Point, Series, plot_dice_vs_size, plot_improvement, plot_samples, sample_variants
from dfgan.report.tables import (
    controls_markdown, convergence_markdown, delta_note, table1_markdown, table2_markdown,
)
from dfgan.report.paper_results import PAPER_LABEL, PaperDice
from dfgan.seg.training_sets import (
    AUG_TITLES, FLIPPED_SUFFIX, REAL, REAL_FLIPPED, REAL_PASTED, REAL_PASTED2X, REAL_REPEATED, condition_title,
    trained_conditions,
)

TABLE2_VARIANT = "dfgan"


# ---------------------------------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------------------------------


def all_conditions(conditions: Sequence[str]) -> list[str]:
    """'real' first, then the other conditions in params order, without duplicates."""
    return list(dict.fromkeys([REAL, *conditions]))


def expected_files(
    path_of: Callable[[int, str, str], Path], sizes: Sequence[int], conditions: Sequence[str], what: str
) -> dict[RunKey, Path]:
    """The file of every run the params imply (``path_of(size, condition, aug)``); names each missing one."""
    expected = {
        (int(size), condition, aug): path_of(int(size), condition, aug)
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
    def path_of(size: int, condition: str, aug: str) -> Path:
        return seg_run(size, condition, aug, data_root=seg_data_dir).per_image_path

    expected = expected_files(path_of, sizes, conditions, "per-image Dice")
    return {key: pd.read_csv(path).pivot(index="seed", columns="row", values="dice") for key, path in expected.items()}


def load_seg_metrics(
    seg_metrics_dir: str | Path, sizes: Sequence[int], conditions: Sequence[str]
) -> dict[RunKey, dict]:
    """Every expected metrics JSON."""
    def path_of(size: int, condition: str, aug: str) -> Path:
        return seg_run(size, condition, aug, metrics_root=seg_metrics_dir).metrics_path

    expected = expected_files(path_of, sizes, conditions, "segmentation metrics")
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


def table1(
    results: dict[RunKey, dict], sizes: Sequence[int], conditions: Sequence[str], deltas: Deltas
) -> list[dict[str, Any]]:
    """Rows (size, aug): R, the R x2 control and R + S of every trained variant (None = not run), each with its
    paired difference to R (adjusted in its family); DF-GAN - Pix2Pix; and the paper's R and R+S where it has them."""
    rows = []
    # Pix2Pix and DF-GAN always have their columns (marked "not run" when not trained), then any other variant.
    shown = (REAL_REPEATED, *dict.fromkeys(["pix2pix", "dfgan", *gan_variants(all_conditions(conditions))]))
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


def convergence(results: dict[RunKey, dict], sizes: Sequence[int], conditions: Sequence[str]) -> list[dict[str, Any]]:
    """Per size, condition and aug: the share of seeds whose kept round was the schedule's last (still improving
    when the budget ran out), the steps they ran, and the share of test images with an empty prediction."""
    rows = []
    for size in sizes:
        for condition in all_conditions(conditions):
            for aug in AUGS:
                run = results[(int(size), condition, aug)]
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


def improvement_panels(
    results: dict[RunKey, dict], sizes: Sequence[int], conditions: Sequence[str], deltas: Deltas,
    weights: dict[str, float],
) -> dict[str, Series]:
    """Figure 4's points: 100 x Δ / Dice(R) with the Δ's adjusted interval scaled alike (Dice(R) taken as fixed)."""
    panels: dict[str, Series] = {}
    for aug in AUGS:
        series: Series = {}
        for condition in all_conditions(conditions)[1:]:
            points = []
            for size in sizes:
                real = results[(int(size), REAL, aug)]["dice_mean"]
                delta = lookup(deltas, size, condition, REAL, aug)
                scale = 100.0 / real if real > 0 else float("nan")
                low = None if delta is None or delta["adjusted_low"] is None else scale * delta["adjusted_low"]
                high = None if delta is None or delta["adjusted_high"] is None else scale * delta["adjusted_high"]
                mean = results[(int(size), condition, aug)]["dice_mean"] - real
                points.append(Point(int(size), scale * mean, low, high))
            series[condition_title(condition, weights)] = points
        panels[aug] = series
    return panels


def dice_panels(
    results: dict[RunKey, dict], per_image: dict[RunKey, pd.DataFrame], sizes: Sequence[int],
    conditions: Sequence[str], level: float, min_units: int, weights: dict[str, float],
) -> dict[str, Series]:
    """Dice vs size: each condition's mean with its own interval (GAN seeds as units for GAN conditions)."""
    panels: dict[str, Series] = {}
    for aug in AUGS:
        series: Series = {}
        for condition in all_conditions(conditions):
            points = []
            for size in sizes:
                key = (int(size), condition, aug)
                own = condition_interval(per_image[key], results[key], level, min_units)
                points.append(Point(int(size), results[key]["dice_mean"], own["ci_low"], own["ci_high"]))
            series[condition_title(condition, weights)] = points
        panels[aug] = series
    return panels


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


def finite_or_none(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def delta_summary(delta: dict[str, Any]) -> dict[str, Any]:
    """The numbers of one paired difference that ``dvc metrics diff`` should show: raw and adjusted."""
    keys = ("mean", "se", "ci_low", "ci_high", "p", "p_adjusted", "adjusted_low", "adjusted_high")
    out: dict[str, Any] = {key: None if delta[key] is None else round(float(delta[key]), 6) for key in keys}
    out.update(n_units=int(delta["n_units"]), unit=delta["unit"], family=delta["family"],
               significant=bool(delta["significant"]))
    return out


def summary(
    results: dict[RunKey, dict],
    sizes: Sequence[int],
    conditions: Sequence[str],
    gains: pd.DataFrame,
    deltas: Deltas,
    primary: str,
    converged: list[dict[str, Any]],
) -> dict[str, Any]:
    """Headline numbers for ``dvc metrics diff``: Dice at the largest size, mean over sizes, every paired
    difference (raw and Holm-adjusted, by family), the significant ones, and the best-round-last share."""
    largest = max(int(s) for s in sizes)
    return {
        "largest_size": largest,
        "primary": primary,
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
        "contrasts": {contrast.key: delta_summary(delta) for contrast, delta in deltas.items()},
        "significant_after_adjustment": sorted(c.key for c, d in deltas.items() if d["significant"]),
        "raw_interval_excludes_zero": sorted(c.key for c, d in deltas.items() if d["excludes_zero"]),
        "best_round_last_share": {
            f"{row['size']}/{run_label(row['condition'], row['aug'])}": row["best_round_last_share"] for row in converged
        },
    }


# ---------------------------------------------------------------------------------------------------------------------
# Entry
# ---------------------------------------------------------------------------------------------------------------------


OTHER_RESULTS = (
    ("metrics/", "what every stage measured (FID, KID, Dice per run): dvc metrics show"),
    (f"{synthetic_dir('<size>', '<variant>', '<seed>').as_posix()}/{PREVIEW_FILE}", "synthetic images of each GAN"),
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


@dataclass(frozen=True)
class ReportConfig:
    """What the report reads of the settings: the sizes and every trained condition ('real' is always added), the
    GAN seed of the samples figure (the first of ``gan.seeds``), each GAN variant's FID-loss weight (for the titles)
    and the ``report`` section (``primary``, ``level`` and ``min_units``: see :mod:`dfgan.report.contrasts`)."""

    sizes: tuple[int, ...]
    conditions: tuple[str, ...]
    gan_seed: int
    fid_weights: dict[str, float]
    report: ReportSettings

    @classmethod
    def of(cls, settings: Settings) -> ReportConfig:
        return cls(
            sizes=settings.sizes,
            conditions=tuple(trained_conditions(settings)),
            gan_seed=settings.gan.seeds[0],
            fid_weights={variant: variant_lambda_fid(settings.gan, variant) for variant in settings.variants},
            report=settings.report,
        )


def build_report(
    config: ReportConfig,
    seg_metrics_dir: str | Path,
    seg_data_dir: str | Path,
    synthetic_root: str | Path,
    out_dir: str | Path,
    prepared_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Write every report file into ``out_dir`` and return the summary.

    ``seg_data_dir`` holds the per-image Dice CSVs the paired differences need. The samples figure uses the largest
    size's synthetic sets of ``config.gan_seed`` and, when ``prepared_dir`` is given, the real images.
    """
    sizes = sorted(config.sizes)
    if not sizes:
        raise ValueError("build_report: no sizes")
    conditions, weights = config.conditions, config.fid_weights
    primary, level, min_units = config.report.primary, config.report.level, config.report.min_units
    Path(out_dir).mkdir(parents=True, exist_ok=True)

    def file(name: str) -> Path:
        return report_file(name, out_dir)

    results = load_seg_metrics(seg_metrics_dir, sizes, conditions)
    per_image = load_per_image_dice(seg_data_dir, sizes, conditions)
    deltas = all_contrasts(per_image, results, all_conditions(conditions), sizes, primary, level, min_units)
    note = delta_note(deltas, level, min_units, primary)

    rows1 = table1(results, sizes, conditions, deltas)
    file("table1.md").write_text(table1_markdown(rows1, note, weights))
    write_json(file("table1.json"), {"sizes": sizes, "rows": rows1, "paper_source": PAPER_LABEL})

    rows2, paper_row = table2(results, sizes, deltas), table2_paper_row()
    file("table2.md").write_text(table2_markdown(rows2, paper_row, note))
    write_json(file("table2.json"), {"sizes": sizes, "rows": rows2, "paper": paper_row})

    rows3 = controls_table(results, sizes, conditions, deltas)
    file("controls.md").write_text(controls_markdown(rows3, note, weights))
    write_json(file("controls.json"), {"sizes": sizes, "rows": rows3})

    converged = convergence(results, sizes, conditions)
    file("convergence.md").write_text(convergence_markdown(converged, weights))

    dice_vs_size(results, sizes, conditions).to_csv(file("dice_vs_size.csv"), index=False)
    gains = improvement(results, sizes, conditions)
    gains.to_csv(file("improvement.csv"), index=False)

    plot_improvement(improvement_panels(results, sizes, conditions, deltas, weights), file("fig4_improvement.png"),
                     f"bars: Holm-adjusted {level:.0%} intervals; hollow: too few replicates")
    plot_dice_vs_size(dice_panels(results, per_image, sizes, conditions, level, min_units, weights),
                      file("dice_vs_size.png"), f"bars: {level:.0%} interval of each mean; hollow: too few replicates")
    plot_samples(synthetic_root, sizes[-1], sample_variants(conditions), config.gan_seed, prepared_dir,
                 config.report.sample_count, file("fig3_samples.png"))

    headline = summary(results, sizes, conditions, gains, deltas, primary, converged)
    write_json(file("summary.json"), headline)
    return headline
