"""Check the params (every key against the schema) and the raw data (cheap checks) without running anything.

    python -m stages.check [--params params.yaml] [--no-data]

Exits 0 when everything is fine; otherwise prints one line per problem, naming the file, row or key and the fix,
and exits 2. Run it before ``dvc repro`` or ``dvc exp run``.
"""

from __future__ import annotations

import argparse

from dfgan.core.errors import run_stage
from dfgan.core.params_file import load_settings
from dfgan.data.folder_data import check_folder_data
from dfgan.data.siim import check_raw_data


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--no-data", action="store_true", help="check the params only")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    settings = load_settings(args.params)
    print(f"{args.params}: every key valid")
    if not args.no_data:
        check = check_folder_data if settings.data.format == "folder" else check_raw_data
        print(check(settings))


if __name__ == "__main__":
    run_stage(main)
