"""The benchmark commands the documentation (README.md, docs/*.md) shows run as written from the repository root; the
profile's step counts."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from benchmarks.throughput import planned_work
from dfgan.core.params_file import load_settings
from dfgan.core.settings import gan_seeds_at, with_values

ROOT = Path(__file__).resolve().parents[1]
COMMAND = re.compile(r"python3? (-m benchmarks\.\w+|benchmarks/\w+\.py)")


def readme_benchmark_commands() -> list[str]:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    return sorted(set(COMMAND.findall("\n".join(page.read_text() for page in pages))))


def test_the_readme_shows_every_benchmark() -> None:
    shown = {c.replace("-m benchmarks.", "") for c in readme_benchmark_commands()}
    libraries = {"throughput", "graph_compare", "gpu_check_steps", "gpu_check_concurrent"}  # the benchmarks' own code
    scripts = {p.stem for p in (ROOT / "benchmarks").glob("*.py")} - libraries
    assert scripts <= shown, f"benchmarks the documentation does not show: {sorted(scripts - shown)}"


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
    work = {w.stage: w for w in planned_work(load_settings(ROOT / "params.yaml"))}
    # size 24, val_fraction 0.2 -> 19 training images; batch 8 -> 3 steps per epoch; 4 epochs.
    assert work["train_gan (pix2pix)"].units == work["train_gan (dfgan)"].units == 4 * 3
    assert work["train_gan (dfgan)"].runs == 1
    assert work["synthesize"].units == 2 * 3 * 2  # plain + flipped, both variants
    # U-Net++: 6 rounds of ceil(2.0 x 19 / 4) = 10 steps, for 6 conditions (R, R x2, R + fresh, R + S of both GANs,
    # R + 2S), 2 augs, 2 seeds.
    assert work["seg (all conditions)"].units == 6 * 10 * 6 * 2 * 2


def test_planned_work_of_the_paper_profile() -> None:
    work = {w.stage: w for w in planned_work(load_settings(ROOT / "params_paper.yaml"))}
    # sizes x GAN seeds, and 22 more GAN seeds at sizes 50 and 100 (gan.extra_seeds at gan.extra_sizes).
    assert work["train_gan (dfgan)"].runs == 6 * 3 + 2 * 22
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


# ----------------------------------------------------------------------------------------------------------------------
# Reading a gpu_check results file back: the estimates from end-to-end numbers

SAMPLE_RESULTS = """\
=== environment (at 1 s, limit 120 s): python3 - 0
device NVIDIA H100 80GB HBM3 79 GiB
--- environment: exit 0 after 5 s

=== GAN step benchmark (at 7 s, limit 150 s): python3 -m benchmarks.bench_gan_step --sizes 256
device: NVIDIA H100 80GB HBM3, torch 2.11.0+cu130; batch 16; ngf 64
setting         size variant    s/step  steps/s  images/s  dfgan/pix2pix
fp32             256 pix2pix     0.016    62.50    1000.0
fp32             256 dfgan       0.040    25.00     400.0           2.50
bf16             256 pix2pix     0.015    66.67    1066.7
bf16             256 dfgan       0.030    33.33     533.3           2.00
graphs           256 pix2pix     0.010   100.00    1600.0
graphs           256 dfgan       0.020    50.00     800.0           2.00
--- GAN step benchmark: exit 0 after 60 s

=== U-Net++ step benchmark (at 70 s, limit 80 s): python3 -m benchmarks.bench_seg_step --sizes 256
device: NVIDIA H100 80GB HBM3, torch 2.11.0+cu130; U-Net++ resnet34, batch 16
setting        size   s/step  steps/s  images/s
fp32            256    0.040    25.00     400.0
graphs          256    0.025    40.00     640.0
--- U-Net++ step benchmark: exit 0 after 30 s

