"""The training conditions of Tables 1-2 and the U-Net++ training set each one assembles.

- ``real``: the real training images of one size (the paper's "N R").
- ``real2x``: the same real images, each listed twice (a control: "more of the same", no synthetic image).
- ``<variant>`` (``pix2pix``, ``dfgan``): real + one synthetic image per real lesion of that GAN ("N R + N S").
- ``<variant>2x`` (e.g. ``dfgan2x``): real + synthetic + synthetic grown from flipped lesions ("N R + 2N S").

Files are named ``real-<aug>``, ``real2x-<aug>`` and ``real+<condition>-<aug>`` (:func:`run_label`). Seed number k
of ``seg.seeds`` reads the synthetic set of GAN seed ``gan.seeds[k mod len(gan.seeds)]`` (:func:`gan_seed_for`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from dfgan.errors import InputError
from dfgan.params_schema import DOUBLED_SUFFIX, REAL, REAL_CONDITIONS
from dfgan.prepared import ImageSet, PreparedData
from dfgan.synthetic_data import load_synthetic

FLIPPED_SUFFIX = DOUBLED_SUFFIX
REAL_REPEATED = REAL_CONDITIONS[1]  # "real2x": the control condition

# Where each training image comes from (TrainingSet.train_part).
PART_REAL, PART_SYNTHETIC, PART_FLIPPED, PART_REAL_REPEAT = 0, 1, 2, 3




@dataclass(frozen=True)
class Condition:
    """A parsed condition name: which GAN variant supplies synthetic images, how many synthetic copies (0, 1 or 2),
    and how many times the real images are listed (2 for the ``real2x`` control)."""

    name: str
    variant: str | None
    copies: int
    real_copies: int = 1


def parse_condition(condition: str) -> Condition:
    """``real`` -> no synthetic; ``real2x`` -> the real images twice; ``dfgan`` -> 1 copy of DF-GAN's;
    ``dfgan2x`` -> plain + flipped-lesion copies."""
    if condition == REAL:
        return Condition(condition, None, 0)
    if condition == REAL_REPEATED:
        return Condition(condition, None, 0, real_copies=2)
    if condition.endswith(FLIPPED_SUFFIX) and len(condition) > len(FLIPPED_SUFFIX):
        return Condition(condition, condition[: -len(FLIPPED_SUFFIX)], 2)
    if not condition:
        raise ValueError("empty condition name")
    return Condition(condition, condition, 1)


def conditions_from_params(params: dict[str, Any]) -> list[str]:
    """Every trained condition, as dvc.yaml lays them out: ``seg.real_conditions`` (``seg_real``), one R + S per
    GAN variant in ``variants`` (``seg_synth``) and R + 2S per variant in ``seg.flipped_variants`` (``seg_synth2x``)."""
    seg = params["seg"]
    return [
        *[str(c) for c in seg["real_conditions"]],
        *[str(v) for v in params["variants"]],
        *[f"{v}{FLIPPED_SUFFIX}" for v in seg["flipped_variants"]],
    ]


def require_condition(params: dict[str, Any], condition: str, source: str | Path) -> None:
    """Refuse a ``--condition`` that these params do not train (it would have no DVC stage and no report row)."""
    conditions = conditions_from_params(params)
    if condition not in conditions:
        raise InputError(
            f"{source}: condition {condition!r} is not trained by these params (they train {', '.join(conditions)}); "
            "see seg.real_conditions, variants and seg.flipped_variants"
        )


def uses_synthetic(condition: str) -> bool:
    """Whether the condition trains on a GAN's images (and so reads ``gan.seeds``)."""
    return parse_condition(condition).variant is not None


def condition_label(condition: str) -> str:
    """The training-set name used in paths and tables: ``real``, ``real2x`` or ``real+<condition>``."""
    return f"{REAL}+{condition}" if uses_synthetic(condition) else condition


