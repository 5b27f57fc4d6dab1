"""Build a throw-away git + DVC repository holding a copy of this project, with tiny params, for end-to-end tests."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PROJECT_FILES = ("dvc.yaml", "params.yaml", ".gitignore", ".dvcignore", "requirements.txt")
PROJECT_DIRS = ("dfgan", "stages")

# Small enough that every stage runs in seconds on a 2-core CPU, large enough that every code path runs.
TINY_OVERRIDES: dict[str, Any] = {
    "sizes": [4],
    "phantom": {"count": 16, "positive_fraction": 0.8, "image_size": 128, "contact_sheet": 4},
    "data": {"image_size": 32, "test_size": 4, "workers": 1, "val_fraction": 0.25},
    "fid": {"batch_size": 8, "kid_subset_size": 4, "kid_subsets": 2},
    "gan": {
        "ngf": 8, "ndf": 8, "batch_size": 2, "n_epochs": 1, "n_epochs_decay": 1,
        "checkpoint_every": 1, "fid_eval_every": 2, "sample_count": 2, "seeds": [0, 1],
    },
    "synth": {"preview_count": 2},
    # real+paste and the oracle real+fresh: GAN-free, so the lambda_l1 experiment must not rerun them.
    "seg": {"epochs": 1, "batch_size": 4, "seeds": [0, 1], "real_conditions": ["real", "real+paste", "real+fresh"],
            "flipped_variants": ["dfgan"]},
    "report": {"min_units": 2},  # two GAN seeds and two U-Net++ seeds: intervals (not calibrated at 2), computed
}


def deep_update(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            deep_update(base[key], value)
        else:
            base[key] = value
    return base


def run(cmd: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "DFGAN_NO_PROGRESS": "1", "GIT_TERMINAL_PROMPT": "0"}
    result = subprocess.run(cmd, cwd=cwd, env=env, text=True, capture_output=True)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def make_pipeline_repo(root: Path, overrides: dict[str, Any] | None = None) -> Path:
    """Copy the project into ``root`` as a fresh git repo with DVC initialised and tiny params committed."""
    root.mkdir(parents=True, exist_ok=True)
    for name in PROJECT_FILES:
        shutil.copy2(PROJECT_ROOT / name, root / name)
    for name in PROJECT_DIRS:
        shutil.copytree(PROJECT_ROOT / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    params = yaml.safe_load((root / "params.yaml").read_text())
    deep_update(params, TINY_OVERRIDES)
    deep_update(params, overrides or {})
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False, default_flow_style=False))
    run(["git", "init", "-q"], root)
    run(["git", "config", "user.email", "tests@example.invalid"], root)
    run(["git", "config", "user.name", "tests"], root)
    run(["dvc", "init", "-q"], root)
    run(["dvc", "config", "core.analytics", "false"], root)
    run(["git", "add", "-A"], root)
    run(["git", "commit", "-q", "-m", "tiny pipeline"], root)
    return root


def stages_run(output: str) -> set[str]:
    """Names of the stages that ``dvc repro`` / ``dvc exp run`` actually ran, from its output."""
    ran = set()
    for line in output.splitlines():
        line = line.strip()
        if line.startswith("Running stage '"):
            ran.add(line.split("'")[1])
    return ran


# Fields that measure how long something took: the only parts of the outputs that differ between two runs on CPU.
TIMING_KEYS = frozenset({"seconds", "steps_per_second"})
# Outputs that record wall-clock time (dvclive's curves carry a timestamp column), compared through the metrics.
TIMED_OUTPUT_PREFIXES = ("metrics/", "dvclive/")


def _without_timing(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _without_timing(item) for key, item in value.items() if key not in TIMING_KEYS}
    if isinstance(value, list):
        return [_without_timing(item) for item in value]
    return value


def reproducible_results(repo: Path) -> dict[str, Any]:
    """What two runs of the same pipeline must agree on: the dvc.lock hash of every output except those that record
    wall-clock time, and the content of every metrics JSON with its timing fields removed."""
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    results: dict[str, Any] = {}
    for stage in lock["stages"].values():
        for out in stage.get("outs", []):
            if not out["path"].startswith(TIMED_OUTPUT_PREFIXES):
                results[out["path"]] = out["md5"]
    for path in sorted((repo / "metrics").rglob("*.json")):
        results[str(path.relative_to(repo))] = _without_timing(json.loads(path.read_text()))
    return results


@dataclass(frozen=True)
class ReproducedPipeline:
    """A tiny-params repo after its first ``dvc repro``, with what that run left (read before any test changes it)."""

    repo: Path
    output: str  # stdout of the first `dvc repro`
    locked_stages: set[str]
    results: dict[str, Any]


def reproduce_tiny_pipeline(root: Path) -> ReproducedPipeline:
    repo = make_pipeline_repo(root)
    first = run(["dvc", "repro"], repo)
    locked = set(yaml.safe_load((repo / "dvc.lock").read_text())["stages"])
    return ReproducedPipeline(repo, first.stdout, locked, reproducible_results(repo))
