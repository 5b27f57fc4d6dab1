"""The benchmark commands the README shows run as written from the repository root; the profile's step counts."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dfgan.config import load_params
from dfgan.throughput import planned_work

ROOT = Path(__file__).resolve().parents[1]
COMMAND = re.compile(r"python3? (-m benchmarks\.\w+|benchmarks/\w+\.py)")


def readme_benchmark_commands() -> list[str]:
    return sorted(set(COMMAND.findall((ROOT / "README.md").read_text())))


def test_the_readme_shows_every_benchmark() -> None:
    shown = {c.replace("-m benchmarks.", "") for c in readme_benchmark_commands()}
    scripts = {p.stem for p in (ROOT / "benchmarks").glob("*.py")}
    assert scripts <= shown, f"benchmarks the README does not show: {sorted(scripts - shown)}"


@pytest.mark.slow  # one interpreter start (torch import) per benchmark
@pytest.mark.parametrize("command", readme_benchmark_commands())
def test_readme_benchmark_command_runs_from_the_root(command: str) -> None:
    result = subprocess.run(
        [sys.executable, *command.split(), "--help"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "usage:" in result.stdout


def test_gpu_check_script_is_valid_bash() -> None:
    subprocess.run(["bash", "-n", str(ROOT / "benchmarks" / "gpu_check.sh")], check=True)


def test_planned_work_counts_the_demo_profile_by_hand() -> None:
    work = {w.stage: w for w in planned_work(load_params(ROOT / "params.yaml"))}
    # sizes 12 and 24, val_fraction 0.2 -> 10 and 19 training images; batch 8 -> 2 + 3 steps per epoch; 8 epochs.
    assert work["train_gan (pix2pix)"].units == work["train_gan (dfgan)"].units == 8 * (2 + 3)
    assert work["train_gan (dfgan)"].runs == 2
    assert work["synthesize"].units == 2 * (2 + 3) * 2  # plain + flipped, both variants
    # U-Net++: 6 rounds of ceil(2.0 x N_train / 4) steps: 5 (size 12) and 10 (size 24), for 5 conditions, 2 augs,
    # 2 seeds.
    assert work["seg (all conditions)"].units == 6 * (5 + 10) * 5 * 2 * 2


def test_planned_work_of_the_paper_profile() -> None:
    work = {w.stage: w for w in planned_work(load_params(ROOT / "params_paper.yaml"))}
    assert work["train_gan (dfgan)"].runs == 6 * 3  # sizes x GAN seeds
    assert work["train_gan (dfgan)"].units > 1_000_000  # about 392,000 steps per GAN seed


def test_bench_augment_runs_on_cpu_and_prints_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks import bench_augment

    # The benchmark applies runtime.deterministic and --threads to this process: put both back afterwards. One
    # thread: several on a busy machine can take seconds per step (threads spinning against other processes).
    deterministic, threads = torch.are_deterministic_algorithms_enabled(), torch.get_num_threads()
    try:
        bench_augment.main([
            "--params", str(ROOT / "params.yaml"), "--size", "32", "--images", "16", "--workers", "0",
            "--device", "cpu", "--repeats", "1", "--threads", "1",
        ])
    finally:
        torch.use_deterministic_algorithms(deterministic)
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    assert out.startswith("device: cpu")
    assert re.search(r"^path\s+workers\s+images/s\s+ms/image\s+start-up s\s+keeps up fp32$", out, re.M), out
    assert re.search(r"^per-sample\s+0\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+(yes|no)$", out, re.M), out
    assert re.search(r"^batched\s+-\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+(yes|no)$", out, re.M), out
    assert re.search(r"^step fp32\s+-\s+[\d.]+\s+[\d.]+\s+-$", out, re.M), out
    assert "fastest: " in out
