"""Where a stage runs and with how many threads: GPU detection, the least busy GPU, CPU shares, its environment."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


# --- devices -------------------------------------------------------------------------------------------------


def detect_gpus(spec: str, environ: Mapping[str, str] | None = None) -> list[str] | None:
    """GPU ids for the local workers: ``auto`` (CUDA_VISIBLE_DEVICES if set, else ``nvidia-smi -L``), ``none``,
    or a comma-separated list. ``None`` means "no GPUs, leave the environment alone"; ``[]`` means "hide them"."""
    environ = os.environ if environ is None else environ
    if spec == "none":
        return []
    if spec != "auto":
        ids = [part.strip() for part in spec.split(",") if part.strip()]
        if not ids:
            raise ValueError(f"--gpus: expected auto, none or ids like 0,1,2; got {spec!r}")
        return ids
    visible = environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        ids = [part.strip() for part in visible.split(",") if part.strip() and part.strip() != "-1"]
        return ids or None
    if shutil.which("nvidia-smi") is None:
        return None
    listing = subprocess.run(["nvidia-smi", "-L"], text=True, capture_output=True)
    ids = [str(i) for i, line in enumerate(listing.stdout.splitlines()) if line.startswith("GPU ")]
    return ids or None


# Thread-pool sizes a stage's libraries read: torch's intra-op pool (OMP), MKL and OpenBLAS (numpy).
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def usable_cpus() -> int:
    """CPU cores this process may run on (its affinity mask, as a container or Slurm sets it), else all of them."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def thread_share(cpus: int, concurrent: int) -> int:
    """CPU threads for each of ``concurrent`` stages on ``cpus`` cores: an equal share, at least one."""
    return max(1, cpus // max(1, concurrent))


def place_stage(devices: Sequence[str], per_device: int, running: Mapping[str, int]) -> str | None:
    """The device for the next stage: the one running the fewest stages (the first listed on a tie) among those
    running fewer than ``per_device``; None when every device is full. ``running`` counts stages per device."""
    if per_device < 1:
        raise ValueError(f"--per-gpu must be at least 1, got {per_device}")
    free = [device for device in devices if running.get(device, 0) < per_device]
    return min(free, key=lambda device: (running.get(device, 0), devices.index(device)), default=None)


def local_slots(n_gpus: int, per_gpu: int | None, workers: int | None) -> tuple[int, int]:
    """(stages per GPU, local workers) for ``--per-gpu`` and ``--workers`` on ``n_gpus`` GPUs.

    Without ``--per-gpu``, ``--workers W`` spreads W stages over the GPUs (ceil(W / GPUs) on the busiest, as the
    round-robin pinning of earlier versions did); without either, one stage per GPU.
    """
    if per_gpu is None:
        per_gpu = -(-workers // n_gpus) if workers else 1
    if workers is None:
        return per_gpu, per_gpu * n_gpus
    if workers > per_gpu * n_gpus:
        raise ValueError(f"--workers {workers} is more than --per-gpu {per_gpu} x {n_gpus} GPU(s) can run at once")
    return per_gpu, workers


def cluster_thread_shares(workers: Mapping[str, Mapping[str, Any]], cpus: Mapping[str, int]) -> dict[str, int]:
    """CPU threads per stage on each worker of a cluster (address -> threads), from ``scheduler_info()['workers']``
    and each worker's core count: the cores of a host shared equally by every stage its workers can run at once.

    A worker runs as many stages at once as it has threads, and on a cluster whose workers offer a ``GPU`` resource
    no more than its ``GPU`` count either (each stage asks for ``GPU=1``; a worker without it gets none): a worker
    started with ``--nthreads 4 --resources GPU=4`` runs four stages on its device, and four such workers on a
    64-core host give each stage 64 // 16 = 4 threads.
    """
    gpu_cluster = any("GPU" in (info.get("resources") or {}) for info in workers.values())

    def slots(info: Mapping[str, Any]) -> int:
        threads = int(info.get("nthreads", 1))
        return min(threads, int((info.get("resources") or {}).get("GPU", 0))) if gpu_cluster else threads

    per_host: dict[str, int] = {}
    for info in workers.values():
        per_host[str(info.get("host"))] = per_host.get(str(info.get("host")), 0) + slots(info)
    return {address: thread_share(int(cpus.get(address, 1)), per_host[str(info.get("host"))])
            for address, info in workers.items()}


def stage_environment(environ: Mapping[str, str], assigned: str | None,
                      threads: int | None = None, force_threads: bool = False) -> tuple[dict[str, str], str]:
    """The environment a stage runs in and a label of its device.

    ``assigned`` is the GPU the runner picked (``""`` hides the GPUs; None: the worker's own). A worker of an external
    cluster has none and passes on its own CUDA_VISIBLE_DEVICES, cut to its first id (dask-cuda lists the worker's
    GPU first, then the others), so that a stage sees only one device. ``threads`` goes into every
    :data:`THREAD_VARIABLES` entry unless OMP_NUM_THREADS is already set (the user's choice wins, as with torchrun),
    or regardless with ``force_threads`` (``--threads-per-stage``).
    """
    env = dict(environ)
    env["PYTHONUNBUFFERED"] = "1"
    device = assigned if assigned is not None else env.get("CUDA_VISIBLE_DEVICES")
    if device is not None:
        device = device.split(",")[0].strip()
        env["CUDA_VISIBLE_DEVICES"] = device
    if threads is not None and (force_threads or "OMP_NUM_THREADS" not in environ):
        env.update({name: str(threads) for name in THREAD_VARIABLES})
    label = f"GPU {device}" if device else "CPU"
    if threads is not None:
        label += f", {env.get('OMP_NUM_THREADS', '?')} thread(s)"
    return env, label


@dataclass(frozen=True)
class Placement:
    """Where the stages run and how many CPU threads each gets."""

    gpus: tuple[str, ...] = ()  # local GPUs the runner hands out itself (at most per_gpu stages each)
    per_gpu: int = 1
    hide_gpus: bool = False  # local CPU workers with --gpus none: the stages see no GPU
    threads: int | None = None  # OMP_NUM_THREADS & co. of every stage; None leaves the environment alone
    force_threads: bool = False  # --threads-per-stage: set them even where OMP_NUM_THREADS is set
    max_running: int | None = None  # local workers, when fewer than len(gpus) * per_gpu
    worker_threads: Mapping[str, int] = field(default_factory=dict)  # a cluster's workers: address -> threads


