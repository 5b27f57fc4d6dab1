"""Start DVC's experiment-queue workers so that each runs its experiments on its own GPU(s).

`dvc queue start -j N` starts N workers that all inherit one environment, so every queued experiment would see
every GPU. A worker keeps the environment it was started with, and `dvc queue start -j k` only adds the workers
numbered up to k that are not running yet; so starting them one at a time, the k-th with CUDA_VISIBLE_DEVICES set to
its own GPU, pins each worker (and each experiment it runs, one at a time) to one device:

    dvc exp run --queue -S gan.lambda_l1=50
    dvc exp run --queue -S gan.lambda_l1=200
    python -m dfgan.orchestrate.exp_queue --gpus 0,1   # = CUDA_VISIBLE_DEVICES=0 dvc queue start -j 1, then =1 ... -j 2
    python -m dfgan.orchestrate.exp_queue --gpus 0,1 --per-gpu 2   # four workers, two experiments on each GPU
    dvc queue status; dvc exp show

Queue the experiments first: a DVC queue worker with nothing to do exits after a few seconds. Each worker (and so
each experiment) gets an equal share of the CPU cores in OMP_NUM_THREADS, MKL_NUM_THREADS and OPENBLAS_NUM_THREADS,
unless OMP_NUM_THREADS is already set.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from dfgan.orchestrate.dag import dvc_command, run_dvc
from dfgan.orchestrate.devices import THREAD_VARIABLES, detect_gpus, thread_share, usable_cpus

_WORKERS = re.compile(r"Worker status:\s*(\d+)\s+active,\s*(\d+)\s+idle")


def device_groups(gpus: Sequence[str], per_experiment: int) -> list[str]:
    """CUDA_VISIBLE_DEVICES of each worker: consecutive groups of ``per_experiment`` GPUs (a remainder is unused)."""
    if per_experiment < 1:
        raise ValueError(f"--gpus-per-experiment must be at least 1, got {per_experiment}")
    count = len(gpus) // per_experiment
    if count == 0:
        raise ValueError(f"{len(gpus)} GPU(s) cannot give {per_experiment} to even one experiment")
    return [",".join(gpus[i * per_experiment : (i + 1) * per_experiment]) for i in range(count)]


def worker_devices(groups: Sequence[str], per_gpu: int) -> list[str]:
    """CUDA_VISIBLE_DEVICES of each queue worker: ``per_gpu`` workers per device group, interleaved so that the
    first experiments go to different groups (groups 0 and 1, two each: workers on 0, 1, 0, 1)."""
    if per_gpu < 1:
        raise ValueError(f"--per-gpu must be at least 1, got {per_gpu}")
    return [group for _ in range(per_gpu) for group in groups]


def queue_worker_count(status_text: str) -> int:
    """Workers (active + idle) in the output of ``dvc queue status``."""
    match = _WORKERS.search(status_text)
    if match is None:
        raise ValueError(f"no 'Worker status' line in `dvc queue status` output:\n{status_text}")
    return int(match[1]) + int(match[2])


def start_pinned_workers(repo: Path, groups: Sequence[str], timeout_s: float = 120.0,
                         threads: int | None = None) -> None:
    """Start one queue worker per entry of ``groups`` (its CUDA_VISIBLE_DEVICES), waiting for each to register before
    starting the next (or a second `dvc queue start` would not yet see the first worker and start it again without
    its device). ``threads`` goes into the thread-pool variables unless OMP_NUM_THREADS is set."""
    for number, devices in enumerate(groups, start=1):
        env = {**os.environ, "CUDA_VISIBLE_DEVICES": devices}
        if threads is not None and "OMP_NUM_THREADS" not in os.environ:
            env.update({name: str(threads) for name in THREAD_VARIABLES})
        # A file, not a pipe: the worker DVC starts in the background inherits the handle, and a pipe would stay
        # open (and this call blocked) for as long as the worker lives.
        with tempfile.TemporaryFile("w+") as output:
            started = subprocess.run(dvc_command("queue", "start", "-j", str(number)), cwd=repo, env=env,
                                     text=True, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT)
            output.seek(0)
            if started.returncode != 0:
                raise RuntimeError(f"`dvc queue start -j {number}` failed:\n{output.read()}")
        deadline = time.monotonic() + timeout_s
        while queue_worker_count(run_dvc(repo, "queue", "status")) < number:
            if time.monotonic() > deadline:
                raise TimeoutError(f"queue worker {number} (CUDA_VISIBLE_DEVICES={devices}) did not start "
                                   f"within {timeout_s:.0f} s; see `dvc queue logs`")
            time.sleep(0.5)
        shown = f", OMP_NUM_THREADS={env['OMP_NUM_THREADS']}" if "OMP_NUM_THREADS" in env else ""
        print(f"queue worker {number}: CUDA_VISIBLE_DEVICES={devices}{shown}", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dfgan.orchestrate.exp_queue", description=__doc__.split("\n\n")[0])
    parser.add_argument("--gpus", default="auto", help="auto (CUDA_VISIBLE_DEVICES or nvidia-smi) or ids like 0,1,2,3")
    parser.add_argument("--gpus-per-experiment", type=int, default=1)
    parser.add_argument("--per-gpu", type=int, default=1, metavar="K",
                        help="experiments at once on each GPU (group): K queue workers per device")
    parser.add_argument("--repo", type=Path, default=Path("."))
    args = parser.parse_args(argv)
    gpus = detect_gpus(args.gpus)
    if not gpus:
        print("no GPUs found (or --gpus none): use `dvc queue start -j N` directly", file=sys.stderr)
        return 2
    try:
        workers = worker_devices(device_groups(gpus, args.gpus_per_experiment), args.per_gpu)
        start_pinned_workers(args.repo.resolve(), workers, threads=thread_share(usable_cpus(), len(workers)))
    except (ValueError, RuntimeError, TimeoutError) as error:
        print(error, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
