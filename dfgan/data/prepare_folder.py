"""The prepare stage on a folder dataset (``data.format: folder``, :mod:`dfgan.data.folder_data`): images and mask
files -> the images with foreground and the union of their masks, written by :mod:`dfgan.data.prepared_writer`."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np

from dfgan.data.folder_data import FolderImage, find_folder_images, read_folder_image, read_folder_mask
from dfgan.data.prepared_writer import (
    PreparedImage, remove_stale_staging, resize_mask, run_prepare_jobs, split_and_write,
)


def prepare_folder_one(job: tuple[FolderImage, int, float, float]) -> PreparedImage:
    """Read one image of a folder dataset and the union of its masks (each brought to the image's size), resize."""
    item, size, threshold, level = job
    image = read_folder_image(item.image_path)
    mask = np.zeros(image.shape, np.uint8)
    for path in item.mask_paths:
        part = read_folder_mask(path, level)
        mask |= part if part.shape == image.shape else resize_mask(part, (image.shape[0], image.shape[1]), threshold)
    small_image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
    return PreparedImage(small_image, resize_mask(mask, size, threshold), float(mask.mean()), ())


def prepare_folder_dataset(
    raw_dir: str | Path,
    out_dir: str | Path,
    metrics_path: str | Path,
    *,
    image_size: int,
    test_size: int,
    sizes: Sequence[int],
    seed: int,
    workers: int,
    mask_suffix: str = "_mask",
    missing_mask: str = "negative",
    pairs_csv: str | None = None,
    mask_level: float = 0.5,
    mask_threshold: float = 0.25,
    val_fraction: float = 0.0,
) -> dict[str, Any]:
    """Read a folder dataset (:mod:`dfgan.data.folder_data`), keep the images with foreground, resize, split, write.

    The output is the SIIM path's: a folder copy of a SIIM tree (decoded images and masks as files) gives the
    same arrays.
    """
    raw_dir, out_dir, metrics_path = Path(raw_dir), Path(out_dir), Path(metrics_path)
    remove_stale_staging(out_dir, metrics_path)
    found = find_folder_images(raw_dir, mask_suffix, missing_mask, pairs_csv)
    jobs = [(item, image_size, mask_threshold, mask_level) for item in found]
    prepared = list(run_prepare_jobs(prepare_folder_one, jobs, workers))
    keep = [k for k, p in enumerate(prepared) if p.mask.any()]
    without_mask = sum(not item.mask_paths for item in found)
    head: dict[str, Any] = {
        "format": "folder",
        "image_files": len(found),
        "mask_files": sum(len(item.mask_paths) for item in found),
        "positives": len(keep),
        "negatives": len(found) - len(keep),
        "kept": len(keep),
        "skipped": {"negative": len(found) - len(keep) - without_mask, "missing_mask": without_mask},
    }
    items = [found[k] for k in keep]
    regions = np.array([len(item.mask_paths) for item in items])
    return split_and_write([(i.image_id, i.image_path) for i in items], [prepared[k] for k in keep], regions,
                           raw_dir, out_dir, metrics_path, head, {"mask_level": mask_level},
                           image_size=image_size, test_size=test_size, sizes=sizes, seed=seed, val_fraction=val_fraction)
