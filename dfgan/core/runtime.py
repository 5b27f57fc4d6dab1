"""Device choice, seeding and small run-time helpers shared by every training loop."""

from __future__ import annotations

import ctypes
import os
import random
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import torch


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when present, else CPU; anything else is passed to ``torch.device``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) so that runs repeat."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def progress_disabled() -> bool:
    """Progress bars stay on in a terminal and in DVC runs; ``DFGAN_NO_PROGRESS=1`` silences them (tests)."""
    return os.environ.get("DFGAN_NO_PROGRESS", "") not in ("", "0")


PR_SET_PDEATHSIG = 1  # linux/prctl.h
PARENT_POLL_SECONDS = 0.5


def _exit_when_orphaned(parent_pid: int) -> None:
    while True:
        time.sleep(PARENT_POLL_SECONDS)
        if os.getppid() != parent_pid:
            os._exit(1)


def die_with_parent(parent_pid: int) -> None:
    """Pool-worker initializer: end this process when ``parent_pid`` dies, even by ``kill -9``.

    On Linux the kernel sends SIGKILL at once (``PR_SET_PDEATHSIG``); elsewhere, and as a fallback, a daemon thread
    notices the re-parenting within half a second. A parent that died before this ran is caught immediately.
    """
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:
        os._exit(1)
    threading.Thread(target=_exit_when_orphaned, args=(parent_pid,), daemon=True).start()


def worker_pool(workers: int) -> ProcessPoolExecutor:
    """A process pool whose workers die with this process (no orphans holding hundreds of MB after a kill)."""
    return ProcessPoolExecutor(max_workers=workers, initializer=die_with_parent, initargs=(os.getpid(),))
