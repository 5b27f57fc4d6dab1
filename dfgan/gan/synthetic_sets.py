"""Reading the synthesis stage's output: ``data/synthetic/<size>/<variant>/s<gan seed>/synthetic.npz``.

Arrays (names fixed by the synthesis stage):

- ``images``, ``masks``: uint8 (N, S, S), masks in {0, 1}; one synthetic image per real training lesion.
- ``source_rows``: int64 (N,), the prepared row whose lesion (mask) each synthetic image was grown around.
- ``flipped_images``, ``flipped_masks``, ``flipped_source_rows``: the extra N made from horizontally flipped
  lesions (the paper's Table 2, "R + 2S").
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dfgan.core.paths import synthetic_dir

SYNTHETIC_FILE = "synthetic.npz"
PREVIEW_FILE = "preview.png"
SYNTHETIC_KEYS = (
    "images",
    "masks",
    "source_rows",
    "flipped_images",
    "flipped_masks",
    "flipped_source_rows",
)


@dataclass(frozen=True)
class SyntheticPart:
    """One set of synthetic images (plain or flipped) with the prepared rows of their source lesions."""

    images: np.ndarray  # uint8 (n, S, S)
    masks: np.ndarray  # uint8 (n, S, S), {0, 1}
    source_rows: np.ndarray  # int64 (n,)

    def __len__(self) -> int:
        return len(self.source_rows)

    def keep_sources(self, allowed_rows: np.ndarray) -> SyntheticPart:
        """Only the images whose source lesion is one of ``allowed_rows`` (order kept)."""
        keep = np.isin(self.source_rows, allowed_rows)
        return SyntheticPart(self.images[keep], self.masks[keep], self.source_rows[keep])


@dataclass(frozen=True)
class SyntheticSet:
    plain: SyntheticPart
    flipped: SyntheticPart

    def parts(self, copies: int) -> list[SyntheticPart]:
        """The plain set for 1 copy (R + S), plain and flipped for 2 copies (R + 2S)."""
        if copies not in (0, 1, 2):
            raise ValueError(f"synthetic copies must be 0, 1 or 2, got {copies}")
        return [self.plain, self.flipped][:copies]


def synthetic_path(root: str | Path, size: int, variant: str, seed: int) -> Path:
    """The file of one GAN seed's synthetic set under the synthetic ``root`` (the pipeline's: ``data/synthetic``)."""
    return synthetic_dir(size, variant, seed, root) / SYNTHETIC_FILE


def _checked_part(path: Path, images: np.ndarray, masks: np.ndarray, rows: np.ndarray, label: str) -> SyntheticPart:
    if images.ndim != 3 or images.shape != masks.shape or len(rows) != len(images):
        raise ValueError(
            f"{path}: {label} images {images.shape}, masks {masks.shape} and source rows ({len(rows)}) disagree"
        )
    if masks.size and masks.max() > 1:
        raise ValueError(f"{path}: {label} masks must be in {{0, 1}}, found max {masks.max()}")
    return SyntheticPart(images.astype(np.uint8, copy=False), masks.astype(np.uint8, copy=False), rows.astype(np.int64))


def load_synthetic(root: str | Path, size: int, variant: str, seed: int) -> SyntheticSet:
    """Load the synthetic set of one (training size, variant, GAN seed), naming the file when it or a key is missing."""
    path = synthetic_path(root, size, variant, seed)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: run the synthesis stage for size {size}, variant '{variant}', GAN seed {seed}"
        )
    with np.load(path) as npz:
        missing = [k for k in SYNTHETIC_KEYS if k not in npz.files]
        if missing:
            raise KeyError(f"{path}: missing arrays {missing} (has {sorted(npz.files)})")
        arrays = {k: npz[k] for k in SYNTHETIC_KEYS}
    plain = _checked_part(path, arrays["images"], arrays["masks"], arrays["source_rows"], "plain")
    flipped = _checked_part(
        path, arrays["flipped_images"], arrays["flipped_masks"], arrays["flipped_source_rows"], "flipped"
    )
    return SyntheticSet(plain, flipped)
