"""SIIM-ACR tree -> the prepared arrays of :mod:`dfgan.data.prepared_arrays`.

Everything is read, decoded and validated before anything is written: a bad input raises :class:`PrepareError`
(naming the file or the CSV row and ImageId) and leaves no output behind. The output directory is written under a
hidden, git-ignored staging name (``data/.prepared.staging``) and swapped in at the end, so a stale or half-written
``data/prepared`` never survives; a staging directory left by a killed run is removed when the stage next starts.

Run-length codes are decoded on each DICOM's own grid (``data.rle_grid: native``) or on a fixed grid (``<H>x<W>``,
for a table written before the DICOMs were resized), then resized with the mask rule. Rows repeating the same
region of the same image are counted and dropped.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import cv2
import numpy as np
import pandas as pd
from tqdm import tqdm

from dfgan.core.runtime import progress_disabled, worker_pool
from dfgan.core.settings import DataSettings
from dfgan.data.dicom_io import DicomError, read_dicom
from dfgan.data.folder_data import FolderImage, find_folder_images, read_folder_image, read_folder_mask
from dfgan.data.prepared_arrays import save_prepared, split_pools
from dfgan.data.rle import RLEError, RLEOverrunError, code_reading, decode_union, is_empty_code
from dfgan.data.siim import CODE_COLUMN, ID_COLUMN, PrepareError, find_dicoms, read_rle_table

STAGING_SUFFIX = ".staging"
NATIVE_GRID = "native"
GRID_ASPECT_TOLERANCE = 0.01


@dataclass(frozen=True)
class PositiveImage:
    """A positive ImageId with its non-empty codes, the CSV rows they came from, and its DICOM."""

    image_id: str
    codes: tuple[str, ...]
    rows: tuple[int, ...]
    dicom_path: Path


def staging_path(path: Path) -> Path:
    """Where ``path`` is written before it is swapped in: a hidden sibling that ``.gitignore`` covers."""
    return path.with_name(f".{path.name}{STAGING_SUFFIX}")


def remove_stale_staging(*paths: Path) -> None:
    """Remove what a killed run left: the staging copies (and the ``<name>.tmp`` of earlier versions)."""
    for path in paths:
        for leftover in (staging_path(path), path.with_name(path.name + ".tmp")):
            if leftover.is_dir():
                shutil.rmtree(leftover, ignore_errors=True)
            elif leftover.exists():
                leftover.unlink()


def parse_rle_grid(value: str) -> tuple[int, int] | None:
    """``native`` -> None (each DICOM's own size); ``<H>x<W>`` -> (H, W)."""
    if value == NATIVE_GRID:
        return None
    height, _, width = value.partition("x")
    if not (height.isdigit() and width.isdigit() and int(height) > 0 and int(width) > 0):
        raise PrepareError(f"data.rle_grid must be native or <H>x<W> (e.g. 1024x1024), got {value!r}")
    return int(height), int(width)


def group_codes(table: pd.DataFrame) -> tuple[dict[str, tuple[tuple[str, ...], tuple[int, ...]]], list[int]]:
    """ImageId -> (distinct non-empty codes, their CSV rows), and the CSV rows that repeat an earlier row exactly.

    Images whose only rows are ``-1`` map to empty tuples. A repeated region would otherwise count twice in
    ``regions_per_image``; the repeats are dropped and counted.
    """
    groups: dict[str, tuple[tuple[str, ...], tuple[int, ...]]] = {}
    seen: set[tuple[str, str]] = set()
    duplicates: list[int] = []
    for image_id, code, row in zip(table[ID_COLUMN], table[CODE_COLUMN], table["csv_row"]):
        codes, rows = groups.get(image_id, ((), ()))
        key = (image_id, "-1" if is_empty_code(code) else " ".join(code.split()))
        if key in seen:
            duplicates.append(int(row))
        elif not is_empty_code(code):
            codes, rows = codes + (code,), rows + (int(row),)
        seen.add(key)
        groups[image_id] = (codes, rows)
    return groups, duplicates


# ----------------------------------------------------------------------------------------------------------------
# Decoding and resizing (runs in worker processes).


@dataclass(frozen=True)
class PreparedImage:
    image: np.ndarray  # uint8 (S, S)
    mask: np.ndarray  # uint8 (S, S) in {0, 1}
    native_fraction: float  # mask area fraction at the native size
    readings: tuple[str, ...]  # per code: relative / absolute / both (see dfgan.data.rle.code_reading); auto mode only


def resize_mask(mask: np.ndarray, size: int | tuple[int, int], threshold: float) -> np.ndarray:
    """Area-resize a binary mask to ``size`` (square) or (height, width) and keep pixels at least ``threshold``
    covered; thin regions survive because a non-empty mask always keeps its best-covered pixels."""
    height, width = (size, size) if isinstance(size, int) else size
    coverage = cv2.resize(mask.astype(np.float32), (width, height), interpolation=cv2.INTER_AREA)
    small = (coverage >= threshold).astype(np.uint8)
    if mask.any() and not small.any():
        small = (coverage >= coverage.max()).astype(np.uint8)
    return small


def larger_grid_guess(height: int, width: int, end: int) -> str:
    """The smallest power-of-two enlargement of a ``height`` x ``width`` image whose grid holds pixel ``end``."""
    factor = 2 ** max(1, math.ceil(math.log2(math.sqrt(end / (height * width)))))
    return f"{height * factor}x{width * factor}"


def _grid_for(item: PositiveImage, shape: tuple[int, ...], grid: tuple[int, int] | None) -> tuple[int, int]:
    """The grid the image's codes are decoded on; a fixed grid must have the DICOM's aspect ratio."""
    height, width = int(shape[0]), int(shape[1])
    if grid is None:
        return height, width
    if abs(grid[0] / grid[1] - height / width) > GRID_ASPECT_TOLERANCE * height / width:
        raise PrepareError(
            f"{item.dicom_path}: the DICOM is {height}x{width} but data.rle_grid is {grid[0]}x{grid[1]}, another "
            f"aspect ratio; a resized copy keeps the grid's shape, so set data.rle_grid to this table's grid"
        )
    return grid


def prepare_one(job: tuple[PositiveImage, int, float, str, tuple[int, int] | None]) -> PreparedImage:
    """Read one DICOM, decode its RLE union on the codes' grid (``grid``, or the DICOM's own size), resize both."""
    item, size, threshold, mode, grid = job
    image = read_dicom(item.dicom_path)
    height, width = _grid_for(item, image.shape, grid)
    readings: tuple[str, ...] = ()
    try:
        if mode == "auto":
            readings = tuple(code_reading(c, height * width, item.image_id, r) for c, r in zip(item.codes, item.rows))
        mask = decode_union(item.codes, height, width, item.image_id, rows=item.rows, mode=mode)  # type: ignore[arg-type]
    except RLEOverrunError as error:
        if grid is not None:
            raise
        raise RLEOverrunError(
            f"{error} of the {height}x{width} DICOM {item.dicom_path}: the table was written for a larger grid "
            f"(DICOMs resized after the table was made?); set data.rle_grid to that grid, e.g. "
            f"{larger_grid_guess(height, width, error.end)}",
            error.end,
            error.n_pixels,
        ) from None
    small_image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
    return PreparedImage(small_image, resize_mask(mask, size, threshold), float(mask.mean()), readings)


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


def _prepare_all(
    items: Sequence[PositiveImage], size: int, threshold: float, mode: str, grid: tuple[int, int] | None, workers: int
) -> Iterator[PreparedImage]:
    yield from _run_jobs(prepare_one, [(item, size, threshold, mode, grid) for item in items], workers)


def _run_jobs(worker: Callable[[Any], PreparedImage], jobs: list[Any], workers: int) -> Iterator[PreparedImage]:
    bar = dict(total=len(jobs), desc="prepare", unit="img", disable=progress_disabled())
    if workers <= 1 or len(jobs) < 2:
        yield from tqdm(map(worker, jobs), **bar)
        return
    chunk = max(1, min(32, len(jobs) // (4 * workers)))
    with worker_pool(workers) as pool:
        yield from tqdm(pool.map(worker, jobs, chunksize=chunk), **bar)


# ----------------------------------------------------------------------------------------------------------------
# Splits and output.


def _table_mode(csv_path: Path, items: Sequence[PositiveImage], prepared: Sequence[PreparedImage]) -> str:
    """``absolute`` when some code only fits as absolute starts, else ``relative`` (SIIM-ACR's form).

    A table mixing codes that only fit one way with codes that only fit the other is refused: one of its rows
    must be damaged, and guessing would silently misplace masks.
    """
    only: dict[str, tuple[int, str] | None] = {"relative": None, "absolute": None}
    for item, result in zip(items, prepared):
        for row, reading in zip(item.rows, result.readings):
            if reading in only and only[reading] is None:
                only[reading] = (row, item.image_id)
    if only["relative"] and only["absolute"]:
        (rel_row, rel_id), (abs_row, abs_id) = only["relative"], only["absolute"]
        raise PrepareError(
            f"{csv_path}: CSV row {abs_row} ImageId {abs_id} only fits as absolute starts, but CSV row {rel_row} "
            f"ImageId {rel_id} only fits as relative ones; fix the table or set data.rle_mode"
        )
    return "absolute" if only["absolute"] else "relative"


def make_splits(n: int, test_size: int, sizes: Sequence[int], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A fixed test set and a shuffled training order; every training subset is a prefix of that order."""
    sizes = sorted(int(s) for s in sizes)
    if test_size < 0 or (sizes and sizes[0] < 1):
        raise PrepareError(f"test_size must be >= 0 and sizes >= 1, got test_size={test_size}, sizes={sizes}")
    needed = (sizes[-1] if sizes else 0) + test_size
    if needed > n:
        raise PrepareError(
            f"sizes {sizes} need max(sizes) + test_size = {sizes[-1] if sizes else 0} + {test_size} = {needed} "
            f"positive images, but only {n} are available"
        )
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[:test_size]), order[test_size:]


def build_index(
    sources: Sequence[tuple[str, Path]],
    fractions: Sequence[float],
    test_rows: np.ndarray,
    train_order: np.ndarray,
    raw_dir: Path,
) -> pd.DataFrame:
    """One row per (image id, source file); ``dicom_path`` (for a folder dataset: the image file) is relative to
    ``raw_dir``, so the same tree in another folder gives the same index."""
    rank = np.full(len(sources), -1, dtype=np.int64)
    rank[train_order] = np.arange(len(train_order))
    split = np.where(rank >= 0, "train", "test")
    return pd.DataFrame(
        {
            "row": np.arange(len(sources)),
            "image_id": [image_id for image_id, _ in sources],
            "dicom_path": [path.relative_to(raw_dir).as_posix() for _, path in sources],
            "mask_fraction": np.round(np.asarray(fractions, dtype=np.float64), 8),
            "split": split,
            "train_rank": rank,
        }
    )


def _write_atomically(out_dir: Path, metrics_path: Path, write_data: Any, metrics: dict[str, Any]) -> None:
    """Write into the staging directory then swap it in; the metrics file follows only after the data succeeded."""
    staging = staging_path(out_dir)
    shutil.rmtree(staging, ignore_errors=True)
    try:
        write_data(staging)
        shutil.rmtree(out_dir, ignore_errors=True)
        os.replace(staging, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    metrics_path.parent.mkdir(parents=True, exist_ok=True)
    temporary = staging_path(metrics_path)
    temporary.write_text(json.dumps(metrics, indent=2) + "\n")
    os.replace(temporary, metrics_path)


def _quantiles(values: np.ndarray) -> dict[str, float | None]:
    if not len(values):
        return {"p5": None, "median": None, "p95": None}
    p5, median, p95 = np.percentile(values, [5, 50, 95])
    return {"p5": round(float(p5), 6), "median": round(float(median), 6), "p95": round(float(p95), 6)}


def prepare_dataset(
    raw_dir: str | Path,
    out_dir: str | Path,
    metrics_path: str | Path,
    *,
    dicom_glob: str,
    rle_csv: str,
    image_size: int,
    test_size: int,
    sizes: Sequence[int],
    seed: int,
    workers: int,
    missing_dicom: str,
    mask_threshold: float = 0.25,
    rle_mode: str = "auto",
    rle_grid: str = NATIVE_GRID,
    val_fraction: float = 0.0,
) -> dict[str, Any]:
    """Read a SIIM-ACR tree, keep the positive images, resize, split, and write ``out_dir`` and the metrics.

    ``rle_mode`` ``auto`` settles relative vs absolute starts for the whole table (see :func:`_table_mode`);
    ``rle_grid`` is ``native`` or the ``<H>x<W>`` grid every code was written on.
    """
    raw_dir, out_dir, metrics_path = Path(raw_dir), Path(out_dir), Path(metrics_path)
    remove_stale_staging(out_dir, metrics_path)
    grid = parse_rle_grid(rle_grid)
    if not raw_dir.is_dir():
        raise PrepareError(f"{raw_dir}: raw data directory not found")
    csv_path = raw_dir / rle_csv
    table = read_rle_table(csv_path)
    dicoms = find_dicoms(raw_dir, dicom_glob)
    groups, duplicate_rows = group_codes(table)

    positive_ids = sorted(i for i, (codes, _) in groups.items() if codes)
    missing = [i for i in positive_ids if i not in dicoms]
    if missing and missing_dicom == "error":
        codes, rows = groups[missing[0]]
        raise PrepareError(
            f"{csv_path}: CSV row {rows[0]} ImageId {missing[0]} has no DICOM under {raw_dir / dicom_glob} "
            f"({len(missing)} positive ImageIds lack one; set data.missing_dicom: report to skip them)"
        )
    items = [PositiveImage(i, groups[i][0], groups[i][1], dicoms[i]) for i in positive_ids if i in dicoms]
    try:
        prepared = list(_prepare_all(items, image_size, mask_threshold, rle_mode, grid, workers))
        resolved_mode = rle_mode
        if rle_mode == "auto":
            resolved_mode = _table_mode(csv_path, items, prepared)
            if resolved_mode == "absolute":  # the ambiguous codes were read as relative: read them again
                redo = [k for k, p in enumerate(prepared) if "both" in p.readings]
                redo_items = [items[k] for k in redo]
                again = list(_prepare_all(redo_items, image_size, mask_threshold, "absolute", grid, workers))
                for k, result in zip(redo, again):
                    prepared[k] = result
    except RLEError as error:
        raise PrepareError(f"{csv_path}: {error}") from None
    except DicomError as error:
        raise PrepareError(str(error)) from None

    files_read = len(prepared)
    empty = [k for k, p in enumerate(prepared) if not p.mask.any()]  # e.g. codes whose runs all have length 0
    keep = [k for k, p in enumerate(prepared) if p.mask.any()]
    items = [items[k] for k in keep]
    prepared = [prepared[k] for k in keep]
    regions = np.array([len(i.codes) for i in items])
    head: dict[str, Any] = {
        "dicom_files": len(dicoms),
        "dicom_files_read": files_read,
        "csv_rows": len(table),
        "csv_positive_rows": int(sum(not is_empty_code(code) for code in table[CODE_COLUMN])),
        "csv_duplicate_rows": len(duplicate_rows),
        "images_in_csv": len(groups),
        "positives": len(positive_ids),
        "negatives": len(groups) - len(positive_ids),
        "kept": len(items),
        "skipped": {"negative": len(groups) - len(positive_ids), "missing_dicom": len(missing), "empty_mask": len(empty)},
        "missing_dicom_ids": missing,
        "dicoms_without_csv_rows": len(set(dicoms) - set(groups)),
    }
    tail = {"rle_mode": resolved_mode, "rle_grid": rle_grid}
    sources = [(i.image_id, i.dicom_path) for i in items]
    return _split_and_write(sources, prepared, regions, raw_dir, out_dir, metrics_path, head, tail,
                            image_size=image_size, test_size=test_size, sizes=sizes, seed=seed, val_fraction=val_fraction)


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
    prepared = list(_run_jobs(prepare_folder_one, jobs, workers))
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
    return _split_and_write([(i.image_id, i.image_path) for i in items], [prepared[k] for k in keep], regions,
                            raw_dir, out_dir, metrics_path, head, {"mask_level": mask_level},
                            image_size=image_size, test_size=test_size, sizes=sizes, seed=seed, val_fraction=val_fraction)


def prepare_data(
    data: DataSettings, sizes: Sequence[int], out_dir: str | Path, metrics_path: str | Path
) -> dict[str, Any]:
    """The prepare stage: ``data.raw_dir`` read as ``data.format`` says (a SIIM-ACR tree or a folder dataset)."""
    common: dict[str, Any] = dict(
        image_size=data.image_size,
        test_size=data.test_size,
        sizes=list(sizes),
        seed=data.seed,
        workers=data.workers,
        mask_threshold=data.mask_threshold,
        val_fraction=data.val_fraction,
    )
    if data.format == "folder":
        return prepare_folder_dataset(
            data.raw_dir,
            out_dir,
            metrics_path,
            mask_suffix=data.mask_suffix or "",
            missing_mask=data.missing_mask,
            pairs_csv=data.pairs_csv,
            mask_level=data.mask_level,
            **common,
        )
    return prepare_dataset(
        data.raw_dir,
        out_dir,
        metrics_path,
        dicom_glob=data.dicom_glob,
        rle_csv=data.rle_csv,
        missing_dicom=data.missing_dicom,
        rle_mode=data.rle_mode,
        rle_grid=data.rle_grid,
        **common,
    )


def _split_and_write(
    sources: Sequence[tuple[str, Path]],
    prepared: Sequence[PreparedImage],
    regions: np.ndarray,
    raw_dir: Path,
    out_dir: Path,
    metrics_path: Path,
    head: dict[str, Any],
    tail: dict[str, Any],
    *,
    image_size: int,
    test_size: int,
    sizes: Sequence[int],
    seed: int,
    val_fraction: float,
) -> dict[str, Any]:
    """The kept positives -> splits, index, metrics (``head``, the splits, ``tail``, the mask statistics)."""
    test_rows, train_order = make_splits(len(sources), test_size, sizes, seed)
    try:
        train_rows, val_rows = split_pools({int(s): train_order[: int(s)] for s in sorted(sizes)}, val_fraction, seed)
    except ValueError as error:
        raise PrepareError(f"data.val_fraction: {error}") from None
    fractions = [p.native_fraction for p in prepared]
    index = build_index(sources, fractions, test_rows, train_order, raw_dir)
    metrics: dict[str, Any] = {
        **head,
        "splits": {"test": len(test_rows), "train_pool": len(train_order), "train": {str(k): len(v) for k, v in train_rows.items()},
                   "val": {str(k): len(v) for k, v in val_rows.items()}},
        "image_size": image_size,
        **tail,
        "mask_fraction_native": _quantiles(np.asarray(fractions)),
        "regions_per_image": {"1": int((regions == 1).sum()), "2": int((regions == 2).sum()), "3+": int((regions >= 3).sum())},
        "seed": seed,
    }
    images = np.stack([p.image for p in prepared]) if prepared else np.zeros((0, image_size, image_size), np.uint8)
    masks = np.stack([p.mask for p in prepared]) if prepared else np.zeros((0, image_size, image_size), np.uint8)
    _write_atomically(
        out_dir,
        metrics_path,
        lambda directory: save_prepared(directory, images, masks, index, test_rows, train_rows, seed, val_rows, val_fraction),
        metrics,
    )
    return metrics
