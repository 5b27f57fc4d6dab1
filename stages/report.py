"""DVC stage: Tables 1-2, Figures 3-4, Dice vs training size, and summary metrics into metrics/report/.

    python -m stages.report [--params params.yaml]
    python -m stages.report --where      only print where the results are
"""

from __future__ import annotations

import argparse

from dfgan.core.params_file import load_params, section, variant_lambda_fid
from dfgan.core.errors import run_stage
from dfgan.core.paths import PREPARED, REPORT, SEG_DATA, SEG_METRICS, SYNTHETIC
from dfgan.report.build import build_report, results_guide
from dfgan.seg.training_sets import conditions_from_params


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--where", action="store_true", help="print where the results are, build nothing")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.where:
        print(results_guide(REPORT))
        return

    params = load_params(args.params)
    report = section(params, "report")
    summary = build_report(
        sizes=params["sizes"],
        conditions=conditions_from_params(params),
        seg_metrics_dir=SEG_METRICS,
        seg_data_dir=SEG_DATA,
        synthetic_root=SYNTHETIC,
        out_dir=REPORT,
        prepared_dir=PREPARED,
        sample_count=int(report["sample_count"]),
        gan_seed=int(section(params, "gan")["seeds"][0]),
        primary=str(report["primary"]),
        level=float(report["level"]),
        min_units=int(report["min_units"]),
        fid_weights={str(v): variant_lambda_fid(section(params, "gan"), str(v)) for v in params["variants"]},
    )
    print(f"report written to {REPORT.as_posix()}/ (largest size {summary['largest_size']})")
    print(results_guide(REPORT))


if __name__ == "__main__":
    run_stage(main)