=== train_gan end to end: dfgan amp 1 cuda_graphs 0 (at 150 s, limit 90 s): python3 train_gan_runs.py
E2E variant=dfgan amp=1 graphs=0 batch=16 graphs_used=0 epochs=60 steps=240 seconds=12.0 steps_per_s=20.000 wall_s=22.0
=== train_gan end to end: dfgan amp 1 cuda_graphs 1 (at 180 s, limit 90 s): python3 train_gan_runs.py
E2E variant=dfgan amp=1 graphs=1 batch=16 graphs_used=1 epochs=60 steps=240 seconds=8.0 steps_per_s=30.000 wall_s=18.0
=== train_gan end to end: pix2pix amp 1 cuda_graphs 0 (at 200 s, limit 60 s): python3 train_gan_runs.py
E2E variant=pix2pix amp=1 graphs=0 batch=16 graphs_used=0 epochs=60 steps=240 seconds=5.0 steps_per_s=48.000 wall_s=15.0
=== train_gan, 1 at once on one GPU (at 220 s, limit 80 s): python3 train_gan_runs.py --runs 1
CONCURRENT k=1 variant=dfgan amp=1 graphs=0 batch=16 graphs_used=0 steps=480 max_seconds=24.00 window_s=24.00 wall_s=34.0 per_run_steps_per_s=20.000 aggregate_steps_per_s=20.000 aggregate_with_startup=14.118
=== train_gan, 4 at once on one GPU (at 260 s, limit 80 s): python3 train_gan_runs.py --runs 4
CONCURRENT k=4 variant=dfgan amp=1 graphs=0 batch=16 graphs_used=0 steps=480 max_seconds=9.00 window_s=10.00 wall_s=25.0 per_run_steps_per_s=13.333 aggregate_steps_per_s=48.000 aggregate_with_startup=19.200
"""


def test_parse_gpu_results_reads_the_committed_h200_run() -> None:
    from benchmarks.throughput import gpu_cost_ratios, parse_gpu_results

    results = parse_gpu_results((ROOT / "benchmarks" / "gpu_runs" / "2026-11-26-h200-results.txt").read_text())
    assert results.device == "NVIDIA H200 140 GiB" and results.gan_batch == 16 and results.seg_batch == 16
    assert results.gan_step[("fp32", "dfgan")] == 0.034 and results.gan_step[("bf16", "pix2pix")] == 0.016
    assert ("cudagraphs", "dfgan") not in results.gan_step  # its rows failed
    assert results.seg_step == {"fp32": 0.035, "bf16": 0.035}
    assert results.synthesis_s_per_batch == 0.015 and results.e2e == [] and results.concurrent == []
    ratios = gpu_cost_ratios(results, amp=True, graphs=False)
    assert ratios is not None and ratios["setting"] == "bf16"
    assert ratios["pix2pix"] == pytest.approx(0.016 / 0.036) and ratios["seg_per_image"] == pytest.approx(0.035 / 16 / 0.036)


def test_the_estimate_from_end_to_end_numbers_by_hand() -> None:
    from benchmarks.throughput import estimate_from_results, parse_gpu_results

    results = parse_gpu_results(SAMPLE_RESULTS)
    assert results.e2e_rate("dfgan", amp=True, graphs=True) == 30.0 and results.e2e_rate("dfgan") == 30.0
    assert results.concurrent_record(4)["aggregate_steps_per_s"] == 48.0 and results.concurrent_record(2) is None
    params = load_settings(ROOT / "params_paper.yaml")
    work = {w.stage: w for w in planned_work(params)}
    for per_gpu, dfgan_rate in ((1, 20.0), (4, 48.0)):
        estimates = {e.work.stage: e for e in estimate_from_results(params, results, per_gpu)}
        # DF-GAN (and every variant with an FID loss): the aggregate rate of per_gpu concurrent stages.
        assert estimates["train_gan (dfgan)"].seconds == pytest.approx(work["train_gan (dfgan)"].units / dfgan_rate)
        # pix2pix: scaled by the end-to-end rates at the profile's options (amp on, graphs off): 20 / 48.
        assert estimates["train_gan (pix2pix)"].seconds_per_unit == pytest.approx((20.0 / 48.0) / dfgan_rate)
        # U-Net++: the step benchmark at seg.cuda_graphs: false (fp32); synthesis: not in this file.
        assert estimates["seg (all conditions)"].seconds_per_unit == 0.040
        assert estimates["synthesize"].seconds_per_unit is None
    graphs = with_values(params, {"gan.cuda_graphs": True, "seg.cuda_graphs": True})
    estimates = {e.work.stage: e for e in estimate_from_results(graphs, results, 1)}
    assert estimates["train_gan (dfgan)"].seconds_per_unit == pytest.approx(1 / 30.0)  # the graphs E2E run
    assert estimates["seg (all conditions)"].seconds_per_unit == 0.025
    # 4 per GPU: the concurrency record ran with graphs off, so its rate is scaled by the E2E gain of graphs: 30 / 20.
    estimates = {e.work.stage: e for e in estimate_from_results(graphs, results, 4)}
    assert estimates["train_gan (dfgan)"].seconds_per_unit == pytest.approx(1 / (48.0 * 30.0 / 20.0))
    assert "x 1.50" in estimates["train_gan (dfgan)"].source


TIME_RESULTS = """\
device NVIDIA H100 80GB HBM3 79 GiB
TIME model=pix2pix mode=eager precision=bf16 size=256 batch=16 steps=30 per_step_ms=15.0 median_ms=14.9 timer=cuda_events
TIME model=pix2pix mode=graphs precision=bf16 size=256 batch=16 steps=30 per_step_ms=10.0 median_ms=9.9 timer=cuda_events replays=30
TIME model=dfgan mode=graphs precision=bf16 size=256 batch=16 steps=30 per_step_ms=25.0 median_ms=24.8 timer=cuda_events replays=30
TIME model=unetpp mode=graphs precision=fp32 size=256 batch=16 steps=30 per_step_ms=20.0 median_ms=19.9 timer=cuda_events replays=30
TIME model=inception mode=eager precision=fp32 size=256 batch=16 steps=30 per_step_ms=21.0 median_ms=21.0 timer=cuda_events
TIME model=synthesis mode=eager precision=fp32 size=256 batch=16 steps=30 per_step_ms=12.0 median_ms=12.0 timer=wall_median
CONCURRENT k=1 mps=0 variant=dfgan amp=1 graphs=1 batch=16 graphs_used=1 steps=160 aggregate_steps_per_s=30.0
CONCURRENT k=2 mps=0 variant=dfgan amp=1 graphs=1 batch=16 graphs_used=1 steps=160 aggregate_steps_per_s=40.0
CONCURRENT k=2 mps=1 variant=dfgan amp=1 graphs=1 batch=16 graphs_used=1 steps=160 aggregate_steps_per_s=50.0
"""


def test_the_gpu_checks_time_records_and_mps_groups_feed_the_estimate() -> None:
    from benchmarks.throughput import estimate_from_results, parse_gpu_results

    results = parse_gpu_results(TIME_RESULTS)
    assert results.gan_step == {("bf16", "pix2pix"): 0.015, ("graphs", "pix2pix"): 0.010, ("graphs", "dfgan"): 0.025}
    assert results.seg_step == {"graphs": 0.020} and results.gan_batch == results.seg_batch == 16
    assert results.synthesis_s_per_batch == 0.012 and results.device == "NVIDIA H100 80GB HBM3 79 GiB"
    assert results.concurrent_record(2)["aggregate_steps_per_s"] == 40.0  # without MPS unless asked
    assert results.concurrent_record(2, mps=True)["aggregate_steps_per_s"] == 50.0
    assert results.concurrent_record(1, mps=True) is None
    graphs = with_values(load_settings(ROOT / "params_paper.yaml"), {"gan.cuda_graphs": True, "seg.cuda_graphs": True})
    work = {w.stage: w for w in planned_work(graphs)}
    for per_gpu, mps, rate in ((1, False, 30.0), (2, False, 40.0), (2, True, 50.0)):
        estimates = {e.work.stage: e for e in estimate_from_results(graphs, results, per_gpu, mps)}
        assert estimates["train_gan (dfgan)"].seconds == pytest.approx(work["train_gan (dfgan)"].units / rate)
        # pix2pix: the DF-GAN rate scaled by the graphs step times' ratio, 10 / 25.
        assert estimates["train_gan (pix2pix)"].seconds_per_unit == pytest.approx(0.4 / rate)
        assert estimates["seg (all conditions)"].seconds_per_unit == 0.020
        assert estimates["synthesize"].seconds_per_unit == 0.012
        assert ("MPS" in estimates["train_gan (dfgan)"].source) == mps
    missing = {e.work.stage: e for e in estimate_from_results(graphs, results, 4, True)}["train_gan (dfgan)"]
    assert missing.seconds is None and missing.source == "no CONCURRENT k=4 mps=1 record"


def test_estimate_from_results_runs_without_timing_anything(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks import estimate

    results = tmp_path / "results.txt"
    results.write_text(SAMPLE_RESULTS)
    estimate.main(["--params", str(ROOT / "params_paper.yaml"), "--from-results", str(results), "--per-gpu", "4"])
    out = capsys.readouterr().out
    assert "NVIDIA H100 80GB HBM3 79 GiB" in out and "4 GAN run(s) at a time per GPU" in out
    paper = load_settings(ROOT / "params_paper.yaml")
    gans = sum(len(gan_seeds_at(paper, size)) for size in paper.sizes)  # 25 seeds at 50 and 100, 3 elsewhere: 62
    assert gans == 62
    assert re.search(rf"^train_gan \(dfgan\)\s+{gans}\s+[\d,]+ GAN steps\s+0\.0208\s+[\d.]+ h\s+4 concurrent", out, re.M), out
    assert re.search(r"^total \(one GPU\)\s+-$", out, re.M), out  # synthesis unmeasured: no total


def test_predict_speedup_costs_from_gpu_ratios() -> None:
    from benchmarks.predict_speedup import CPU_COSTS, stage_cost

    params = load_settings(ROOT / "params_paper.yaml")
    kind, cpu = stage_cost("train_gan@2000-pix2pix-0", params)
    _, gpu = stage_cost("train_gan@2000-pix2pix-0", params, {"pix2pix": 0.5, "seg_per_image": 0.01})
    assert kind == "train_gan (pix2pix)" and gpu / cpu == pytest.approx(0.5 / CPU_COSTS["pix2pix"])
    assert stage_cost("train_gan@2000-dfgan_paper-0", params)[1] == stage_cost("train_gan@2000-dfgan-0", params)[1]
    _, seg_cpu = stage_cost("seg_real@100-real+paste-classic", params)
    _, seg_gpu = stage_cost("seg_real@100-real+paste-classic", params, {"pix2pix": 0.5, "seg_per_image": 0.01})
    assert seg_gpu / seg_cpu == pytest.approx(0.01 / CPU_COSTS["seg_per_image"])


def test_the_recipe_table_counts_failed_and_improving_seeds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks import seg_recipe

    def run(condition: str, aug: str, kept: list[int], rounds: list[int], failed: int) -> dict[str, object]:
        per_seed = [{"best_round": k, "rounds_run": r} for k, r in zip(kept, rounds)]
        return {"condition": condition, "aug": aug, "failed": failed,
                "still_improving": sum(k == r for k, r in zip(kept, rounds)), "seeds": len(kept),
                "dice_mean": 0.3, "dice_sem": 0.02, "per_seed": per_seed}

    before = tmp_path / "before.json"
    before.write_text(json.dumps({"runs": [run("real", "none", [1, 11, 15, 1], [5, 15, 15, 5], 2)]}))
    after = tmp_path / "after.json"
    after.write_text(json.dumps({"runs": [run("real", "none", [20, 30, 22, 25], [25, 35, 27, 30], 0),
                                          run("real2x", "classic", [20, 40, 22, 25], [25, 40, 27, 30], 1)]}))
    seg_recipe.main(["--table", f"before={before}", f"after={after}"])
    printed = capsys.readouterr().out
    assert "| real | none | before | 4 | 2 | 1 | 10.0 | 0.300 ± 0.020 |" in printed
    assert "| real2x | classic | after | 4 | 1 | 1 | 30.5 |" in printed
    assert printed.index("| real | none | after") < printed.index("| real2x | classic")  # 'none' rows first
    assert "before: 2 of 4 seeds failed (50.0%) in 1 runs, 0 run(s) with none; still improving at the last round: " \
           "at most 25% of a run's seeds" in printed
    assert "after: 1 of 8 seeds failed (12.5%) in 2 runs, 1 run(s) with none" in printed


def test_the_shadow_recipe_stops_and_keeps_as_fit_would() -> None:
    from benchmarks.seg_recipe import ShadowRecipe, shadow_recipe

    model = torch.nn.Linear(1, 1)

    def follow(shadow: ShadowRecipe, curve: list[float]) -> ShadowRecipe:
        for dice in curve:
            shadow.see(model, dice)
        return shadow

    v2 = shadow_recipe("15,4,1")
    dead = follow(v2.fresh(), [0.08, 0.0, 0.0, 0.0, 0.0, 0.0, 0.2, 0.3])  # the v2 failure: round 1 kept
    assert dead.stopped and (dead.round, dead.best_round) == (5, 1) and dead.val_dice == [0.08, 0.0, 0.0, 0.0, 0.0]
    ties = follow(v2.fresh(), [0.0, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05, 0.9])  # a tie keeps the later round
    assert ties.stopped and (ties.round, ties.best_round) == (7, 3)
    capped = follow(v2.fresh(), [0.01 * k for k in range(1, 40)])  # still improving at its last round
    assert capped.stopped and (capped.round, capped.best_round) == (15, 15) and len(capped.val_dice) == 15
    patient = follow(shadow_recipe("40,5,15").fresh(), [0.08] + [0.0] * 20)  # min_rounds holds it to round 15
    assert patient.stopped and (patient.round, patient.best_round) == (15, 1)
    assert follow(shadow_recipe("15,null,1").fresh(), [0.0] * 10).stopped is False
    assert capped.best_state is not None and set(capped.best_state) == {"weight", "bias"}


def test_check_shadow_finds_a_seed_that_differs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks import seg_recipe

    seed = {"seed": 0, "best_round": 1, "rounds_run": 5, "val_dice": [0.08, 0.0, 0.0, 0.0, 0.0], "test_dice": 0.03,
            "empty_fraction": 0.0}
    shadow, real, other = tmp_path / "shadow.json", tmp_path / "real.json", tmp_path / "other.json"
    shadow.write_text(json.dumps({"runs": [{"condition": "real", "aug": "none", "per_seed": [seed]}]}))
    real.write_text(json.dumps({"runs": [{"condition": "real", "aug": "none", "per_seed": [dict(seed)]}]}))
    other.write_text(json.dumps({"runs": [{"condition": "real", "aug": "none",
                                           "per_seed": [{**seed, "test_dice": 0.0300001}]}]}))
    assert seg_recipe.main(["--check-shadow", str(shadow), str(real)]) == 0
    assert "1 of 1 seed(s) identical" in capsys.readouterr().out
    assert seg_recipe.main(["--check-shadow", str(shadow), str(other)]) == 1
    assert "DIFFER in test_dice" in capsys.readouterr().out


def test_the_recipe_table_in_the_docs_is_the_committed_runs() -> None:
    """docs/statistics.md's recipe table is recomputed from the JSON files committed beside the study's printout."""
    from benchmarks.seg_recipe import check_shadow, load_runs, recipe_table

    folder = ROOT / "benchmarks" / "recipe_runs" / "2026-12-07-n50-gan-free"
    table = recipe_table({"v2": load_runs(sorted(folder.glob("shadow-*.json"))),
                          "v3": load_runs(sorted(folder.glob("after-*.json")))})
    rows = [line for line in table.splitlines() if line.startswith("| ")]
    docs = (ROOT / "docs" / "statistics.md").read_text()
    assert len(rows) == 2 + 16 and all(row in docs for row in rows)
    assert "v3: 0 of 96 seeds failed (0.0%) in 8 runs" in table and "v2: 14 of 96 seeds failed (14.6%)" in table
    for aug in ("none", "classic"):
        lines, differ = check_shadow(load_runs([folder / f"shadow-real-{aug}.json"]),
                                     load_runs([folder / f"before-real-{aug}.json"]))
        assert len(lines) == 3 and differ == 0
