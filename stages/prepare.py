"""DVC stage ``prepare``: SIIM-ACR tree or folder dataset (``data.raw_dir``, ``data.format``) -> ``data/prepared/`` and ``metrics/data.json``.

Run from the repository root: ``python -m stages.prepare [--params params.yaml]``.
"""

from __future__ import annotations

import argparse
import json

from dfgan.core.errors import run_stage
from dfgan.core.params_file import load_settings
from dfgan.core.paths import DATA_METRICS, PREPARED
from dfgan.core.settings import DataSettings, Settings
from dfgan.data.prepare import prepare_data


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    return parser.parse_args(argv)


def inputs(settings: Settings, args: argparse.Namespace) -> tuple[DataSettings, tuple[int, ...]]:
    """Everything of the params this stage hands the library (tests/test_params_deps.py reads this)."""
    return settings.data, settings.sizes


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    data, sizes = inputs(load_settings(args.params), args)
    metrics = prepare_data(data, sizes, PREPARED, DATA_METRICS)
    print(json.dumps({k: v for k, v in metrics.items() if k != "missing_dicom_ids"}, indent=1))


if __name__ == "__main__":
    run_stage(main)
