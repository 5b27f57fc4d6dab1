"""A procedural phantom of the SIIM-ACR pneumothorax data, written in the exact stage-1 format.

Each image is a schematic frontal chest radiograph (body, spine and mediastinum, heart, lung fields with posterior
and anterior rib shadows, branching vessels fading to the periphery, clavicles, diaphragm domes, quantum noise)
whose anatomy varies per patient (:mod:`dfgan.data.phantom_anatomy`). A pneumothorax is a crescent along the
apical/lateral pleural margin of a lung where lung markings are absent, bounded on the lung side by a thin bright
visceral pleural line; the mask is exactly that crescent (:mod:`dfgan.data.phantom_render`). Its statistics follow
those measured on the real table (see ``REAL_MASK_STATS``). This module writes the images and the table.

Layout written (the real ingestion path reads it unchanged): ``dicom-images-train/<Study>/<Series>/<ImageId>.dcm``
and ``train-rle.csv`` with header ``ImageId, EncodedPixels``, values `` <code>`` / `` -1``, one row per region.
Everything is deterministic from the seed: image ``i`` draws from ``SeedSequence([seed, i])``, so the output does
not depend on the number of worker processes, nor on the CPU's vector instructions (see ``phantom_render``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np
from pydicom.uid import generate_uid
from tqdm import tqdm

from dfgan.core.imaging import outline, save_grid
from dfgan.core.runtime import progress_disabled, worker_pool
from dfgan.data.dicom_io import read_dicom, write_dicom
from dfgan.data.phantom_render import REAL_MASK_STATS, render_phantom
from dfgan.data.rle import decode_union, rle_encode
from dfgan.data.siim import find_dicoms, read_rle_table

CSV_NAME = "train-rle.csv"
DICOM_DIR = "dicom-images-train"
CSV_HEADER = "ImageId, EncodedPixels"  # stage 1: note the space after the comma

# ----------------------------------------------------------------------------------------------------------------
# The dataset.


@dataclass(frozen=True)
class PhantomRecord:
    index: int
    image_id: str
    dicom_path: str  # relative to the tree
    codes: list[str]  # one per region, or ["-1"]
    area_fraction: float
    centroid_y: float
    centroid_x: float
    touches_both_halves: bool
    seconds: float


def phantom_uids(seed: int, index: int) -> tuple[str, str, str]:
    """Study, series and SOP instance UIDs, reproducible from the seed and image index."""
    return tuple(generate_uid(entropy_srcs=["dfgan-phantom", str(seed), str(index), kind])
                 for kind in ("study", "series", "instance"))


def _make_one(job: tuple[Path, int, int, int, bool, int | None]) -> PhantomRecord:
    out_dir, seed, index, size, positive, jpeg_quality = job
    start = time.perf_counter()
    rng = np.random.default_rng(np.random.SeedSequence([seed, index]))
    phantom = render_phantom(size, rng, positive)
    study, series, image_id = phantom_uids(seed, index)
    relative = Path(DICOM_DIR) / study / series / f"{image_id}.dcm"
    write_dicom(out_dir / relative, phantom.image, image_id, study, series, patient_id=f"phantom-{seed}-{index}",
                patient_sex=phantom.patient.sex, patient_age=phantom.patient.age, jpeg_quality=jpeg_quality)
    mask = phantom.mask
    codes = [rle_encode(r) for r in phantom.regions] or ["-1"]
    ys, xs = np.nonzero(mask)
    half = size // 2
    return PhantomRecord(
        index=index,
        image_id=image_id,
        dicom_path=relative.as_posix(),
        codes=codes,
        area_fraction=float(mask.mean()),
        centroid_y=float(ys.mean() / size) if len(ys) else float("nan"),
        centroid_x=float(xs.mean() / size) if len(xs) else float("nan"),
        touches_both_halves=bool(len(xs) and xs.min() < half <= xs.max()),
        seconds=time.perf_counter() - start,
    )


def generate_phantom(
    out_dir: str | Path,
    *,
    count: int,
    positive_fraction: float,
    image_size: int,
    seed: int,
    workers: int = 1,
    jpeg_fraction: float = 0.0,
    jpeg_quality: int = 95,
) -> dict[str, Any]:
    """Write ``count`` phantoms as a SIIM-ACR stage-1 tree under ``out_dir``; return a summary of the masks."""
    out_dir = Path(out_dir)
    if count < 1 or not 0.0 <= positive_fraction <= 1.0 or not 0.0 <= jpeg_fraction <= 1.0:
        raise ValueError(f"phantom: need count >= 1 and fractions in [0, 1], got {count}, {positive_fraction}, "
                         f"{jpeg_fraction}")
    plan = np.random.default_rng(np.random.SeedSequence([seed, count, 0x5EED]))
    positive = np.zeros(count, bool)
    positive[plan.permutation(count)[: int(round(count * positive_fraction))]] = True
    compressed = plan.random(count) < jpeg_fraction
    jobs = [(out_dir, seed, i, image_size, bool(positive[i]), jpeg_quality if compressed[i] else None)
            for i in range(count)]
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    bar = dict(total=count, desc="phantom", unit="img", disable=progress_disabled())
    if workers > 1:
        # No cv2.setNumThreads(1) initializer: calling it in a forked child can deadlock on the parent's pool.
        with worker_pool(workers) as pool:
            records = list(tqdm(pool.map(_make_one, jobs, chunksize=max(1, count // (8 * workers))), **bar))
    else:
        records = [_make_one(job) for job in tqdm(jobs, **bar)]
    write_rle_csv(out_dir / CSV_NAME, records)
    summary = summarize(records, image_size)
    summary["seconds_total"] = round(time.perf_counter() - started, 2)
    summary["jpeg_compressed"] = int(compressed.sum())
    return summary


def write_rle_csv(path: Path, records: Sequence[PhantomRecord]) -> None:
    """Stage-1 quirks: the header's space after the comma, every value with a leading space, one row per region."""
    lines = [CSV_HEADER] + [f"{r.image_id}, {code}" for r in records for code in r.codes]
    path.write_text("\n".join(lines) + "\n")


