"""DVC stage: Tables 1-2, Figures 3-4, Dice vs training size, and summary metrics into metrics/report/.

    python -m stages.report [--params params.yaml]
    python -m stages.report --where      only print where the results are
"""

from __future__ import annotations

import argparse

from dfgan.core.errors import run_stage
from dfgan.core.params_file import load_settings
from dfgan.core.paths import PREPARED, REPORT, SEG_DATA, SEG_METRICS, SYNTHETIC
from dfgan.core.settings import Settings
from dfgan.report.build import ReportConfig, build_report, results_guide


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--where", action="store_true", help="print where the results are, build nothing")
    return parser.parse_args(argv)


def inputs(settings: Settings, args: argparse.Namespace) -> ReportConfig:
    """Everything of the params this stage hands the library (tests/test_params_deps.py reads this)."""
    return ReportConfig.of(settings)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.where:
        print(results_guide(REPORT))
        return

    config = inputs(load_settings(args.params), args)
    summary = build_report(config, SEG_METRICS, SEG_DATA, SYNTHETIC, REPORT, PREPARED)
    print(f"report written to {REPORT.as_posix()}/ (largest size {summary['largest_size']})")
    print(results_guide(REPORT))


if __name__ == "__main__":
    run_stage(main)
