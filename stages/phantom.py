"""DVC stage ``phantom``: write the procedural SIIM-ACR-format phantom tree and its contact sheet.

Run from the repository root: ``python -m stages.phantom [--params params.yaml]``.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from dfgan.core.errors import run_stage
from dfgan.core.params_file import load_settings
from dfgan.core.paths import CONTACT_SHEET
from dfgan.core.settings import PhantomSettings, Settings
from dfgan.data.phantom import generate_phantom, render_contact_sheet


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    return parser.parse_args(argv)


def inputs(settings: Settings, args: argparse.Namespace) -> PhantomSettings:
    """Everything of the params this stage hands the library (tests/test_params_deps.py reads this)."""
    return settings.phantom


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    phantom = inputs(load_settings(args.params), args)
    out_dir = Path(phantom.out_dir)
    shutil.rmtree(out_dir, ignore_errors=True)  # no stale files from an earlier, larger run
    summary = generate_phantom(
        out_dir,
        count=phantom.count,
        positive_fraction=phantom.positive_fraction,
        image_size=phantom.image_size,
        seed=phantom.seed,
        workers=phantom.workers,
        jpeg_fraction=phantom.jpeg_fraction,
        jpeg_quality=phantom.jpeg_quality,
    )
    render_contact_sheet(out_dir, CONTACT_SHEET, phantom.contact_sheet)
    print(json.dumps({k: v for k, v in summary.items() if k != "real"}, indent=1))


if __name__ == "__main__":
    run_stage(main)
