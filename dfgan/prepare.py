"""SIIM-ACR tree -> the prepared arrays of :mod:`dfgan.prepared`.

Everything is read, decoded and validated before anything is written: a bad input raises :class:`PrepareError`
(naming the file or the CSV row and ImageId) and leaves no output behind. The output directory is written under a
temporary name and swapped in at the end, so a stale or half-written ``data/prepared`` never survives.
"""

from __future__ import annotations

import json
import os
import shutil
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import cv2
import numpy as np
import pandas as pd
from tqdm import tqdm

from dfgan.dicom_io import DicomError, read_dicom
from dfgan.prepared import save_prepared
from dfgan.rle import RLEError, code_reading, decode_union, is_empty_code
from dfgan.runtime import progress_disabled
from dfgan.siim import CODE_COLUMN, ID_COLUMN, PrepareError, find_dicoms, read_rle_table

MISSING_DICOM_POLICIES = ("report", "error")
RLE_MODES = ("auto", "relative", "absolute")


@dataclass(frozen=True)
class PositiveImage:
    """A positive ImageId with its non-empty codes, the CSV rows they came from, and its DICOM."""

    image_id: str
    codes: tuple[str, ...]
    rows: tuple[int, ...]
    dicom_path: Path


def group_codes(table: pd.DataFrame) -> dict[str, tuple[tuple[str, ...], tuple[int, ...]]]:
    """ImageId -> (non-empty codes, their CSV rows); images whose only rows are ``-1`` map to empty tuples."""
    groups: dict[str, tuple[tuple[str, ...], tuple[int, ...]]] = {}
    for image_id, code, row in zip(table[ID_COLUMN], table[CODE_COLUMN], table["csv_row"]):
        codes, rows = groups.get(image_id, ((), ()))
        if not is_empty_code(code):
            codes, rows = codes + (code,), rows + (int(row),)
        groups[image_id] = (codes, rows)
    return groups


# ----------------------------------------------------------------------------------------------------------------
# Decoding and resizing (runs in worker processes).


@dataclass(frozen=True)
class PreparedImage:
    image: np.ndarray  # uint8 (S, S)
    mask: np.ndarray  # uint8 (S, S) in {0, 1}
    native_fraction: float  # mask area fraction at the native size
    readings: tuple[str, ...]  # per code: relative / absolute / both (see dfgan.rle.code_reading); auto mode only


def resize_mask(mask: np.ndarray, size: int, threshold: float) -> np.ndarray:
    """Area-resize a binary mask and keep pixels at least ``threshold`` covered; thin regions survive because a
    non-empty mask always keeps its best-covered pixels."""
    coverage = cv2.resize(mask.astype(np.float32), (size, size), interpolation=cv2.INTER_AREA)
    small = (coverage >= threshold).astype(np.uint8)
    if mask.any() and not small.any():
        small = (coverage >= coverage.max()).astype(np.uint8)
    return small


def prepare_one(job: tuple[PositiveImage, int, float, str]) -> PreparedImage:
    """Read one DICOM, decode its RLE union at the native size (the grid the codes refer to), resize both."""
    item, size, threshold, mode = job
    image = read_dicom(item.dicom_path)
    height, width = image.shape
    readings: tuple[str, ...] = ()
    if mode == "auto":
        readings = tuple(code_reading(c, height * width, item.image_id, r) for c, r in zip(item.codes, item.rows))
    mask = decode_union(item.codes, height, width, item.image_id, rows=item.rows, mode=mode)  # type: ignore[arg-type]
    small_image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
    return PreparedImage(small_image, resize_mask(mask, size, threshold), float(mask.mean()), readings)


