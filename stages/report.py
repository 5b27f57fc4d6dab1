"""DVC stage: Tables 1-2, Figures 3-4, Dice vs training size, and summary metrics into metrics/report/.

    python -m stages.report [--params params.yaml]
    python -m stages.report --where      only print where the results are
"""

from __future__ import annotations

import argparse

from dfgan.config import load_params, section
from dfgan.report import build_report, results_guide

SEG_METRICS_DIR = "metrics/seg"
SYNTHETIC_ROOT = "data/synthetic"
PREPARED_DIR = "data/prepared"
OUT_DIR = "metrics/report"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--where", action="store_true", help="print where the results are, build nothing")
    args = parser.parse_args(argv)
    if args.where:
        print(results_guide(OUT_DIR))
        return

    params = load_params(args.params)
    summary = build_report(
        sizes=params["sizes"],
        conditions=section(params, "seg")["synthetic_conditions"],
        seg_metrics_dir=SEG_METRICS_DIR,
        synthetic_root=SYNTHETIC_ROOT,
        out_dir=OUT_DIR,
        prepared_dir=PREPARED_DIR,
        sample_count=int(section(params, "report")["sample_count"]),
    )
    print(f"report written to {OUT_DIR}/ (largest size {summary['largest_size']})")
    print(results_guide(OUT_DIR))


if __name__ == "__main__":
    main()
