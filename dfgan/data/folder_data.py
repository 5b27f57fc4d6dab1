"""A folder dataset (``data.format: folder``): plain image files and binary mask files, read into the same
images and masks the SIIM-ACR path gives :mod:`dfgan.data.prepare_siim`.

Layout under ``data.raw_dir``::

    images/<stem>.png                 one image per file (PNG, JPEG, TIFF, BMP; 8 or 16 bit; grayscale or colour)
    masks/<stem><suffix>.png          its mask (``data.mask_suffix``, e.g. ``_mask``; "" for the same stem)
    masks/<stem><suffix>_<k>.png      several masks of one image (k = 0, 1, ...): their union is the mask

or, for layouts that do not fit, ``data.pairs_csv``: a CSV under ``raw_dir`` with columns ``image,mask`` (paths
relative to ``raw_dir``; an empty mask cell means a negative image; several rows of one image are unioned).

The rules, stated once:
- **grey**: a colour image becomes its ITU-R BT.601 luma (``0.299 R + 0.587 G + 0.114 B``, OpenCV's rule); an
  alpha channel is dropped. A 16-bit image is scaled by its own minimum and maximum to 0-255 (the DICOM reader's
  rule for images without a window), so its whole range is kept rather than cut to the low byte.
- **mask**: a colour mask takes the maximum over its channels; a pixel is lesion where its value is at least
  ``data.mask_level`` x the largest value of the file's type (255 for 8 bit, 65535 for 16 bit) — with the
  default 0.5, 0/255 masks, anti-aliased edges and 0/1 masks stored as 0/65535 all work — and a mask whose values
  are only 0 and 1 is taken as it is.
- **size**: a mask of another size than its image is resized to the image's size with the mask rule of
  :func:`dfgan.data.prepared_writer.resize_mask` (area coverage at ``data.mask_threshold``), so a thin lesion never vanishes.
- **negatives**: an image whose mask has no foreground counts as a negative, exactly as SIIM's ``-1`` rows do;
  an image without any mask file is a negative or an error (``data.missing_mask: negative | error``).

Every problem (a mask without an image, an unreadable file, an empty folder, a bad CSV row) raises
:class:`dfgan.data.siim.PrepareError` naming the file, before anything is written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from dfgan.core.settings import Settings
from dfgan.data.siim import PrepareError, read_text_csv

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
IMAGES_DIR = "images"
MASKS_DIR = "masks"
PAIR_COLUMNS = ("image", "mask")


@dataclass(frozen=True)
class FolderImage:
    """One image of a folder dataset and its mask files (none: a negative)."""

    image_id: str  # the image's stem
    image_path: Path
    mask_paths: tuple[Path, ...]


def _listed(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _mask_owner(stem: str, suffix: str, images: dict[str, Path]) -> str | None:
    """The image stem a mask file's stem belongs to: ``<stem><suffix>`` or ``<stem><suffix>_<k>``."""
    if suffix and stem.endswith(suffix) and stem[: -len(suffix)] in images:
        return stem[: -len(suffix)]
    numbered = re.fullmatch(rf"(.+){re.escape(suffix)}_(\d+)", stem)
    if numbered and numbered.group(1) in images:
        return numbered.group(1)
    if not suffix and stem in images:
        return stem
    return None


def find_folder_images(raw_dir: Path, mask_suffix: str, missing_mask: str, pairs_csv: str | None) -> list[FolderImage]:
    """Pair every image with its mask files (sorted by stem); raise naming the first file that does not fit."""
    if not raw_dir.is_dir():
        raise PrepareError(f"{raw_dir}: raw data directory not found (data.raw_dir)")
    if pairs_csv:
        return _images_from_csv(raw_dir, raw_dir / pairs_csv, missing_mask)
    image_dir, mask_dir = raw_dir / IMAGES_DIR, raw_dir / MASKS_DIR
    for folder in (image_dir, mask_dir):
        if not folder.is_dir():
            raise PrepareError(f"{folder}: folder not found; a folder dataset has {IMAGES_DIR}/ and {MASKS_DIR}/ "
                               "(or set data.pairs_csv)")
    images: dict[str, Path] = {}
    for path in _listed(image_dir):
        if path.stem in images:
            raise PrepareError(f"{path}: another image has the same stem ({images[path.stem].name})")
        images[path.stem] = path
    if not images:
        raise PrepareError(f"{image_dir}: no image file ({', '.join(IMAGE_SUFFIXES)})")
    masks: dict[str, list[Path]] = {stem: [] for stem in images}
    for path in _listed(mask_dir):
        owner = _mask_owner(path.stem, mask_suffix, images)
        if owner is None:
            raise PrepareError(f"{path}: mask without an image (expected {image_dir}/<stem>.* for a mask named "
                               f"<stem>{mask_suffix}.* or <stem>{mask_suffix}_<k>.*; data.mask_suffix is {mask_suffix!r})")
        masks[owner].append(path)
    return [_checked(FolderImage(stem, images[stem], tuple(masks[stem])), missing_mask) for stem in sorted(images)]


