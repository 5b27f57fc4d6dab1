"""Which paired differences the report computes, their unit of replication, and the order in which they are asked.

A contrast is Dice(condition) - Dice(baseline) at one size and augmentation, paired by U-Net++ seed and test image
(the per-image CSVs of the seg stages). Its unit of replication (:func:`dfgan.report.intervals.paired.paired_difference`):

- with GAN images on either side, the **GAN seed**: U-Net++ seed k of a GAN condition trained on the images of GAN
  seed ``gan.seeds[k mod len]`` (its metrics JSON records the mapping), so seeds sharing a GAN are one replicate;
- otherwise (R, R x2, R + flip, R + paste, R + fresh) the U-Net++ seed.

The questions, in order (docs/statistics.md, "The order of questions", has the alpha bookkeeping):

1. ``oracle``: can this run detect a gain that exists? R + fresh - R at each declared size (``report.primary_sizes``)
   with the primary's augmentation, Holm-adjusted. Not detected: the GAN contrasts cannot be read.
2. ``primary``: the pre-declared contrast (``report.primary``: R + S (<variant>) - R with augmentation <aug>) at each
   declared size, and ``gate``: at sizes where it is significant, the key secondaries (``report.gate``: R + S
   (<variant>) against each listed baseline, in order) -- one graphical procedure
   (:func:`dfgan.report.intervals.multiplicity.gate_graph`) that controls the family-wise error of 1 and 2 together.
3. ``exploratory``: every other difference the tables show, with its raw interval, never bold.

Each carries its minimum detectable effect at 80% power (``report.power``) and an equivalence verdict (two one-sided
tests, ``report.equivalence_margin``), both at the level it is tested at: its share of alpha before any is passed on
(alpha / k for k declared sizes; the raw alpha for exploratory ones).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd

from dfgan.core.paths import run_label
from dfgan.core.settings import AUGS, ReportSettings
from dfgan.report.intervals.multiplicity import gate_graph, graphical, holm
from dfgan.report.intervals.paired import adjusted_interval, delta_mde, equivalent, paired_difference
from dfgan.seg.training_sets import (
    FLIPPED_SUFFIX, REAL, REAL_FLIPPED, REAL_FRESH, REAL_PASTED, REAL_PASTED2X, REAL_REPEATED, uses_synthetic,
)

RunKey = tuple[int, str, str]  # (size, condition, aug)
ORACLE, PRIMARY, GATE, EXPLORATORY = "oracle", "primary", "gate", "exploratory"
FAMILIES = (ORACLE, PRIMARY, GATE, EXPLORATORY)


def all_conditions(conditions: Sequence[str]) -> list[str]:
    """'real' first, then the other conditions in params order, without duplicates."""
    return list(dict.fromkeys([REAL, *conditions]))


@dataclass(frozen=True)
class Contrast:
    """condition - baseline at one size and augmentation."""

    size: int
    condition: str
    baseline: str
    aug: str

    @property
    def key(self) -> str:
        """``<size>/<condition label>-<aug>-vs-<baseline>``, as summary.json names it."""
        return f"{self.size}/{run_label(self.condition, self.aug)}-vs-{self.baseline}"

    @property
    def uses_gan(self) -> bool:
        return uses_synthetic(self.condition) or uses_synthetic(self.baseline)


def primary_condition(primary: str) -> tuple[str, str]:
    """``report.primary`` ``<variant>-<aug>`` -> (variant, aug)."""
    variant, _, aug = primary.rpartition("-")
    return variant, aug


def declared_sizes(report: ReportSettings, sizes: Sequence[int]) -> list[int]:
    """The sizes the primary family covers: ``report.primary_sizes`` (null: every size), in ``sizes`` order."""
    chosen = set(sizes) if report.primary_sizes is None else set(report.primary_sizes)
    return [int(s) for s in sizes if int(s) in chosen]


def gan_variants(conditions: Sequence[str]) -> list[str]:
    """The trained R + S variants (``dfgan``, not ``dfgan2x``), in params order."""
    return [c for c in conditions if uses_synthetic(c) and not c.endswith(FLIPPED_SUFFIX)]


def planned_contrasts(
    conditions: Sequence[str], sizes: Sequence[int], report: ReportSettings
) -> dict[str, list[Contrast]]:
    """Every contrast of the report by family (see the module docstring); each is listed once, in the first family
    that asks it.

    ``conditions`` are the trained conditions (``real`` included). Exploratory: each condition of R x2, R + fresh
    and R + S against R, DF-GAN - Pix2Pix (plain and 2x), R + 2S against R, each GAN-free control against R, and
    each GAN condition against its control (R + S against R + flip and R + paste, R + 2S against R + paste 2x).
    """
    trained = set(conditions)
    variants = gan_variants(conditions)
    # R + 2S runs, also where their plain R + S was not trained (a profile may run only the doubled set).
    flipped = [c for c in conditions if uses_synthetic(c) and c.endswith(FLIPPED_SUFFIX)]
    primary_variant, primary_aug = primary_condition(report.primary)
    families: dict[str, list[Contrast]] = {family: [] for family in FAMILIES}
    seen: set[Contrast] = set()

    def add(family: str, contrast: Contrast) -> None:
        if {contrast.condition, contrast.baseline} <= trained and contrast not in seen:
            seen.add(contrast)
            families[family].append(contrast)

    declared = declared_sizes(report, sizes)
    for size in declared:
        add(ORACLE, Contrast(size, REAL_FRESH, REAL, primary_aug))
    for size in declared:
        add(PRIMARY, Contrast(size, primary_variant, REAL, primary_aug))
    for size in declared:
        for baseline in report.gate:
            add(GATE, Contrast(size, primary_variant, baseline, primary_aug))
    for size in sizes:
        for aug in AUGS:
            s = int(size)
            for condition in (REAL_REPEATED, REAL_FRESH, *variants):
                add(EXPLORATORY, Contrast(s, condition, REAL, aug))
            for suffix in ("", FLIPPED_SUFFIX):
                add(EXPLORATORY, Contrast(s, f"dfgan{suffix}", f"pix2pix{suffix}", aug))
            for doubled in flipped:
                add(EXPLORATORY, Contrast(s, doubled, REAL, aug))
            for control in (REAL_FLIPPED, REAL_PASTED, REAL_PASTED2X):
                add(EXPLORATORY, Contrast(s, control, REAL, aug))
            for variant in variants:
                add(EXPLORATORY, Contrast(s, variant, REAL_FLIPPED, aug))
                add(EXPLORATORY, Contrast(s, variant, REAL_PASTED, aug))
                add(EXPLORATORY, Contrast(s, f"{variant}{FLIPPED_SUFFIX}", REAL_PASTED2X, aug))
    return families


def gan_clusters(metrics: dict[str, Any]) -> list[int] | None:
    """The GAN seed of each U-Net++ seed of one run (None: it trained without GAN images)."""
    mapping = metrics.get("gan_seed_per_seed") or []
    return None if not mapping or all(g is None for g in mapping) else [int(g) for g in mapping]


def contrast_clusters(contrast: Contrast, results: dict[RunKey, dict]) -> list[int] | None:
    """Units of one contrast: the GAN seed per U-Net++ seed when either side used GAN images, else None (seeds)."""
    for condition in (contrast.condition, contrast.baseline):
        clusters = gan_clusters(results[(contrast.size, condition, contrast.aug)])
        if clusters is not None:
            return clusters
    return None


def run_frames(contrast: Contrast, per_image: dict[RunKey, pd.DataFrame]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The per-image Dice tables (seed x test row) of both runs; they must share their seeds and test images."""
    a = per_image[(contrast.size, contrast.condition, contrast.aug)]
    b = per_image[(contrast.size, contrast.baseline, contrast.aug)]
    if list(a.index) != list(b.index) or list(a.columns) != list(b.columns):
        raise ValueError(
            f"runs {run_label(contrast.condition, contrast.aug)} and {run_label(contrast.baseline, contrast.aug)} at "
            f"size {contrast.size} do not share seeds {list(a.index)} vs {list(b.index)} and test images: rerun them "
            "with the same seg.seeds and data"
        )
    return a, b