def run_label(condition: str, aug: str) -> str:
    """The file stem of one run, as dvc.yaml names it: ``real-none``, ``real2x-none``, ``real+dfgan2x-classic``."""
    return f"{condition_label(condition)}-{aug}"


@dataclass(frozen=True)
class TrainingSet:
    """What one seed trains and validates on; ``train_source_rows`` is the prepared row of each training lesion."""

    train_images: np.ndarray  # uint8 (n_train, S, S): real first, then synthetic
    train_masks: np.ndarray
    train_source_rows: np.ndarray  # int64 (n_train,)
    train_part: np.ndarray  # int8 (n_train,): PART_REAL, PART_SYNTHETIC or PART_FLIPPED
    val_images: np.ndarray
    val_masks: np.ndarray
    val_rows: np.ndarray

    @property
    def n_train_real(self) -> int:
        return int((self.train_part == PART_REAL).sum())

    @property
    def n_train_synthetic(self) -> int:
        return int(np.isin(self.train_part, (PART_SYNTHETIC, PART_FLIPPED)).sum())

    @property
    def n_train(self) -> int:
        return len(self.train_part)

    @property
    def n_val(self) -> int:
        return len(self.val_rows)


def gan_seed_for(seed_position: int, gan_seeds: Sequence[int]) -> int:
    """The GAN seed whose synthetic set seed number ``seed_position`` of ``seg.seeds`` trains on (cycling)."""
    if not gan_seeds:
        raise ValueError("gan.seeds is empty")
    return int(gan_seeds[seed_position % len(gan_seeds)])


def assemble_training_set(
    prepared: PreparedData,
    synthetic_dir: str | Path,
    size: int,
    condition: str,
    gan_seed: int = 0,
) -> TrainingSet:
    """The real training images of ``size``, plus the condition's synthetic images (from GAN seed ``gan_seed``);
    validation = the size's fixed validation rows.

    ``synthetic_dir`` is the synthetic root (``data/synthetic``); it is not read for ``real`` and ``real2x``. A
    synthetic set with a lesion from outside this size's training rows is an error: it was made from another split
    and would leak validation, test or foreign lesions into training.
    """
    parsed = parse_condition(condition)
    real = prepared.train(size)
    val = prepared.val(size)

    images, masks, sources = [real.images] * parsed.real_copies, [real.masks] * parsed.real_copies, [real.rows] * parsed.real_copies
    parts = [np.full(len(real), PART_REAL, np.int8)] + [np.full(len(real), PART_REAL_REPEAT, np.int8)] * (parsed.real_copies - 1)
    if parsed.variant is not None:
        synthetic = load_synthetic(synthetic_dir, size, parsed.variant, gan_seed)
        for part_id, part in zip((PART_SYNTHETIC, PART_FLIPPED), synthetic.parts(parsed.copies)):
            _check_synthetic_sources(part.source_rows, real, condition, size)
            if part.images.shape[1:] != real.images.shape[1:]:
                raise ValueError(
                    f"{condition} synthetic images are {part.images.shape[1:]}, real ones {real.images.shape[1:]}"
                )
            images.append(part.images)
            masks.append(part.masks)
            sources.append(part.source_rows)
            parts.append(np.full(len(part), part_id, np.int8))

    return TrainingSet(
        train_images=np.concatenate(images).astype(np.uint8, copy=False),
        train_masks=np.concatenate(masks).astype(np.uint8, copy=False),
        train_source_rows=np.concatenate(sources).astype(np.int64, copy=False),
        train_part=np.concatenate(parts),
        val_images=np.asarray(val.images),
        val_masks=np.asarray(val.masks),
        val_rows=val.rows,
    )


def _check_synthetic_sources(source_rows: np.ndarray, real: ImageSet, condition: str, size: int) -> None:
    foreign = np.setdiff1d(source_rows, real.rows)
    if foreign.size:
        raise ValueError(
            f"{condition} synthetic set for size {size} has lesions from rows outside that size's training rows "
            f"(e.g. {foreign[:5].tolist()}): it was made from another split; rerun the synthesis stage"
        )
