"""The prepare stage: ``data.raw_dir`` read as ``data.format`` says - the one place that chooses - into
``data/prepared`` and ``metrics/data.json``.

``siim``: a SIIM-ACR tree (:mod:`dfgan.data.prepare_siim`); ``folder``: images and masks as files
(:mod:`dfgan.data.prepare_folder`). Both write through :mod:`dfgan.data.prepared_writer`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from dfgan.core.settings import DataSettings
from dfgan.data.prepare_folder import prepare_folder_dataset
from dfgan.data.prepare_siim import prepare_dataset


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
