"""The real pipeline on tiny params: the parallel runner gives exactly the results of a sequential `dvc repro`."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from dfgan.orchestrate.parallel import EXIT_INTERRUPTED
from tests.pipeline_repo import ReproducedPipeline, make_pipeline_repo, reproducible_results, run, stages_run

pytestmark = pytest.mark.slow


def locked_stages(repo: Path) -> set[str]:
    return set(yaml.safe_load((repo / "dvc.lock").read_text())["stages"])


def differences(got: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    """The keys whose values differ (or that only one side has), for a readable failure."""
    return sorted(key for key in got.keys() | expected.keys() if got.get(key) != expected.get(key))


def runner(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "-m", "dfgan.orchestrate.parallel", "--workers", "2", *args], repo, check=False)


@pytest.fixture(scope="module")
def sequential(tiny_pipeline: ReproducedPipeline) -> tuple[set[str], dict[str, Any]]:
    """What a sequential `dvc repro` of the tiny params locked and produced (shared with test_pipeline_e2e)."""
    return tiny_pipeline.locked_stages, tiny_pipeline.results


def test_runner_matches_sequential_repro_and_then_has_nothing_to_do(
    tmp_path: Path, sequential: tuple[set[str], dict[str, Any]]
) -> None:
    stages, expected = sequential
    repo = make_pipeline_repo(tmp_path / "repo")
    first = runner(repo)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "on worker 0, CPU" in first.stdout and "on worker 1, CPU" in first.stdout  # both workers used
    assert locked_stages(repo) == stages
    assert differences(reproducible_results(repo), expected) == []
    assert (repo / "logs/train_gan@4-dfgan-0.log").read_text().count("Running stage 'train_gan@4-dfgan-0'") == 1
    assert "Data and pipelines are up to date." in run(["dvc", "status"], repo).stdout
    again = runner(repo)
    assert again.returncode == 0 and "nothing to do" in again.stdout
    assert stages_run(run(["dvc", "repro"], repo).stdout) == set()


def test_runner_interrupted_mid_way_then_rerun_gives_the_same_results(
    tmp_path: Path, sequential: tuple[set[str], dict[str, Any]]
) -> None:
    _, expected = sequential
    repo = make_pipeline_repo(tmp_path / "repo")
    target = "synthesize@4-dfgan-0"  # its ancestors include the GAN, which resumes from its checkpoint
    proc = subprocess.Popen([sys.executable, "-m", "dfgan.orchestrate.parallel", "--workers", "2", target], cwd=repo,
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if "running  train_gan@4-dfgan-0" in line:
            proc.send_signal(signal.SIGINT)
            break
    rest, _ = proc.communicate(timeout=120)
    output = "".join(seen) + rest
    assert proc.returncode == EXIT_INTERRUPTED, output
    assert "stopped  train_gan@4-dfgan-0" in output

    resumed = runner(repo, target)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "running  train_gan@4-dfgan-0" in resumed.stdout and "prepare" not in resumed.stdout  # cached
    assert locked_stages(repo) == {"phantom@default", "prepare", "fid_stats_train@4", "fid_stats_test",
                                   "train_gan@4-dfgan-0", target}
    results = reproducible_results(repo)
    reference = {key: expected.get(key) for key in results}  # the partial run's outputs, from the full one
    gan = "metrics/gan/4_dfgan_s0.json"
    assert results[gan].pop("resumed_after_epoch") in (0, 1)  # 1 if stopped after the epoch-1 checkpoint
    reference[gan] = {key: value for key, value in reference[gan].items() if key != "resumed_after_epoch"}
    assert differences(results, reference) == []


def test_tiny_ablation_through_the_runner_is_an_experiment(tmp_path: Path) -> None:
    """`-S` and `--name` on the real pipeline: `dvc exp run -n NAME -S ...` spread over the workers. A data param on
    the `prepare` target keeps it to two stages (the real use is `-S gan.lambda_l1=50` on the whole pipeline)."""
    repo = make_pipeline_repo(tmp_path / "repo")
    baseline = runner(repo, "prepare")
    assert baseline.returncode == 0, baseline.stdout + baseline.stderr
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-q", "-m", "baseline"], repo)

    ablation = runner(repo, "-S", "data.test_size=5", "--name", "tiny-ablation", "prepare")
    assert ablation.returncode == 0, ablation.stdout + ablation.stderr
    assert "1 of 2 stage(s) to run" in ablation.stdout and "running  prepare" in ablation.stdout  # phantom cached
    assert "saved experiment 'tiny-ablation'" in ablation.stdout
    assert yaml.safe_load((repo / "params.yaml").read_text())["data"]["test_size"] == 5  # left applied, as exp run

    shown = json.loads(run(["dvc", "exp", "show", "--json", "--no-pager"], repo).stdout)
    saved = [rev["data"] for branch in shown for exp in branch.get("experiments") or [] for rev in exp["revs"]
             if exp.get("name") == "tiny-ablation" or rev.get("name") == "tiny-ablation"]
    assert len(saved) == 1, shown
    assert saved[0]["params"]["params.yaml"]["data"]["data"]["test_size"] == 5
    assert saved[0]["metrics"]["metrics/data.json"]["data"]["splits"]["test"] == 5
    diff = json.loads(run(["dvc", "metrics", "diff", "HEAD", "tiny-ablation", "--json",
                           "--targets", "metrics/data.json"], repo).stdout)
    assert diff["metrics/data.json"]["splits.test"] == {"old": 4, "new": 5, "diff": 1}
