"""Which paired differences the report computes, their unit of replication, and their multiplicity families.

A contrast is Dice(condition) - Dice(baseline) at one size and augmentation, paired by U-Net++ seed and test image
(the per-image CSVs of the seg stages). Its unit of replication (:func:`dfgan.report.intervals.paired_difference`):

- with GAN images on either side, the **GAN seed**: U-Net++ seed k of a GAN condition trained on the images of GAN
  seed ``gan.seeds[k mod len]`` (its metrics JSON records the mapping), so seeds sharing a GAN are one replicate;
- otherwise (R, R x2, R + flip, R + paste) the U-Net++ seed.

One contrast is pre-declared (``report.primary``: R + S (<variant>) - R with augmentation <aug>, at every size) and
forms its own family; every other contrast belongs to the family of the table that shows it first (Table 1, Table
2, the controls table). Within each family the p-values are Holm-adjusted (:func:`dfgan.report.intervals.holm`), each
interval is widened to the level of its Holm step, and **bold** = significant after adjustment: an interval excludes
0 exactly when Holm rejects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd

from dfgan.core.paths import run_label
from dfgan.core.settings import AUGS
from dfgan.report.intervals import adjusted_interval, holm, paired_difference
from dfgan.seg.training_sets import (
    FLIPPED_SUFFIX, REAL, REAL_FLIPPED, REAL_PASTED, REAL_PASTED2X, REAL_REPEATED, uses_synthetic,
)

RunKey = tuple[int, str, str]  # (size, condition, aug)
PRIMARY, TABLE1, TABLE2, CONTROLS = "primary", "table1", "table2", "controls"
FAMILIES = (PRIMARY, TABLE1, TABLE2, CONTROLS)


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


def gan_variants(conditions: Sequence[str]) -> list[str]:
    """The trained R + S variants (``dfgan``, not ``dfgan2x``), in params order."""
    return [c for c in conditions if uses_synthetic(c) and not c.endswith(FLIPPED_SUFFIX)]


def planned_contrasts(conditions: Sequence[str], sizes: Sequence[int], primary: str) -> dict[str, list[Contrast]]:
    """Every contrast of the report by family; a contrast is listed once, in the first family that shows it.

    ``conditions`` are the trained conditions (``real`` included). Table 1: each condition of R x2 and R + S
    against R, and DF-GAN - Pix2Pix; Table 2: R + 2S against R; controls: each GAN-free control against R, and each
    GAN condition against its control (R + S against R + flip and R + paste, R + 2S against R + paste 2x).
    """
    trained = set(conditions)
    variants = gan_variants(conditions)
    # R + 2S runs, also where their plain R + S was not trained (a profile may run only the doubled set).
    flipped = [c for c in conditions if uses_synthetic(c) and c.endswith(FLIPPED_SUFFIX)]
    primary_variant, primary_aug = primary_condition(primary)
    families: dict[str, list[Contrast]] = {family: [] for family in FAMILIES}
    seen: set[Contrast] = set()

    def add(family: str, contrast: Contrast) -> None:
        if {contrast.condition, contrast.baseline} <= trained and contrast not in seen:
            seen.add(contrast)
            families[family].append(contrast)

    for size in sizes:
        add(PRIMARY, Contrast(int(size), primary_variant, REAL, primary_aug))
    for size in sizes:
        for aug in AUGS:
            s = int(size)
            for condition in (REAL_REPEATED, *variants):
                add(TABLE1, Contrast(s, condition, REAL, aug))
            for suffix in ("", FLIPPED_SUFFIX):
                add(TABLE1, Contrast(s, f"dfgan{suffix}", f"pix2pix{suffix}", aug))
            for doubled in flipped:
                add(TABLE2, Contrast(s, doubled, REAL, aug))
            for control in (REAL_FLIPPED, REAL_PASTED, REAL_PASTED2X):
                add(CONTROLS, Contrast(s, control, REAL, aug))
            for variant in variants:
                add(CONTROLS, Contrast(s, variant, REAL_FLIPPED, aug))
                add(CONTROLS, Contrast(s, variant, REAL_PASTED, aug))
                add(CONTROLS, Contrast(s, f"{variant}{FLIPPED_SUFFIX}", REAL_PASTED2X, aug))
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


def compute_contrast(
    contrast: Contrast, per_image: dict[RunKey, pd.DataFrame], results: dict[RunKey, dict], level: float,
    min_units: int,
) -> dict[str, Any]:
    """The raw paired difference of one contrast; both runs must share their seeds and test images."""
    a = per_image[(contrast.size, contrast.condition, contrast.aug)]
    b = per_image[(contrast.size, contrast.baseline, contrast.aug)]
    if list(a.index) != list(b.index) or list(a.columns) != list(b.columns):
        raise ValueError(
            f"runs {run_label(contrast.condition, contrast.aug)} and {run_label(contrast.baseline, contrast.aug)} at "
            f"size {contrast.size} do not share seeds {list(a.index)} vs {list(b.index)} and test images: rerun them "
            "with the same seg.seeds and data"
        )
    return paired_difference(a.to_numpy(), b.to_numpy(), contrast_clusters(contrast, results), level=level,
                             min_units=min_units)


def adjust_family(deltas: list[dict[str, Any]], level: float) -> None:
    """Holm over one family, in place: ``p_adjusted``, ``significant``, the step's level and its interval."""
    decisions = holm([d["p"] for d in deltas], alpha=1.0 - level)
    for delta, decision in zip(deltas, decisions):
        delta["p_adjusted"] = decision["p_adjusted"]
        delta["significant"] = bool(decision["significant"])
        delta["adjusted_level"] = decision["step_level"]
        bounds = None if decision["step_level"] is None else adjusted_interval(delta, decision["step_level"])
        delta["adjusted_low"], delta["adjusted_high"] = (None, None) if bounds is None else bounds


Deltas = dict[Contrast, dict[str, Any]]


def all_contrasts(
    per_image: dict[RunKey, pd.DataFrame], results: dict[RunKey, dict], conditions: Sequence[str],
    sizes: Sequence[int], primary: str, level: float, min_units: int,
) -> Deltas:
    """Every planned contrast, computed and adjusted within its family (each result carries its ``family``)."""
    deltas: Deltas = {}
    for family, contrasts in planned_contrasts(conditions, sizes, primary).items():
        computed = [compute_contrast(c, per_image, results, level, min_units) for c in contrasts]
        adjust_family(computed, level)
        for contrast, delta in zip(contrasts, computed):
            # JSON has no infinity: a zero-variance difference has df = inf, written as null.
            clean = {k: None if isinstance(v, float) and not np.isfinite(v) else v for k, v in delta.items()}
            deltas[contrast] = {**clean, "family": family}
    return deltas


def lookup(deltas: Deltas, size: int, condition: str, baseline: str, aug: str) -> dict[str, Any] | None:
    return deltas.get(Contrast(int(size), condition, baseline, aug))


def condition_interval(
    per_image: pd.DataFrame, metrics: dict[str, Any], level: float, min_units: int
) -> dict[str, Any]:
    """A condition's own mean Dice with its interval (same units as its contrasts), for the figures."""
    values = per_image.to_numpy()
    return paired_difference(values, np.zeros_like(values), gan_clusters(metrics), level=level, min_units=min_units)