def _checked(item: FolderImage, missing_mask: str) -> FolderImage:
    if not item.mask_paths and missing_mask == "error":
        raise PrepareError(f"{item.image_path}: image without a mask (set data.missing_mask: negative to count it "
                           "as a negative)")
    return item


def _images_from_csv(raw_dir: Path, csv_path: Path, missing_mask: str) -> list[FolderImage]:
    table = read_text_csv(csv_path, "pairs CSV (data.pairs_csv)")
    if tuple(table.columns[:2]) != PAIR_COLUMNS:
        raise PrepareError(f"{csv_path}: the header must start with {','.join(PAIR_COLUMNS)}, got {list(table.columns)}")
    if table.empty:
        raise PrepareError(f"{csv_path}: no rows")
    found: dict[str, tuple[Path, list[Path]]] = {}
    # Rows are counted as in the RLE table's messages: the first data row is row 1 (the header is row 0).
    for row, (image, mask) in enumerate(zip(table["image"], table["mask"]), start=1):
        image_path = raw_dir / image.strip()
        if not image.strip() or not image_path.is_file():
            raise PrepareError(f"{csv_path}: CSV row {row}: image file {image_path} not found")
        stem = image_path.stem
        if stem in found and found[stem][0] != image_path:
            raise PrepareError(f"{csv_path}: CSV row {row}: {image_path} has the same stem as {found[stem][0]}")
        paths = found.setdefault(stem, (image_path, []))[1]
        if mask.strip():
            mask_path = raw_dir / mask.strip()
            if not mask_path.is_file():
                raise PrepareError(f"{csv_path}: CSV row {row}: mask file {mask_path} not found")
            paths.append(mask_path)
    return [_checked(FolderImage(stem, found[stem][0], tuple(found[stem][1])), missing_mask) for stem in sorted(found)]


def _read_file(path: Path) -> np.ndarray:
    pixels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if pixels is None or pixels.size == 0:
        raise PrepareError(f"{path}: not a readable image file")
    if pixels.ndim == 3 and pixels.shape[2] == 4:
        pixels = pixels[:, :, :3]  # alpha dropped
    if pixels.ndim not in (2, 3) or pixels.dtype not in (np.uint8, np.uint16):
        raise PrepareError(f"{path}: unsupported image ({pixels.dtype}, shape {pixels.shape}); 8- or 16-bit "
                           "grayscale or colour is expected")
    return pixels


def read_folder_image(path: Path) -> np.ndarray:
    """An image file as uint8 (H, W): colour -> BT.601 luma; 16 bit scaled by its own min and max."""
    pixels = _read_file(path)
    if pixels.ndim == 3:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_BGR2GRAY) if pixels.shape[2] == 3 else pixels[:, :, 0]
    if pixels.dtype == np.uint8:
        return np.ascontiguousarray(pixels)
    low, high = float(pixels.min()), float(pixels.max())
    if high <= low:
        return np.zeros(pixels.shape, np.uint8)
    return np.round((pixels.astype(np.float64) - low) / (high - low) * 255.0).astype(np.uint8)


def read_folder_mask(path: Path, level: float) -> np.ndarray:
    """A mask file as uint8 (H, W) in {0, 1}: channel maximum, then ``>= level`` x the type's maximum (0/1 as is)."""
    pixels = _read_file(path)
    if pixels.ndim == 3:
        pixels = pixels.max(axis=2)
    if pixels.max() <= 1:
        return pixels.astype(np.uint8)
    full_scale = float(np.iinfo(pixels.dtype).max)
    return (pixels >= level * full_scale).astype(np.uint8)


def check_folder_data(settings: Settings) -> str:
    """The cheap checks of a folder dataset: every image pairs with its masks and every file decodes; enough images
    with foreground for ``max(sizes) + data.test_size``. Returns a one-line summary."""
    data = settings.data
    raw_dir = Path(data.raw_dir)
    found = find_folder_images(raw_dir, data.mask_suffix or "", data.missing_mask, data.pairs_csv)
    positives = 0
    for item in found:
        read_folder_image(item.image_path)
        positives += any([read_folder_mask(path, data.mask_level).any() for path in item.mask_paths])
    needed = max(settings.sizes) + data.test_size
    masks = sum(len(item.mask_paths) for item in found)
    if positives < needed:
        raise PrepareError(
            f"{raw_dir}: {positives} images have a lesion in their mask, but max(sizes) + data.test_size = {needed}; "
            "lower the sizes or the test size"
        )
    return f"{raw_dir}: {len(found)} images, {masks} mask files, {positives} positive, {len(found) - positives} negative"