def summarize(records: Sequence[PhantomRecord], image_size: int) -> dict[str, Any]:
    """Counts and mask statistics, side by side with the real ones they imitate."""
    positives = [r for r in records if r.codes != ["-1"]]
    areas = np.array([r.area_fraction for r in positives])
    heights = np.array([r.centroid_y for r in positives])
    regions = np.array([len(r.codes) for r in positives])

    def q(values: np.ndarray, p: float) -> float | None:
        return round(float(np.percentile(values, p)), 5) if len(values) else None

    return {
        "images": len(records),
        "positives": len(positives),
        "negatives": len(records) - len(positives),
        "csv_rows": sum(len(r.codes) for r in records),
        "image_size": image_size,
        "area_fraction": {"p5": q(areas, 5), "p25": q(areas, 25), "median": q(areas, 50), "p75": q(areas, 75),
                          "p95": q(areas, 95)},
        "regions": {"1": _share(regions == 1), "2": _share(regions == 2), "3+": _share(regions >= 3)},
        "centroid_y_median": q(heights, 50),
        "centroid_y_p10_p90": (q(heights, 10), q(heights, 90)),
        "left_half": _share(np.array([r.centroid_x < 0.5 for r in positives])),
        "both_halves": _share(np.array([r.touches_both_halves for r in positives])),
        "seconds_per_image": round(float(np.mean([r.seconds for r in records])), 3),
        "real": REAL_MASK_STATS,
    }


def _share(flags: np.ndarray) -> float | None:
    return round(float(np.mean(flags)), 3) if len(flags) else None


# ----------------------------------------------------------------------------------------------------------------
# A contact sheet, read back through the real ingestion path.


def render_contact_sheet(
    tree_dir: str | Path,
    out_png: str | Path,
    n: int,
    *,
    rle_csv: str = CSV_NAME,
    dicom_glob: str = f"{DICOM_DIR}/**/*.dcm",
    columns: int = 4,
    tile: int = 256,
) -> Path:
    """Read the first ``n`` images of a SIIM-ACR tree with the real reader (DICOM + RLE) and draw them in a grid,
    pneumothorax outlined in red."""
    tree_dir = Path(tree_dir)
    table = read_rle_table(tree_dir / rle_csv)
    dicoms = find_dicoms(tree_dir, dicom_glob)
    tiles = []
    for image_id, rows in table.groupby("ImageId", sort=False):
        if len(tiles) >= n:
            break
        if image_id not in dicoms:
            continue
        image = read_dicom(dicoms[image_id])
        mask = decode_union(rows["EncodedPixels"], *image.shape, image_id, rows=rows["csv_row"].tolist())
        tile_image = outline(image, mask)
        label = f"{len(rows) if mask.any() else 0} reg, {100 * mask.mean():.2f}%"
        scale = image.shape[0] / tile
        cv2.putText(tile_image, label, (int(6 * scale), int(18 * scale)), cv2.FONT_HERSHEY_SIMPLEX, 0.5 * scale,
                    (255, 255, 0), max(1, int(scale)))
        tiles.append(tile_image)
    if not tiles:
        raise ValueError(f"render_contact_sheet: no images found in {tree_dir}")
    rows_of_tiles = [tiles[i : i + columns] for i in range(0, len(tiles), columns)]
    return save_grid(rows_of_tiles, out_png, tile=tile)
