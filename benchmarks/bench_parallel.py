"""Wall time of the whole DAG: sequential `dvc repro` vs `python -m dfgan.orchestrate.parallel --workers N`, one
machine.

Each run gets a fresh temporary copy of the project (tests/pipeline_repo.py) with the tests' tiny params, or with
the repository's own params.yaml (`--params demo`, about 15 minutes sequential on 2 cores). Prints both wall times,
the ratio, and whether both runs produced the same results (tests/pipeline_repo.py: reproducible_results).

    python -m benchmarks.bench_parallel                   # tiny params, 2 workers
    python -m benchmarks.bench_parallel --params demo --workers 2
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import yaml

from tests.pipeline_repo import PROJECT_ROOT, make_pipeline_repo, reproducible_results, run


def timed(cmd: list[str], repo: Path) -> float:
    start = time.perf_counter()
    run(cmd, repo)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", choices=["tiny", "demo"], default="tiny")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-parallel-") as tmp:
        repos = []
        for name in ("sequential", "parallel"):
            repo = make_pipeline_repo(Path(tmp) / name)
            if args.params == "demo":  # undo the tiny overrides: the project's own params
                (repo / "params.yaml").write_text((PROJECT_ROOT / "params.yaml").read_text())
            repos.append(repo)
        sequential = timed(["dvc", "repro"], repos[0])
        parallel = timed([sys.executable, "-m", "dfgan.orchestrate.parallel", "--workers", str(args.workers)], repos[1])
        stages = len(yaml.safe_load((repos[0] / "dvc.lock").read_text())["stages"])
        first, second = reproducible_results(repos[0]), reproducible_results(repos[1])
        differing = sorted(key for key in first.keys() | second.keys() if first.get(key) != second.get(key))
    print(f"params: {args.params}, {stages} stages, {args.workers} workers")
    print(f"sequential `dvc repro`:        {sequential:7.1f} s")
    print(f"python -m dfgan.orchestrate.parallel:      {parallel:7.1f} s")
    print(f"speed-up:                      {sequential / parallel:7.2f}x")
    print(f"identical results:             {not differing}  (data and model hashes in dvc.lock, metrics "
          f"without their timing fields){'; differing: ' + ', '.join(differing) if differing else ''}")


if __name__ == "__main__":
    main()