def compute_contrast(
    contrast: Contrast, per_image: dict[RunKey, pd.DataFrame], results: dict[RunKey, dict], level: float,
    min_units: int,
) -> dict[str, Any]:
    """The raw paired difference of one contrast."""
    a, b = run_frames(contrast, per_image)
    return paired_difference(a.to_numpy(), b.to_numpy(), contrast_clusters(contrast, results), level=level,
                             min_units=min_units)


def apply_decisions(deltas: list[dict[str, Any]], decisions: list[dict[str, Any]]) -> None:
    """A multiplicity procedure's decisions into its deltas, in place: ``p_adjusted``, ``significant``, the level it
    was tested at and the interval at that level (None where it was never tested: ``tested`` False)."""
    for delta, decision in zip(deltas, decisions):
        delta["p_adjusted"] = decision["p_adjusted"]
        delta["significant"] = bool(decision["significant"])
        delta["adjusted_level"] = decision["step_level"]
        delta["tested"] = decision["step_level"] is not None
        bounds = None if decision["step_level"] is None else adjusted_interval(delta, decision["step_level"])
        delta["adjusted_low"], delta["adjusted_high"] = (None, None) if bounds is None else bounds


def adjust_family(deltas: list[dict[str, Any]], level: float) -> None:
    """Holm over one family, in place (see :func:`apply_decisions`)."""
    apply_decisions(deltas, holm([d["p"] for d in deltas], alpha=1.0 - level))


