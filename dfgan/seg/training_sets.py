"""The training conditions of Tables 1-2 and the U-Net++ training set each one assembles.

- ``real``: the real training images of one size (the paper's "N R").
- ``real2x``: the same real images, each listed twice (a control: "more of the same", no synthetic image).
- ``<variant>`` (``pix2pix``, ``dfgan``): real + one synthetic image per real lesion of that GAN ("N R + N S").
- ``<variant>2x`` (e.g. ``dfgan2x``): real + synthetic + synthetic grown from flipped lesions ("N R + 2N S").
- Controls a user could run without a GAN (``seg.real_conditions``): ``real+flip`` (real + the mirror image of each
  training image: the control for R + S and the flip half of R + 2S); ``real+paste`` (real + each training lesion's
  real pixels pasted, at the same place, into another training image, whose mask becomes the union of both lesions:
  the GAN's input with a real chest instead of a painted one); ``real+paste2x`` (+ the flipped lesions pasted too:
  the control for R + 2S).
- The oracle ``real+fresh``: real + as many *fresh* real training positives as a GAN adds (one per training lesion),
  the next rows of the training order (never a validation or test row: :meth:`PreparedData.fresh`). Its gain over R
  is what a perfect GAN could give; the report reads every GAN's gain against it (ρ).

Files are named ``real-<aug>``, ``real2x-<aug>`` and ``real+<condition>-<aug>`` (:func:`dfgan.core.paths.run_label`).
Seed number k of ``seg.seeds`` reads the synthetic set of GAN seed ``gan.seeds[k mod len(gan.seeds)]``
(:func:`gan_seed_for`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from dfgan.core.errors import InputError
from dfgan.core.rules import DOUBLED_SUFFIX, REAL, REAL_CONDITIONS
from dfgan.core.settings import Settings
from dfgan.data.prepared_arrays import ImageSet, PreparedData
from dfgan.gan.synthetic_sets import load_synthetic

FLIPPED_SUFFIX = DOUBLED_SUFFIX
REAL_REPEATED, REAL_FLIPPED, REAL_PASTED, REAL_PASTED2X, REAL_FRESH = REAL_CONDITIONS[1:]  # without a GAN

# Where each training image comes from (TrainingSet.train_part).
(PART_REAL, PART_SYNTHETIC, PART_FLIPPED, PART_REAL_REPEAT, PART_MIRRORED, PART_PASTED, PART_PASTED_FLIPPED,
 PART_FRESH) = range(8)
# The extra images each control adds: mirrored real images, pasted lesions, pasted flipped lesions.
CONTROL_PARTS = {REAL_FLIPPED: (PART_MIRRORED,), REAL_PASTED: (PART_PASTED,),
                 REAL_PASTED2X: (PART_PASTED, PART_PASTED_FLIPPED)}


@dataclass(frozen=True)
class Condition:
    """A parsed condition name: which GAN variant supplies synthetic images, how many synthetic copies (0, 1 or 2),
    how many times the real images are listed (2 for the ``real2x`` control), and which GAN-free extra images a
    control adds (:data:`CONTROL_PARTS`)."""

    name: str
    variant: str | None
    copies: int
    real_copies: int = 1
    extra_parts: tuple[int, ...] = ()


def parse_condition(condition: str) -> Condition:
    """``real`` -> no synthetic; ``real2x`` -> the real images twice; ``real+flip``/``real+paste``/``real+paste2x``
    -> the controls; ``real+fresh`` -> the oracle; ``dfgan`` -> 1 copy of DF-GAN's; ``dfgan2x`` -> plain +
    flipped-lesion copies."""
    if condition == REAL:
        return Condition(condition, None, 0)
    if condition == REAL_FRESH:
        return Condition(condition, None, 0, extra_parts=(PART_FRESH,))
    if condition == REAL_REPEATED:
        return Condition(condition, None, 0, real_copies=2)
    if condition in CONTROL_PARTS:
        return Condition(condition, None, 0, extra_parts=CONTROL_PARTS[condition])
    if condition.endswith(FLIPPED_SUFFIX) and len(condition) > len(FLIPPED_SUFFIX):
        return Condition(condition, condition[: -len(FLIPPED_SUFFIX)], 2)
    if not condition:
        raise ValueError("empty condition name")
    return Condition(condition, condition, 1)


def trained_conditions(settings: Settings) -> list[str]:
    """Every trained condition, as dvc.yaml lays them out: ``seg.real_conditions`` (``seg_real``), one R + S per
    GAN variant in ``variants`` (``seg_synth``) and R + 2S per variant in ``seg.flipped_variants`` (``seg_synth2x``)."""
    return [
        *settings.seg.real_conditions,
        *settings.variants,
        *[f"{v}{FLIPPED_SUFFIX}" for v in settings.seg.flipped_variants],
    ]


def require_condition(settings: Settings, condition: str, source: str | Path) -> None:
    """Refuse a ``--condition`` that these params do not train (it would have no DVC stage and no report row)."""
    conditions = trained_conditions(settings)
    if condition not in conditions:
        raise InputError(
            f"{source}: condition {condition!r} is not trained by these params (they train {', '.join(conditions)}); "
            "see seg.real_conditions, variants and seg.flipped_variants"
        )


def uses_synthetic(condition: str) -> bool:
    """Whether the condition trains on a GAN's images (and so reads ``gan.seeds``)."""
    return parse_condition(condition).variant is not None


