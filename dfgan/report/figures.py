"""The report's figures: the forest plot of the questions (the figure to look at first), Figure 3 (samples), Figure 4
(relative improvement) and Dice vs training size, with the numbers they plot (Figure 4 and Dice vs size are also
written as CSV).

Every plotted mean carries the interval the tables give it (:mod:`dfgan.report.contrasts`): a point without one (too few
replicates) is drawn hollow, without a bar, so a picture never shows more than the tables support.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from dfgan.core.imaging import outline, save_grid
from dfgan.core.paths import run_label
from dfgan.core.settings import AUGS
from dfgan.data.prepared_arrays import load_prepared
from dfgan.gan.synthetic_sets import load_synthetic
from dfgan.report import paper_results
from dfgan.report.contrasts import (
    EXPLORATORY, GATE, ORACLE, PRIMARY, Deltas, RunKey, all_conditions, condition_interval, lookup, primary_condition,
)
from dfgan.report.paper_results import PAPER_LABEL
from dfgan.seg.training_sets import AUG_TITLES, REAL, VARIANT_TITLES, condition_title, parse_condition, uses_synthetic


@dataclass(frozen=True)
class Point:
    """One plotted value with its interval (None: too few replicates for one)."""

    size: int
    value: float
    low: float | None = None
    high: float | None = None


Series = dict[str, list[Point]]  # legend label -> points in size order


# ---------------------------------------------------------------------------------------------------------------------
# The plotted numbers (also written as CSV)
# ---------------------------------------------------------------------------------------------------------------------


def relative_improvement(real: float, synthetic: float) -> float:
    """(R+S - R) / R; NaN when the real Dice is 0 (no baseline to be relative to)."""
    return (synthetic - real) / real if real > 0 else float("nan")


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
                if (int(size), condition, aug) not in results:  # skipped (the oracle without fresh images)
                    continue
                real = results[(int(size), REAL, aug)]["dice_mean"]
                delta = lookup(deltas, size, condition, REAL, aug)
                scale = 100.0 / real if real > 0 else float("nan")
                low = None if delta is None or delta["adjusted_low"] is None else scale * delta["adjusted_low"]
                high = None if delta is None or delta["adjusted_high"] is None else scale * delta["adjusted_high"]
                mean = results[(int(size), condition, aug)]["dice_mean"] - real
                points.append(Point(int(size), scale * mean, low, high))
            if points:
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
                if key not in results:
                    continue
                own = condition_interval(per_image[key], results[key], level, min_units)
                points.append(Point(int(size), results[key]["dice_mean"], own["ci_low"], own["ci_high"]))
            if points:
                series[condition_title(condition, weights)] = points
        panels[aug] = series
    return panels


def dice_vs_size(results: dict[RunKey, dict], sizes: Sequence[int], conditions: Sequence[str]) -> pd.DataFrame:
    """Long form for DVC plots: one row (``size``, ``run``, ``dice``) per run that was trained, ``run`` its label
    (``real-none``, ...). Long, not one column per run, so the one plot definition in dvc.yaml (template
    .dvc/plots/dice_by_run.json, a line per ``run``) draws any profile's conditions; skipped runs have no row."""
    rows = [{"size": int(s), "run": run_label(condition, aug), "dice": results[(int(s), condition, aug)]["dice_mean"]}
            for aug in AUGS for condition in all_conditions(conditions) for s in sizes
            if (int(s), condition, aug) in results]
    return pd.DataFrame(rows, columns=["size", "run", "dice"])


def improvement(results: dict[RunKey, dict], sizes: Sequence[int], conditions: Sequence[str]) -> pd.DataFrame:
    """Wide form: ``size`` and one column ``<condition>-<aug>`` of (R+S - R) / R per synthetic condition."""
    columns = {"size": [int(s) for s in sizes]}
    for aug in AUGS:
        for condition in all_conditions(conditions)[1:]:
            columns[f"{condition}-{aug}"] = [
                relative_improvement(
                    results[(int(s), REAL, aug)]["dice_mean"], results[(int(s), condition, aug)]["dice_mean"]
                ) if (int(s), condition, aug) in results else float("nan")
                for s in sizes
            ]
    return pd.DataFrame(columns)


# ---------------------------------------------------------------------------------------------------------------------
# Drawing
# ---------------------------------------------------------------------------------------------------------------------


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


def draw_series(ax: Any, label: str, points: list[Point], offset: float) -> None:
    """A line through the points; error bars where an interval exists, hollow markers where none does.
    ``offset`` spreads the conditions a little along the log-size axis so their bars do not hide each other."""
    xs = [p.size * offset for p in points]
    line = ax.plot(xs, [p.value for p in points], "-", label=label)[0]
    with_bar = [(x, p) for x, p in zip(xs, points) if p.low is not None and p.high is not None]
    if with_bar:
        ax.errorbar(
            [x for x, _ in with_bar], [p.value for _, p in with_bar],
            yerr=[[p.value - p.low for _, p in with_bar], [p.high - p.value for _, p in with_bar]],
            fmt="o", color=line.get_color(), capsize=3,
        )
    bare = [(x, p) for x, p in zip(xs, points) if p.low is None or p.high is None]
    if bare:
        ax.plot([x for x, _ in bare], [p.value for _, p in bare], "o", mfc="none", color=line.get_color())


def spread(count: int) -> list[float]:
    """Multiplicative x offsets, symmetric around 1, for ``count`` series."""
    return [1.0] if count <= 1 else list(np.exp(np.linspace(-0.04, 0.04, count)))