def _prepare_all(
    items: Sequence[PositiveImage], size: int, threshold: float, mode: str, workers: int
) -> Iterator[PreparedImage]:
    jobs = [(item, size, threshold, mode) for item in items]
    bar = dict(total=len(jobs), desc="prepare", unit="img", disable=progress_disabled())
    if workers <= 1 or len(jobs) < 2:
        yield from tqdm(map(prepare_one, jobs), **bar)
        return
    chunk = max(1, min(32, len(jobs) // (4 * workers)))
    with ProcessPoolExecutor(max_workers=workers) as pool:
        yield from tqdm(pool.map(prepare_one, jobs, chunksize=chunk), **bar)


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
    items: Sequence[PositiveImage],
    fractions: Sequence[float],
    test_rows: np.ndarray,
    train_order: np.ndarray,
    raw_dir: Path,
) -> pd.DataFrame:
    """``dicom_path`` is relative to ``raw_dir``, so the same tree in another folder gives the same index."""
    rank = np.full(len(items), -1, dtype=np.int64)
    rank[train_order] = np.arange(len(train_order))
    split = np.where(rank >= 0, "train", "test")
    return pd.DataFrame(
        {
            "row": np.arange(len(items)),
            "image_id": [i.image_id for i in items],
            "dicom_path": [i.dicom_path.relative_to(raw_dir).as_posix() for i in items],
            "mask_fraction": np.round(np.asarray(fractions, dtype=np.float64), 8),
            "split": split,
            "train_rank": rank,
        }
    )


def _write_atomically(out_dir: Path, metrics_path: Path, write_data: Any, metrics: dict[str, Any]) -> None:
    """Write into ``<out_dir>.tmp`` then swap it in; the metrics file follows only after the data succeeded."""
    staging = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        write_data(staging)
        shutil.rmtree(out_dir, ignore_errors=True)
        os.replace(staging, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    metrics_path.parent.mkdir(parents=True, exist_ok=True)
    temporary = metrics_path.with_name(metrics_path.name + ".tmp")
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
) -> dict[str, Any]:
    """Read a SIIM-ACR tree, keep the positive images, resize, split, and write ``out_dir`` and the metrics.

    ``rle_mode`` ``auto`` settles relative vs absolute starts for the whole table (see :func:`_table_mode`).
    """
    raw_dir, out_dir, metrics_path = Path(raw_dir), Path(out_dir), Path(metrics_path)
    if missing_dicom not in MISSING_DICOM_POLICIES:
        raise PrepareError(f"data.missing_dicom must be one of {MISSING_DICOM_POLICIES}, got {missing_dicom!r}")
    if rle_mode not in RLE_MODES:
        raise PrepareError(f"data.rle_mode must be one of {RLE_MODES}, got {rle_mode!r}")
    if not raw_dir.is_dir():
        raise PrepareError(f"{raw_dir}: raw data directory not found")
    csv_path = raw_dir / rle_csv
    table = read_rle_table(csv_path)
    dicoms = find_dicoms(raw_dir, dicom_glob)
    groups = group_codes(table)

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
        prepared = list(_prepare_all(items, image_size, mask_threshold, rle_mode, workers))
        resolved_mode = rle_mode
        if rle_mode == "auto":
            resolved_mode = _table_mode(csv_path, items, prepared)
            if resolved_mode == "absolute":  # the ambiguous codes were read as relative: read them again
                redo = [k for k, p in enumerate(prepared) if "both" in p.readings]
                again = list(_prepare_all([items[k] for k in redo], image_size, mask_threshold, "absolute", workers))
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
    test_rows, train_order = make_splits(len(items), test_size, sizes, seed)
    train_rows = {int(s): train_order[: int(s)] for s in sorted(sizes)}
    fractions = [p.native_fraction for p in prepared]
    index = build_index(items, fractions, test_rows, train_order, raw_dir)

    regions = np.array([len(i.codes) for i in items])
    metrics: dict[str, Any] = {
        "dicom_files": len(dicoms),
        "dicom_files_read": files_read,
        "csv_rows": len(table),
        "csv_positive_rows": int(sum(len(codes) for codes, _ in groups.values())),
        "images_in_csv": len(groups),
        "positives": len(positive_ids),
        "negatives": len(groups) - len(positive_ids),
        "kept": len(items),
        "skipped": {"negative": len(groups) - len(positive_ids), "missing_dicom": len(missing), "empty_mask": len(empty)},
        "missing_dicom_ids": missing,
        "dicoms_without_csv_rows": len(set(dicoms) - set(groups)),
        "splits": {"test": len(test_rows), "train_pool": len(train_order), "train": {str(k): len(v) for k, v in train_rows.items()}},
        "image_size": image_size,
        "rle_mode": resolved_mode,
        "mask_fraction_native": _quantiles(np.asarray(fractions)),
        "regions_per_image": {"1": int((regions == 1).sum()), "2": int((regions == 2).sum()), "3+": int((regions >= 3).sum())},
        "seed": seed,
    }
    images = np.stack([p.image for p in prepared]) if prepared else np.zeros((0, image_size, image_size), np.uint8)
    masks = np.stack([p.mask for p in prepared]) if prepared else np.zeros((0, image_size, image_size), np.uint8)
    _write_atomically(
        out_dir,
        metrics_path,
        lambda directory: save_prepared(directory, images, masks, index, test_rows, train_rows, seed),
        metrics,
    )
    return metrics
