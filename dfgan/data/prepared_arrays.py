"""The prepared dataset: the contract between the ``prepare`` stage and everything downstream.

Layout of ``data/prepared/`` (all written by ``dfgan.data.prepared_writer``):

- ``images.npy``  uint8 (N, S, S): every kept (positive) image, resized to ``data.image_size``.
- ``masks.npy``   uint8 (N, S, S) in {0, 1}: the union of that image's pneumothorax regions.
- ``index.csv``   one row per image: ``row, image_id, dicom_path, mask_fraction, split, train_rank``
  (``dicom_path`` is relative to ``data.raw_dir``; ``split`` is ``test`` or ``train``; ``train_rank`` orders the
  training pool, -1 on test rows).
- ``splits.json`` ``{"seed": int, "val_fraction": float, "test": [row, ...], "train": {"<size>": [row, ...]},
  "val": {"<size>": [row, ...]}}``. The N images of training size N (the "pool": the first N rows of the training
  order, so pools are nested) are split once, independently of any model seed, into ``val`` (for picking the
  U-Net++'s best step) and ``train`` (everything else). The GANs, the FID-loss statistics, the synthetic sets and
  the U-Net++ all train on ``train`` only, so no model selection ever looks at an image a GAN was fitted to.
  ``test`` is disjoint from every pool.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from dfgan.core.splits import validation_count

IMAGES_FILE = "images.npy"
MASKS_FILE = "masks.npy"
INDEX_FILE = "index.csv"
SPLITS_FILE = "splits.json"


@dataclass(frozen=True)
class ImageSet:
    """Images and masks of one split, with the rows of the prepared arrays they came from."""

    images: np.ndarray  # uint8 (n, S, S)
    masks: np.ndarray  # uint8 (n, S, S), {0, 1}
    rows: np.ndarray  # int64 (n,)

    def __len__(self) -> int:
        return len(self.rows)


def split_pools(
    pools: dict[int, np.ndarray], val_fraction: float, seed: int
) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
    """Split each size's pool into (train, val) rows, seeded by (seed, size); both keep the pool's order."""
    train_rows, val_rows = {}, {}
    for size, pool in pools.items():
        pool = np.asarray(pool, dtype=np.int64)
        chosen = np.zeros(len(pool), dtype=bool)
        n_val = validation_count(len(pool), val_fraction)
        chosen[np.random.default_rng([seed, int(size)]).permutation(len(pool))[:n_val]] = True
        train_rows[int(size)], val_rows[int(size)] = pool[~chosen], pool[chosen]
    return train_rows, val_rows


@dataclass(frozen=True)
class PreparedData:
    images: np.ndarray
    masks: np.ndarray
    index: pd.DataFrame
    test_rows: np.ndarray
    train_rows: dict[int, np.ndarray]
    val_rows: dict[int, np.ndarray]

    @property
    def sizes(self) -> list[int]:
        return sorted(self.train_rows)

    def subset(self, rows: np.ndarray) -> ImageSet:
        rows = np.asarray(rows, dtype=np.int64)
        return ImageSet(self.images[rows], self.masks[rows], rows)

    def _check_size(self, size: int) -> None:
        if size not in self.train_rows:
            raise KeyError(f"no training subset of size {size}; prepared sizes are {self.sizes}")

    def train(self, size: int) -> ImageSet:
        """What every model of training size ``size`` fits to: the pool minus its validation rows."""
        self._check_size(size)
        return self.subset(self.train_rows[size])

    def val(self, size: int) -> ImageSet:
        """The validation rows of size ``size`` (U-Net++ model selection only; never seen by a GAN)."""
        self._check_size(size)
        return self.subset(self.val_rows.get(size, np.empty(0, np.int64)))

    def test(self) -> ImageSet:
        return self.subset(self.test_rows)

    def fresh_rows(self, size: int) -> np.ndarray:
        """The rows that follow size ``size``'s pool in the training order, as many as its training rows: real
        positives no model of this size trained or validated on, and never a test row (the oracle ``real+fresh``).
        Fewer when the training pool runs out (:meth:`fresh` refuses those)."""
        self._check_size(size)
        ranks = self.index.set_index("row")["train_rank"] if "row" in self.index.columns else self.index["train_rank"]
        by_rank = ranks[ranks >= 0].sort_values()
        wanted = len(self.train_rows[size])
        rows = by_rank[(by_rank >= size) & (by_rank < size + wanted)].index.to_numpy(np.int64)
        used = np.concatenate([self.train_rows[size], self.val_rows.get(size, np.empty(0, np.int64)), self.test_rows])
        if np.isin(rows, used).any():  # the training order would have to be broken for this to happen
            raise ValueError(f"fresh rows of size {size} overlap its training, validation or test rows")
        return rows

    def fresh(self, size: int) -> ImageSet:
        """The images of :meth:`fresh_rows`; an :class:`NotEnoughFresh` error when the pool has too few."""
        rows = self.fresh_rows(size)
        wanted = len(self.train_rows[size])
        if len(rows) < wanted:
            raise NotEnoughFresh(
                f"size {size} needs {wanted} fresh training positives (ranks {size}-{size + wanted - 1} of the training "
                f"order) but the prepared pool has only {len(rows)} beyond its first {size}"
            )
        return self.subset(rows)


class NotEnoughFresh(ValueError):
    """The training pool holds too few positives beyond a size's own for the oracle condition ``real+fresh``."""


def load_prepared(directory: str | Path) -> PreparedData:
    """Load ``data/prepared`` (memory-mapped arrays), checking that every file of the contract is there."""
    directory = Path(directory)
    for name in (IMAGES_FILE, MASKS_FILE, INDEX_FILE, SPLITS_FILE):
        if not (directory / name).is_file():
            raise FileNotFoundError(f"{directory / name} is missing: run the 'prepare' stage first")
    images = np.load(directory / IMAGES_FILE, mmap_mode="r")
    masks = np.load(directory / MASKS_FILE, mmap_mode="r")
    index = pd.read_csv(directory / INDEX_FILE)
    splits = json.loads((directory / SPLITS_FILE).read_text())
    train_rows = {int(k): np.asarray(v, dtype=np.int64) for k, v in splits["train"].items()}
    val_rows = {int(k): np.asarray(v, dtype=np.int64) for k, v in splits.get("val", {}).items()}
    return PreparedData(images, masks, index, np.asarray(splits["test"], dtype=np.int64), train_rows, val_rows)


def save_prepared(
    directory: str | Path,
    images: np.ndarray,
    masks: np.ndarray,
    index: pd.DataFrame,
    test_rows: np.ndarray,
    train_rows: dict[int, np.ndarray],
    seed: int,
    val_rows: dict[int, np.ndarray] | None = None,
    val_fraction: float = 0.0,
) -> None:
    """Write the four files of the contract (the inverse of :func:`load_prepared`)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    np.save(directory / IMAGES_FILE, np.ascontiguousarray(images, dtype=np.uint8))
    np.save(directory / MASKS_FILE, np.ascontiguousarray(masks, dtype=np.uint8))
    index.to_csv(directory / INDEX_FILE, index=False)
    val_rows = val_rows or {}
    splits = {
        "seed": int(seed),
        "val_fraction": float(val_fraction),
        "test": [int(r) for r in test_rows],
        "train": {str(k): [int(r) for r in v] for k, v in sorted(train_rows.items())},
        "val": {str(k): [int(r) for r in val_rows.get(k, [])] for k in sorted(train_rows)},
    }
    (directory / SPLITS_FILE).write_text(json.dumps(splits, indent=1) + "\n")
