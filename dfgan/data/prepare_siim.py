"""The prepare stage on a SIIM-ACR tree (``data.format: siim``): the run-length CSV and the DICOMs -> the positive
images with the union of their regions, written by :mod:`dfgan.data.prepared_writer`.

Run-length codes are decoded on each DICOM's own grid (``data.rle_grid: native``) or on a fixed grid (``<H>x<W>``,
for a table written before the DICOMs were resized), then resized with the mask rule. Rows repeating the same
region of the same image are counted and dropped. A bad input raises :class:`PrepareError` naming the file, or the
CSV row and ImageId, before anything is written.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import cv2
import numpy as np
import pandas as pd

from dfgan.data.dicom_io import DicomError, read_dicom
from dfgan.data.prepared_writer import (
    PreparedImage, remove_stale_staging, resize_mask, run_prepare_jobs, split_and_write,
)
from dfgan.data.rle import RLEError, RLEOverrunError, code_reading, decode_union, is_empty_code
from dfgan.data.siim import CODE_COLUMN, ID_COLUMN, PrepareError, find_dicoms, read_rle_table

NATIVE_GRID = "native"
GRID_ASPECT_TOLERANCE = 0.01


@dataclass(frozen=True)
class PositiveImage:
    """A positive ImageId with its non-empty codes, the CSV rows they came from, and its DICOM."""

    image_id: str
    codes: tuple[str, ...]
    rows: tuple[int, ...]
    dicom_path: Path


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
# Decoding (runs in worker processes).


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


def _prepare_all(
    items: Sequence[PositiveImage], size: int, threshold: float, mode: str, grid: tuple[int, int] | None, workers: int
) -> Iterator[PreparedImage]:
    yield from run_prepare_jobs(prepare_one, [(item, size, threshold, mode, grid) for item in items], workers)


# ----------------------------------------------------------------------------------------------------------------
# The table's reading and the flow.


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
    return split_and_write(sources, prepared, regions, raw_dir, out_dir, metrics_path, head, tail,
                           image_size=image_size, test_size=test_size, sizes=sizes, seed=seed, val_fraction=val_fraction)