# How the report names the conditions (the paper's words where it has them).
AUG_TITLES = {"none": "no", "classic": "yes"}  # the paper's "Classic Aug." column
VARIANT_TITLES = {"pix2pix": "Pix2Pix", "dfgan": "DF-GAN", "dfgan_paper": "DF-GAN"}
CONTROL_TITLES = {REAL_REPEATED: "R ×2 (control)", REAL_FLIPPED: "R + flip (control)",
                  REAL_PASTED: "R + paste (control)", REAL_PASTED2X: "R + paste 2x (control)",
                  REAL_FRESH: "R + fresh (oracle)"}


def variant_title(variant: str, weights: dict[str, float] | None = None) -> str:
    """``DF-GAN (λ_FID 0.01)``: a variant's title with its FID-loss weight (``weights``: variant -> weight, as
    :func:`dfgan.core.settings.variant_lambda_fid` gives them) so that every number names its weight."""
    name = VARIANT_TITLES.get(variant, variant)
    weight = (weights or {}).get(variant)
    return f"{name} (λ_FID {weight:g})" if weight else name


def condition_title(condition: str, weights: dict[str, float] | None = None) -> str:
    """``R``, ``R ×2 (control)``, ``R + S (DF-GAN (λ_FID 0.01))``, ``R + 2S (Pix2Pix)``."""
    if condition == REAL:
        return "R"
    if condition in CONTROL_TITLES:
        return CONTROL_TITLES[condition]
    parsed = parse_condition(condition)
    return f"R + {'2S' if parsed.copies == 2 else 'S'} ({variant_title(str(parsed.variant), weights)})"


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
    def n_train_control(self) -> int:
        """Images a GAN-free control added (mirrored images, pasted lesions)."""
        return int(np.isin(self.train_part, (PART_MIRRORED, PART_PASTED, PART_PASTED_FLIPPED)).sum())

    @property
    def n_train_fresh(self) -> int:
        """Fresh real positives the oracle added."""
        return int((self.train_part == PART_FRESH).sum())

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
    seed: int = 0,
) -> TrainingSet:
    """The real training images of ``size``, plus the condition's synthetic images (from GAN seed ``gan_seed``) or
    its control images (``seed``, the U-Net++ seed, picks the host of each pasted lesion); validation = the size's
    fixed validation rows.

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
    for part_id in parsed.extra_parts:
        if part_id == PART_FRESH:
            fresh = prepared.fresh(size)
            extra_images, extra_masks, extra_rows = np.asarray(fresh.images), np.asarray(fresh.masks), fresh.rows
        else:
            extra_images, extra_masks = control_images(np.asarray(real.images), np.asarray(real.masks), part_id, seed)
            extra_rows = real.rows
        images.append(extra_images)
        masks.append(extra_masks)
        sources.append(extra_rows)
        parts.append(np.full(len(extra_rows), part_id, np.int8))

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


def mirrored(images: np.ndarray) -> np.ndarray:
    """Horizontal mirror images of an (n, H, W) stack."""
    return np.ascontiguousarray(images[:, :, ::-1])


def paste_hosts(n: int, seed: int, salt: int) -> np.ndarray:
    """For each of n lesions, the index of another image to paste it into: one random cycle (no image is its own
    host, every image hosts exactly one lesion), fixed by ``seed``; ``salt`` gives the flipped lesions other hosts."""
    if n < 2:
        raise ValueError(f"pasting lesions needs at least 2 training images, got {n}")
    order = np.random.default_rng([seed, salt]).permutation(n)
    hosts = np.empty(n, np.int64)
    hosts[order] = np.roll(order, -1)
    return hosts


def paste_lesions(
    lesion_images: np.ndarray, lesion_masks: np.ndarray, host_images: np.ndarray, host_masks: np.ndarray,
    hosts: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Image k of the result: host image ``hosts[k]`` with lesion k's real pixels (inside lesion mask k) pasted at
    the same place; its mask is the union of the host's own lesion and the pasted one, so it stays exact."""
    lesion = lesion_masks != 0
    pasted = np.where(lesion, lesion_images, host_images[hosts]).astype(host_images.dtype, copy=False)
    union = np.logical_or(lesion, host_masks[hosts] != 0).astype(host_masks.dtype)
    return pasted, union


def control_images(images: np.ndarray, masks: np.ndarray, part: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The N extra (images, masks) of one control part, from the N real training images and masks."""
    if part == PART_MIRRORED:
        return mirrored(images), mirrored(masks)
    if part == PART_PASTED:
        return paste_lesions(images, masks, images, masks, paste_hosts(len(images), seed, salt=1))
    if part == PART_PASTED_FLIPPED:  # the mirrored lesion over an unmirrored host, as R + 2S grows flipped lesions
        return paste_lesions(mirrored(images), mirrored(masks), images, masks, paste_hosts(len(images), seed, salt=2))
    raise ValueError(f"not a control part: {part}")
