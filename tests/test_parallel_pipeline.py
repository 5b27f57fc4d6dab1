"""The real pipeline on tiny params: the parallel runner gives exactly the results of a sequential `dvc repro`."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dfgan.parallel import EXIT_INTERRUPTED
from tests.pipeline_repo import make_pipeline_repo, run, stages_run

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def output_hashes(repo: Path) -> dict[str, dict[str, str]]:
    """Stage -> {output path: md5} as recorded in dvc.lock."""
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    return {name: {out["path"]: out["md5"] for out in stage.get("outs", [])} for name, stage in lock["stages"].items()}


def runner(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "-m", "dfgan.parallel", "--workers", "2", *args], repo, check=False)


@pytest.fixture(scope="module")
def sequential(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, str]]:
    repo = make_pipeline_repo(tmp_path_factory.mktemp("sequential") / "repo")
    run(["dvc", "repro"], repo)
    return output_hashes(repo)


def test_runner_matches_sequential_repro_and_then_has_nothing_to_do(
    tmp_path: Path, sequential: dict[str, dict[str, str]]
) -> None:
    repo = make_pipeline_repo(tmp_path / "repo")
    first = runner(repo)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "on worker 0, CPU" in first.stdout and "on worker 1, CPU" in first.stdout  # both workers used
    assert output_hashes(repo) == sequential
    assert (repo / "logs/train_gan@4-dfgan.log").read_text().count("Running stage 'train_gan@4-dfgan'") == 1
    assert "Data and pipelines are up to date." in run(["dvc", "status"], repo).stdout
    again = runner(repo)
    assert again.returncode == 0 and "nothing to do" in again.stdout
    assert stages_run(run(["dvc", "repro"], repo).stdout) == set()


def test_runner_interrupted_mid_way_then_rerun_gives_the_same_results(
    tmp_path: Path, sequential: dict[str, dict[str, str]]
) -> None:
    repo = make_pipeline_repo(tmp_path / "repo")
    target = "synthesize@4-dfgan"  # its ancestors include the GAN, which resumes from its checkpoint
    proc = subprocess.Popen([sys.executable, "-m", "dfgan.parallel", "--workers", "2", target], cwd=repo,
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if "running  train_gan@4-dfgan" in line:
            proc.send_signal(signal.SIGINT)
            break
    rest, _ = proc.communicate(timeout=120)
    output = "".join(seen) + rest
    assert proc.returncode == EXIT_INTERRUPTED, output
    assert "stopped  train_gan@4-dfgan" in output

    resumed = runner(repo, target)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "running  train_gan@4-dfgan" in resumed.stdout and "prepare" not in resumed.stdout  # cached
    hashes = output_hashes(repo)
    assert set(hashes) == {"phantom", "prepare", "fid_stats_train@4", "fid_stats_test", "train_gan@4-dfgan", target}
    assert hashes == {name: sequential[name] for name in hashes}
