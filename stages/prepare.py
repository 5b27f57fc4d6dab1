"""DVC stage ``prepare``: SIIM-ACR tree or folder dataset (``data.raw_dir``, ``data.format``) -> ``data/prepared/`` and ``metrics/data.json``.

Run from the repository root: ``python -m stages.prepare [--params params.yaml]``.
"""

from __future__ import annotations

import argparse
import json

from dfgan.core.params_file import load_params, section
from dfgan.core.errors import run_stage
from dfgan.core.paths import DATA_METRICS, PREPARED
from dfgan.data.prepare import prepare_dataset, prepare_folder_dataset


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    params = load_params(args.params)
    cfg = section(params, "data")
    common = dict(
        image_size=int(cfg["image_size"]),
        test_size=int(cfg["test_size"]),
        sizes=[int(s) for s in params["sizes"]],
        seed=int(cfg["seed"]),
        workers=int(cfg["workers"]),
        mask_threshold=float(cfg["mask_threshold"]),
        val_fraction=float(cfg["val_fraction"]),
    )
    if cfg["format"] == "folder":
        metrics = prepare_folder_dataset(
            cfg["raw_dir"],
            PREPARED,
            DATA_METRICS,
            mask_suffix=cfg["mask_suffix"] or "",
            missing_mask=str(cfg["missing_mask"]),
            pairs_csv=cfg["pairs_csv"],
            mask_level=float(cfg["mask_level"]),
            **common,
        )
    else:
        metrics = prepare_dataset(
            cfg["raw_dir"],
            PREPARED,
            DATA_METRICS,
            dicom_glob=cfg["dicom_glob"],
            rle_csv=cfg["rle_csv"],
            missing_dicom=str(cfg["missing_dicom"]),
            rle_mode=str(cfg["rle_mode"]),
            rle_grid=str(cfg["rle_grid"]),
            **common,
        )
    print(json.dumps({k: v for k, v in metrics.items() if k != "missing_dicom_ids"}, indent=1))


if __name__ == "__main__":
    run_stage(main)
