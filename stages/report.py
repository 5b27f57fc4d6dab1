"""DVC stage: the questions (questions.md, forest.png), Tables 1-2, Figures 3-4, Dice vs training size, and summary
metrics into metrics/report/.

    python -m stages.report [--params params.yaml]
    python -m stages.report --where             only print where the results are
    python -m stages.report --evidence DIR      rebuild a committed evidence run's report/ from its own files
                                                (DIR/params.yaml, DIR/metrics/seg, DIR/per_image; Figure 3 is kept)
"""

from __future__ import annotations

import argparse
from pathlib import Path

from dfgan.core.errors import run_stage
from dfgan.core.params_file import load_settings
from dfgan.core.paths import PREPARED, REPORT, SEG_DATA, SEG_METRICS, SYNTHETIC
from dfgan.core.settings import Settings
from dfgan.report.build import ReportConfig, build_report, results_guide


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--where", action="store_true", help="print where the results are, build nothing")
    parser.add_argument("--evidence", type=Path, metavar="DIR",
                        help="rebuild DIR/report from DIR/params.yaml, DIR/metrics/seg and DIR/per_image")
    return parser.parse_args(argv)


def inputs(settings: Settings, args: argparse.Namespace) -> ReportConfig:
    """Everything of the params this stage hands the library (tests/test_params_deps.py reads this)."""
    return ReportConfig.of(settings)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.where:
        print(results_guide(REPORT))
        return

    if args.evidence is not None:
        run = args.evidence
        config = inputs(load_settings(run / "params.yaml"), args)
        build_report(config, run / "metrics/seg", run / "per_image", None, run / "report")
        print(f"rebuilt {(run / 'report').as_posix()}/ from the run's own files")
        return
    config = inputs(load_settings(args.params), args)
    summary = build_report(config, SEG_METRICS, SEG_DATA, SYNTHETIC, REPORT, PREPARED)
    print(f"report written to {REPORT.as_posix()}/ (largest size {summary['largest_size']})")
    print(results_guide(REPORT))


if __name__ == "__main__":
    run_stage(main)
