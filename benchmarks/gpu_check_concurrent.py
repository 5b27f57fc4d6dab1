"""Item (e) of the GPU check: K = 1, 2, 4 ``train_gan`` stage processes at once on one GPU, with CUDA graphs, and
again under CUDA MPS where its daemon can be started.

    python -m benchmarks.gpu_check_concurrent OUT_DIR/check.json

(benchmarks/gpu_check.py runs it as the step ``concurrent``; its records and verdicts are those of
benchmarks/gpu_check_steps.py, whose ``Report`` it uses.)

The runs train on a prepared set of blob images (tests/fakes.py; on a GPU a pool of 64: 51 training images at the
check's size, as the phantom's size 64 gave) with the paper profile's GAN and its FID statistics (the fid_stats
stage), in OUT_DIR/work. Each run gets its share of the CPU cores (as the parallel runner gives its stages), or
``OMP_NUM_THREADS`` when that is set (the dry run sets 1: spinning threads on a shared 2-core machine).
A run's training window ends when it writes its metrics and lasts its ``seconds`` (data, logging, FID evaluation and
checkpoints included, the process start-up not); the aggregate is all steps over the union of the windows (so
start-up stagger counts against it), ``aggregate_with_startup`` over the whole wall time. Each group is one
``CONCURRENT`` record; a group that cannot finish before the step's deadline (``GPU_CHECK_STEP_DEADLINE``) is
skipped with that reason.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch
import yaml

from benchmarks.gpu_check import blob_prepared, mps_environment, start_mps, stop_mps
from benchmarks.gpu_check_steps import NO_CUDA, CheckConfig, Report
from dfgan.orchestrate.devices import THREAD_VARIABLES, thread_share, usable_cpus

MIN_GROUP_SECONDS = 20  # a group needs at least this long (process start-up, Inception, a few epochs)


def write_params(config: CheckConfig, work: Path, epochs: int) -> Path:
    params = yaml.safe_load(Path(config.params).read_text())
    # One training size with seeds 0-7 (K runs take seeds 0..K-1): the paper profile's per-size plan (its primary
    # sizes, extra GAN and U-Net++ seeds at N = 50, 100) names sizes this check does not train, which the params
    # rules refuse.
    seeds = list(range(8))
    params["sizes"] = [config.conc_pool]
    params["report"]["primary_sizes"] = None
    params["seg"].update(seeds=seeds, extra_seeds=[])  # as many as the GAN seeds, which the rules ask for
    params["data"]["image_size"] = config.size
    params["fid"]["batch_size"] = 32
    params["runtime"]["deterministic"] = False  # the DF-GAN graph needs it off
    params["gan"].update(n_epochs=epochs // 2, n_epochs_decay=epochs - epochs // 2, seeds=seeds, amp=True,
                         cuda_graphs=True, keep_checkpoint=False, batch_size=config.batch,
                         extra_sizes=[], extra_seeds=[])
    path = work / f"params_{epochs}_epochs.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def prepare(config: CheckConfig, work: Path, cuda: bool) -> None:
    """The blob data and its FID statistics (the fid_stats stage; on a GPU in its own process, so that this one
    stays off the GPU and an MPS server can start later)."""
    blob_prepared(work / "data" / "prepared", config.size, config.conc_pool, 8, 0.2)
    arguments = ["--split", "train", "--size", str(config.conc_pool), "--params", str(write_params(config, work, 2)),
                 "--prepared", str(work / "data" / "prepared")]
    if not cuda:
        import stages.fid_stats

        with contextlib.chdir(work):
            stages.fid_stats.main(arguments)
        return
    result = subprocess.run([sys.executable, "-m", "stages.fid_stats", *arguments], cwd=work, capture_output=True,
                            text=True, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"fid_stats failed: {result.stdout[-300:]} {result.stderr[-300:]}")
    print(result.stdout.strip(), flush=True)


def run_group(config: CheckConfig, work: Path, k: int, mps: dict[str, str] | None, timeout: float) -> dict[str, Any]:
    """K train_gan stages at once (seeds 0..K-1), each with its share of the CPU cores; their CONCURRENT record."""
    variant, epochs = config.conc_variant, max(1, config.conc_epochs // k)
    params = write_params(config, work, epochs)
    names = [f"{config.conc_pool}_{variant}_s{seed}" for seed in range(k)]
    for name in names:  # fresh runs: no checkpoint to resume, no stale metrics
        for path in (work / "checkpoints/gan" / f"{name}.pt", work / "metrics/gan" / f"{name}.json"):
            path.unlink(missing_ok=True)
    threads = int(os.environ.get("OMP_NUM_THREADS") or thread_share(usable_cpus(), k))
    env = {**os.environ, **{name: str(threads) for name in THREAD_VARIABLES}, **(mps or {})}
    logs = Path(config.out) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    started = time.time()
    procs = []
    for seed, name in enumerate(names):
        log = open(logs / f"concurrent_k{k}{'_mps' if mps else ''}_{name}.log", "w")
        command = [sys.executable, "-m", "stages.train_gan", "--size", str(config.conc_pool), "--variant", variant,
                   "--seed", str(seed), "--params", str(params)]
        procs.append((subprocess.Popen(command, cwd=work, stdout=log, stderr=subprocess.STDOUT, env=env), log, name))
    failed = []
    try:
        for proc, log, name in procs:
            try:
                proc.wait(timeout=max(1.0, started + timeout - time.time()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.returncode != 0 or not (work / "metrics/gan" / f"{name}.json").is_file():
                failed.append(f"{name} (exit {proc.returncode}): " + " | ".join(
                    Path(log.name).read_text().strip().splitlines()[-3:]))
    finally:
        for proc, log, _ in procs:
            if proc.poll() is None:
                proc.kill()
            log.close()
    wall = time.time() - started
    if failed:
        raise RuntimeError("; ".join(failed)[:600])
    runs = []
    for name in names:
        path = work / "metrics/gan" / f"{name}.json"
        runs.append({**json.loads(path.read_text()), "end": path.stat().st_mtime})
    steps = sum(r["steps"] for r in runs)
    window = max(r["end"] for r in runs) - min(r["end"] - r["seconds"] for r in runs)
    slowest = max(r["seconds"] for r in runs)
    return {
        "k": k, "mps": int(mps is not None), "variant": variant, "amp": 1, "graphs": 1,
        "batch": runs[0]["batch_size"], "graphs_used": int(all(r.get("cuda_graphs", False) for r in runs)),
        "epochs": epochs, "steps": steps, "max_seconds": round(slowest, 2), "window_s": round(window, 2),
        "wall_s": round(wall, 1), "per_run_steps_per_s": round(steps / k / slowest, 3),
        "aggregate_steps_per_s": round(steps / window, 3), "aggregate_with_startup": round(steps / wall, 3),
        "threads_per_run": threads,
    }


def concurrent(config: CheckConfig, report: Report) -> None:
    deadline = float(os.environ.get("GPU_CHECK_STEP_DEADLINE", time.time() + 600))
    cuda = torch.cuda.is_available()
    work = Path(config.out) / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    with report.guard("concurrent data"):
        prepare(config, work, cuda)
    if "fail" in report.statuses:
        report.skip_all([f"concurrent k={k}" for k in config.ks], "no data")
        return
    groups = [(k, False) for k in config.ks] + [(k, True) for k in config.ks if k > 1]
    mps: dict[str, str] | None = None
    mps_directory = Path(config.out) / "mps"
    needed = MIN_GROUP_SECONDS  # then the last group's wall time
    try:
        for k, with_mps in groups:
            item = f"concurrent k={k}{' MPS' if with_mps else ''}"
            if with_mps and not cuda:
                report.check(item, None, f"{NO_CUDA}: MPS shares a GPU")
                continue
            left = deadline - time.time() - 3
            if left < needed:
                report.check(item, None, f"no time left before the step's deadline: {left:.0f} s left, the last "
                             f"group took {needed:.0f} s")
                continue
            if with_mps and mps is None:
                started, why = start_mps(mps_directory)
                if not started:
                    report.skip_all([f"concurrent k={k} MPS" for k, m in groups if m], f"MPS not started: {why}")
                    break
                mps = mps_environment(mps_directory)
            with report.guard(item):
                record = run_group(config, work, k, mps if with_mps else None, left)
                needed = max(MIN_GROUP_SECONDS, record["wall_s"])
                report.record("CONCURRENT", **record)
                if cuda and not record["graphs_used"]:
                    report.check(item, False, "a run's steps did not replay a CUDA graph (its metrics: cuda_graphs)")
    finally:
        if mps is not None:
            stop_mps(mps_directory)
    if not cuda:
        report.check("concurrent graphs", None, f"{NO_CUDA}: the runs asked for gan.cuda_graphs and ran eagerly")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    config, report = CheckConfig.load(argv[0]), Report()
    concurrent(config, report)
    return report.exit_status()


if __name__ == "__main__":
    sys.exit(main())