def leave_raw(deltas: list[dict[str, Any]]) -> None:
    """Exploratory contrasts, in place: the raw interval and p, never significant."""
    for delta in deltas:
        delta.update(p_adjusted=delta["p"], significant=False, adjusted_level=delta["level"] if delta["interval"]
                     else None, adjusted_low=delta["ci_low"], adjusted_high=delta["ci_high"],
                     tested=bool(delta["interval"]))


Deltas = dict[Contrast, dict[str, Any]]


def all_contrasts(
    per_image: dict[RunKey, pd.DataFrame], results: dict[RunKey, dict], conditions: Sequence[str],
    sizes: Sequence[int], report: ReportSettings,
) -> Deltas:
    """Every planned contrast whose two runs were trained (a skipped run has no per-image table), computed and
    judged in its family: each result carries ``family``, ``alpha`` (the level it is tested at before any alpha is
    passed on), ``mde`` and ``equivalent`` at that level, and the decisions of :func:`apply_decisions`."""
    planned = planned_contrasts(conditions, sizes, report)
    alpha = 1.0 - report.level

    def available(contrast: Contrast) -> bool:
        return all((contrast.size, c, contrast.aug) in per_image for c in (contrast.condition, contrast.baseline))

    def computed(contrasts: list[Contrast]) -> list[dict[str, Any]]:
        return [compute_contrast(c, per_image, results, report.level, report.min_units) for c in contrasts]

    judged: list[tuple[Contrast, dict[str, Any], str, float]] = []
    oracle = [c for c in planned[ORACLE] if available(c)]
    oracle_deltas = computed(oracle)
    adjust_family(oracle_deltas, report.level)
    judged += [(c, d, ORACLE, alpha / len(oracle)) for c, d in zip(oracle, oracle_deltas)]

    primaries = [c for c in planned[PRIMARY] if available(c)]
    chains = [[g for g in planned[GATE] if g.size == p.size and available(g)] for p in primaries]
    hypotheses = primaries + [g for chain in chains for g in chain]
    weights, transitions = gate_graph([len(chain) for chain in chains])
    gated = computed(hypotheses)
    apply_decisions(gated, graphical([d["p"] for d in gated], weights, transitions, alpha) if gated else [])
    share = alpha / len(primaries) if primaries else alpha
    judged += [(c, d, PRIMARY if c in primaries else GATE, share) for c, d in zip(hypotheses, gated)]

    rest = [c for c in planned[EXPLORATORY] if available(c)]
    raw = computed(rest)
    leave_raw(raw)
    judged += [(c, d, EXPLORATORY, alpha) for c, d in zip(rest, raw)]

    deltas: Deltas = {}
    for contrast, delta, family, level_alpha in judged:
        delta.update(family=family, alpha=level_alpha, mde=delta_mde(delta, level_alpha, report.power),
                     equivalent=equivalent(delta, report.equivalence_margin, level_alpha))
        # JSON has no infinity: a zero-variance difference has df = inf, written as null.
        deltas[contrast] = {k: None if isinstance(v, float) and not np.isfinite(v) else v for k, v in delta.items()}
    return deltas


def lookup(deltas: Deltas, size: int, condition: str, baseline: str, aug: str) -> dict[str, Any] | None:
    return deltas.get(Contrast(int(size), condition, baseline, aug))


def condition_interval(
    per_image: pd.DataFrame, metrics: dict[str, Any], level: float, min_units: int
) -> dict[str, Any]:
    """A condition's own mean Dice with its interval (same units as its contrasts), for the figures."""
    values = per_image.to_numpy()
    return paired_difference(values, np.zeros_like(values), gan_clusters(metrics), level=level, min_units=min_units)
