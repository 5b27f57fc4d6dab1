"""DVC stage ``phantom``: write the procedural SIIM-ACR-format phantom tree and its contact sheet.

Run from the repository root: ``python -m stages.phantom [--params params.yaml]``.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from dfgan.core.params_file import load_params, section
from dfgan.core.errors import run_stage
from dfgan.core.paths import CONTACT_SHEET
from dfgan.data.phantom import generate_phantom, render_contact_sheet


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    cfg = section(load_params(args.params), "phantom")
    out_dir = Path(cfg["out_dir"])
    shutil.rmtree(out_dir, ignore_errors=True)  # no stale files from an earlier, larger run
    summary = generate_phantom(
        out_dir,
        count=int(cfg["count"]),
        positive_fraction=float(cfg["positive_fraction"]),
        image_size=int(cfg["image_size"]),
        seed=int(cfg["seed"]),
        workers=int(cfg["workers"]),
        jpeg_fraction=float(cfg["jpeg_fraction"]),
        jpeg_quality=int(cfg["jpeg_quality"]),
    )
    render_contact_sheet(out_dir, CONTACT_SHEET, int(cfg["contact_sheet"]))
    print(json.dumps({k: v for k, v in summary.items() if k != "real"}, indent=1))


if __name__ == "__main__":
    run_stage(main)
