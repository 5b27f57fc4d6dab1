"""Device choice, seeding and small run-time helpers shared by every training loop."""

from __future__ import annotations

import os
import random

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