def plot_improvement(panels: dict[str, Series], path: Path, interval_label: str) -> Path:
    """Fig. 4: relative improvement over R (%) vs training size with its interval, one panel per augmentation,
    the paper's DF-GAN dashed."""
    figure, axes = size_panels()
    for ax, (aug, series) in zip(axes, panels.items()):
        for (label, points), offset in zip(series.items(), spread(len(series))):
            draw_series(ax, label, points, offset)
        paper = paper_results.paper_improvement(aug)
        ax.plot(list(paper), [100 * v for v in paper.values()], "k--", label=f"{PAPER_LABEL}: DF-GAN")
        ax.axhline(0.0, color="grey", linewidth=0.8)
        finish_size_panel(ax, aug, legend_size=7)
    axes[0].set_ylabel("relative Dice improvement over R (%)")
    figure.suptitle(interval_label, fontsize=8)
    figure.savefig(path, dpi=120)
    return path


def plot_dice_vs_size(panels: dict[str, Series], path: Path, interval_label: str) -> Path:
    """Dice vs training size per condition with each mean's interval; the paper's R and R+S dashed."""
    figure, axes = size_panels()
    for ax, (aug, series) in zip(axes, panels.items()):
        for (label, points), offset in zip(series.items(), spread(len(series))):
            draw_series(ax, label, points, offset)
        table = paper_results.TABLE1[aug]
        paper_sizes = sorted(table)
        ax.plot(paper_sizes, [table[s][0].mean for s in paper_sizes], "--", color="grey", label=f"{PAPER_LABEL}: R")
        ax.plot(
            paper_sizes, [table[s][1].mean for s in paper_sizes], "k--", label=f"{PAPER_LABEL}: R + S (DF-GAN)"
        )
        finish_size_panel(ax, aug, legend_size=7)
    axes[0].set_ylabel("test Dice")
    figure.suptitle(interval_label, fontsize=8)
    figure.savefig(path, dpi=120)
    return path


@dataclass(frozen=True)
class ForestRow:
    """One contrast of the forest plot: its label, mean, interval (None: none) and how it is read."""

    label: str
    mean: float
    low: float | None
    high: float | None
    family: str
    significant: bool
    size: int


def forest_rows(deltas: Deltas, weights: dict[str, float]) -> list[ForestRow]:
    """The questions in their order (oracle, primary, gate) with the interval they are judged by, then, greyed, the
    other GANs' R + S - R with the primary's augmentation (exploratory, raw intervals)."""
    rows = []
    primary_aug = next((c.aug for c, d in deltas.items() if d["family"] == PRIMARY), None)
    for family in (ORACLE, PRIMARY, GATE, EXPLORATORY):
        for contrast, delta in deltas.items():
            if delta["family"] != family:
                continue
            if family == EXPLORATORY and not (contrast.baseline == REAL and uses_synthetic(contrast.condition)
                                              and contrast.aug == primary_aug):
                continue
            tested = delta["tested"] and delta["interval"]
            low = delta["adjusted_low"] if tested else delta["ci_low"]
            high = delta["adjusted_high"] if tested else delta["ci_high"]
            label = (f"N={contrast.size}  {condition_title(contrast.condition, weights)} − "
                     f"{condition_title(contrast.baseline, weights)}")
            rows.append(ForestRow(label, float(delta["mean"]), low, high,
                                  family if delta["tested"] else EXPLORATORY, bool(delta["significant"]),
                                  contrast.size))
    return rows


FOREST_COLORS = {ORACLE: "tab:green", PRIMARY: "tab:blue", GATE: "tab:purple", EXPLORATORY: "0.6"}


def plot_forest(rows: list[ForestRow], margin: float, path: Path) -> Path:
    """Forest plot: one row per question (top to bottom in the order asked), its mean and the interval it is judged
    by; filled markers where significant; the equivalence margin shaded; each size's oracle gain as a dotted
    reference line; exploratory rows grey."""
    height = 1.5 + 0.35 * max(len(rows), 1)
    figure = Figure(figsize=(9, height), layout="constrained")
    ax = figure.subplots()
    ax.axvspan(-margin, margin, color="0.92", zorder=0, label=f"equivalence margin ±{margin:g}")
    ax.axvline(0.0, color="black", linewidth=0.8)
    for row in rows:
        if row.family == ORACLE:
            ax.axvline(row.mean, color=FOREST_COLORS[ORACLE], linestyle=":", linewidth=1,
                       label=f"oracle gain, N={row.size}")
    for y, row in enumerate(reversed(rows)):
        color = FOREST_COLORS[row.family]
        if row.low is not None and row.high is not None:
            ax.plot([row.low, row.high], [y, y], color=color, linewidth=2)
        ax.plot([row.mean], [y], "o", color=color, mfc=color if row.significant else "white")
    ax.set_yticks(range(len(rows)), [row.label for row in reversed(rows)], fontsize=8)
    for tick, row in zip(ax.get_yticklabels(), reversed(rows)):
        tick.set_color("0.45" if row.family == EXPLORATORY else "black")
    if not rows:
        ax.text(0.5, 0.5, "no contrast computed", transform=ax.transAxes, ha="center")
    ax.set_xlabel("Δ Dice (paired difference)")
    ax.legend(fontsize=7, loc="lower right")
    figure.suptitle("The questions in order: green oracle, blue primary, purple gate (adjusted intervals); grey "
                    "exploratory (raw); filled = significant", fontsize=8)
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


