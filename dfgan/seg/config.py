"""What one U-Net++ run (a condition and an augmentation, every seed) reads of the settings: :class:`SegConfig`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from dfgan.core.settings import AUGS, ClassicAugmentation, NoAugmentation, SegSettings

# SegConfig fields that are not a seg key of the same name (seeds: seg.seeds, plus seg.extra_seeds at some sizes).
CHOSEN = ("aug", "augmentation", "seeds")


@dataclass(frozen=True)
class SegConfig:
    """The ``seg`` keys of the U-Net++ and its training, and the augmentation of this run (``--aug``). Not the lists
    of conditions (``seg.real_conditions``, ``seg.flipped_variants``): they decide which runs exist, not what one
    computes."""

    encoder: str
    decoder_channels: tuple[int, ...]
    encoder_weights: str | None
    encoder_weights_path: str | None
    seeds: tuple[int, ...]
    schedule: str
    epochs: int
    patience: int | None
    min_rounds: int
    budget_factor: float
    batch_size: int
    lr: float
    bce_weight: float
    dice_weight: float
    threshold: float
    device: str
    compile: str
    cuda_graphs: bool
    workers: int
    augment_on: str
    aug: str
    augmentation: NoAugmentation | ClassicAugmentation

    @classmethod
    def of(cls, seg: SegSettings, aug: str, seeds: tuple[int, ...] | None = None) -> SegConfig:
        """The config of the runs with augmentation ``aug`` (``seg.augmentations.<aug>``) and U-Net++ ``seeds``
        (default ``seg.seeds``; a size of ``gan.extra_sizes`` has more: :func:`dfgan.core.settings.seg_seeds_at`)."""
        if aug not in AUGS:
            raise KeyError(f"seg.augmentations has no '{aug}' entry (has {list(AUGS)})")
        names = [f.name for f in dataclasses.fields(cls) if f.name not in CHOSEN]
        return cls(**{name: getattr(seg, name) for name in names}, aug=aug,
                   augmentation=getattr(seg.augmentations, aug), seeds=seg.seeds if seeds is None else seeds)
