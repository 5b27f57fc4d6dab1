"""The report stage: reads the segmentation results, writes Tables 1 and 2, Figures 3 and 4, Dice vs training size
and the headline summary (:data:`dfgan.core.paths.REPORT_FILES`).

Inputs are listed from params (sizes x conditions x augs, see :func:`dfgan.seg.training_sets.trained_conditions`),
never globbed, so a shrunk ``sizes`` leaves no stale rows and a missing run is an error naming its file. The paper's
numbers (SIIM-ACR, 256x256) are shown beside ours, labelled as the paper's, wherever the paper has that size.

Every comparison is paired (per seed and test image, from the per-image CSVs of the seg stages); which contrasts,
their unit of replication (the GAN seed wherever GAN images are involved), their interval and the order of questions
are :mod:`dfgan.report.contrasts` (the statistics: :mod:`dfgan.report.intervals`); the answers, failed seeds and ρ
:mod:`dfgan.report.questions`; the tables' rows and Markdown :mod:`dfgan.report.tables`, the figures and their data
:mod:`dfgan.report.figures`. A run its seg stage skipped (``real+fresh`` where the pool is too small) is left out of
every table and figure, and its reason is listed in questions.md.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from dfgan.core.paths import REPORT_FILES, report_file, run_label, seg_run, synthetic_dir
from dfgan.core.settings import AUGS, ReportSettings, Settings, variant_lambda_fid
from dfgan.gan.synthetic_sets import PREVIEW_FILE
from dfgan.report.contrasts import Deltas, RunKey, all_conditions, all_contrasts
from dfgan.report.figures import (
    dice_panels, dice_vs_size, forest_rows, improvement, improvement_panels, plot_dice_vs_size, plot_forest,
    plot_improvement, plot_samples, sample_variants,
)
from dfgan.report.paper_results import PAPER_LABEL
from dfgan.report.questions import banner, failed_by_run, questions_markdown, worth_rows
from dfgan.report.questions import headline as headline_of
from dfgan.report.tables import (
    controls_markdown, controls_table, convergence, convergence_markdown, delta_note, table1, table1_markdown,
    table2, table2_markdown, table2_paper_row,
)
from dfgan.seg.training_sets import trained_conditions

# ---------------------------------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------------------------------


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


def load_per_image(
    seg_data_dir: str | Path, sizes: Sequence[int], conditions: Sequence[str]
) -> dict[RunKey, pd.DataFrame]:
    """The per-image CSV of every expected run, as written (one row per seed and test image)."""
    def path_of(size: int, condition: str, aug: str) -> Path:
        return seg_run(size, condition, aug, data_root=seg_data_dir).per_image_path

    return {key: pd.read_csv(path) for key, path in expected_files(path_of, sizes, conditions,
                                                                    "per-image Dice").items()}


def dice_table(frame: pd.DataFrame) -> pd.DataFrame:
    """A per-image CSV as a (seed x test row) table of Dice."""
    return frame.pivot(index="seed", columns="row", values="dice")


def load_per_image_dice(
    seg_data_dir: str | Path, sizes: Sequence[int], conditions: Sequence[str]
) -> dict[RunKey, pd.DataFrame]:
    """Per-image Dice of every expected run as a (seed x test row) table."""
    return {key: dice_table(frame) for key, frame in load_per_image(seg_data_dir, sizes, conditions).items()}


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


def finite_or_none(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def delta_summary(delta: dict[str, Any]) -> dict[str, Any]:
    """The numbers of one paired difference that ``dvc metrics diff`` should show: raw and adjusted, what the design
    could detect (``mde``) and whether it is shown ``equivalent`` (None without an interval)."""
    keys = ("mean", "se", "ci_low", "ci_high", "p", "p_adjusted", "adjusted_low", "adjusted_high", "alpha", "mde")
    out: dict[str, Any] = {key: None if delta[key] is None else round(float(delta[key]), 6) for key in keys}
    out.update(n_units=int(delta["n_units"]), unit=delta["unit"], family=delta["family"],
               tested=bool(delta["tested"]), significant=bool(delta["significant"]), equivalent=delta["equivalent"])
    return out


def summary(
    results: dict[RunKey, dict],
    sizes: Sequence[int],
    conditions: Sequence[str],
    gains: pd.DataFrame,
    deltas: Deltas,
    questions: dict[str, Any],
    converged: list[dict[str, Any]],
) -> dict[str, Any]:
    """Headline numbers for ``dvc metrics diff``: the questions (the primary with its λ_FID, the oracle's detection,
    ρ, failed seeds), Dice at the largest size, mean over sizes, every paired difference (raw and adjusted, by
    family, with its MDE and equivalence), the significant ones, and the best-round-last share."""
    largest = max(int(s) for s in sizes)
    runs = [(c, a) for a in AUGS for c in all_conditions(conditions)]
    return {
        "largest_size": largest,
        **questions,
        "dice_at_largest_size": {
            run_label(c, a): results[(largest, c, a)]["dice_mean"] for c, a in runs if (largest, c, a) in results
        },
        "mean_dice_over_sizes": {
            run_label(c, a): float(np.mean([results[(int(s), c, a)]["dice_mean"] for s in sizes
                                            if (int(s), c, a) in results]))
            for c, a in runs if any((int(s), c, a) in results for s in sizes)
        },
        "mean_improvement_over_real": {
            column: finite_or_none(float(gains[column].mean())) for column in gains.columns if column != "size"
        },
        "contrasts": {contrast.key: delta_summary(delta) for contrast, delta in deltas.items()},
        "significant_after_adjustment": sorted(c.key for c, d in deltas.items() if d["significant"]),
        "equivalent": sorted(c.key for c, d in deltas.items() if d["equivalent"]),
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
    synthetic_root: str | Path | None,
    out_dir: str | Path,
    prepared_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Write every report file into ``out_dir`` and return the summary.

    ``seg_data_dir`` holds the per-image Dice CSVs the paired differences need. The samples figure uses the largest
    size's synthetic sets of ``config.gan_seed`` and, when ``prepared_dir`` is given, the real images; without
    ``synthetic_root`` (a committed evidence run, whose images are not in git) it is not drawn and a figure already
    in ``out_dir`` stays.
    """
    sizes = sorted(config.sizes)
    if not sizes:
        raise ValueError("build_report: no sizes")
    conditions, weights = config.conditions, config.fid_weights
    primary, level, min_units = config.report.primary, config.report.level, config.report.min_units
    Path(out_dir).mkdir(parents=True, exist_ok=True)

    def file(name: str) -> Path:
        return report_file(name, out_dir)

    report = config.report
    loaded = load_seg_metrics(seg_metrics_dir, sizes, conditions)
    skipped = {key: metrics["skipped"] for key, metrics in loaded.items() if metrics.get("skipped")}
    results = {key: metrics for key, metrics in loaded.items() if key not in skipped}
    frames = {key: frame for key, frame in load_per_image(seg_data_dir, sizes, conditions).items()
              if key not in skipped}
    per_image = {key: dice_table(frame) for key, frame in frames.items()}
    deltas = all_contrasts(per_image, results, all_conditions(conditions), sizes, report)
    note = delta_note(deltas, level, min_units, primary, weights)
    failed = failed_by_run(results, frames, report)
    worth = worth_rows(per_image, results, sizes, conditions, report)
    warning = banner(deltas, skipped)

    def markdown(name: str, text: str) -> None:
        """Write a Markdown file, the warning (if any) under its title."""
        if warning:
            title, _, rest = text.partition("\n")
            text = f"{title}\n\n{warning}\n{rest}"
        file(name).write_text(text)

    file("questions.md").write_text(questions_markdown(deltas, worth, failed, results, skipped, sizes, report,
                                                       weights))
    rows1 = table1(results, sizes, conditions, deltas)
    markdown("table1.md", table1_markdown(rows1, note, weights))
    write_json(file("table1.json"), {"sizes": sizes, "rows": rows1, "paper_source": PAPER_LABEL})

    rows2, paper_row = table2(results, sizes, deltas), table2_paper_row()
    markdown("table2.md", table2_markdown(rows2, paper_row, note))
    write_json(file("table2.json"), {"sizes": sizes, "rows": rows2, "paper": paper_row})

    rows3 = controls_table(results, sizes, conditions, deltas)
    markdown("controls.md", controls_markdown(rows3, note, weights))
    write_json(file("controls.json"), {"sizes": sizes, "rows": rows3})

    converged = convergence(results, sizes, conditions, failed)
    failed_rule = (f"predicts nothing on more than {report.failed_empty_share:.0%} of the test images, or kept its "
                   f"first round and scored below {report.failed_dice:g}")
    file("convergence.md").write_text(convergence_markdown(converged, weights, failed_rule))

    dice_vs_size(results, sizes, conditions).to_csv(file("dice_vs_size.csv"), index=False)
    gains = improvement(results, sizes, conditions)
    gains.to_csv(file("improvement.csv"), index=False)

    bare = "hollow markers: too few replicates for an interval"
    plot_improvement(improvement_panels(results, sizes, conditions, deltas, weights), file("fig4_improvement.png"),
                     f"error bars: {level:.0%} intervals of the paired difference to R (scaled by Dice(R)), adjusted "
                     f"for the report's questions, raw for exploratory ones; {bare}")
    plot_dice_vs_size(dice_panels(results, per_image, sizes, conditions, level, min_units, weights),
                      file("dice_vs_size.png"),
                      f"error bars: {level:.0%} interval of each mean (GAN seeds as units for GAN conditions); {bare}")
    plot_forest(forest_rows(deltas, weights), report.equivalence_margin, file("forest.png"))
    if synthetic_root is not None:
        plot_samples(synthetic_root, sizes[-1], sample_variants(conditions), config.gan_seed, prepared_dir,
                     config.report.sample_count, file("fig3_samples.png"))

    headline = summary(results, sizes, conditions, gains, deltas, headline_of(deltas, worth, failed, results, report,
                                                                               weights), converged)
    write_json(file("summary.json"), headline)
    return headline
