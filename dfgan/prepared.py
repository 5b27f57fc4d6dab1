"""The prepared dataset: the contract between the ``prepare`` stage and everything downstream.

Layout of ``data/prepared/`` (all written by ``dfgan.prepare``):

- ``images.npy``  uint8 (N, S, S): every kept (positive) image, resized to ``data.image_size``.
- ``masks.npy``   uint8 (N, S, S) in {0, 1}: the union of that image's pneumothorax regions.
- ``index.csv``   one row per image: ``row, image_id, dicom_path, mask_fraction, split, train_rank``
  (``dicom_path`` is relative to ``data.raw_dir``; ``split`` is ``test`` or ``train``; ``train_rank`` orders the
  training pool, -1 on test rows).
- ``splits.json`` ``{"seed": int, "test": [row, ...], "train": {"<size>": [row, ...], ...}}``; training subsets are
  nested (the first k rows of the training order) and disjoint from ``test``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

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


@dataclass(frozen=True)
class PreparedData:
    images: np.ndarray
    masks: np.ndarray
    index: pd.DataFrame
    test_rows: np.ndarray
    train_rows: dict[int, np.ndarray]

    @property
    def sizes(self) -> list[int]:
        return sorted(self.train_rows)

    def subset(self, rows: np.ndarray) -> ImageSet:
        rows = np.asarray(rows, dtype=np.int64)
        return ImageSet(self.images[rows], self.masks[rows], rows)

    def train(self, size: int) -> ImageSet:
        """The nested training subset of ``size`` images (never a test image)."""
        if size not in self.train_rows:
            raise KeyError(f"no training subset of size {size}; prepared sizes are {self.sizes}")
        return self.subset(self.train_rows[size])

    def test(self) -> ImageSet:
        return self.subset(self.test_rows)


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
    return PreparedData(images, masks, index, np.asarray(splits["test"], dtype=np.int64), train_rows)


def save_prepared(
    directory: str | Path,
    images: np.ndarray,
    masks: np.ndarray,
    index: pd.DataFrame,
    test_rows: np.ndarray,
    train_rows: dict[int, np.ndarray],
    seed: int,
) -> None:
    """Write the four files of the contract (the inverse of :func:`load_prepared`)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    np.save(directory / IMAGES_FILE, np.ascontiguousarray(images, dtype=np.uint8))
    np.save(directory / MASKS_FILE, np.ascontiguousarray(masks, dtype=np.uint8))
    index.to_csv(directory / INDEX_FILE, index=False)
    splits = {
        "seed": int(seed),
        "test": [int(r) for r in test_rows],
        "train": {str(k): [int(r) for r in v] for k, v in sorted(train_rows.items())},
    }
    (directory / SPLITS_FILE).write_text(json.dumps(splits, indent=1) + "\n")
