"""GAN training checkpoints: the run's fingerprint, atomic saves, and exact restores (weights, optimisers,
schedulers, gradient scalers and the RNG state), so that a resumed run ends with an uninterrupted run's weights.

A checkpoint is written at the end of an epoch - every ``gan.checkpoint_every`` epochs, the last one, and (with
``gan.checkpoint_minutes``) the first epoch end that many minutes after the previous checkpoint - so a resume always
starts a whole epoch, whose batch order and jitter come from a generator seeded by (seed, epoch)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from dfgan.core.speed import restore_capturable_lr
from dfgan.data.prepared_arrays import ImageSet
from dfgan.gan.config import GanConfig

CHECKPOINT_FORMAT = 1


@dataclasses.dataclass
class TrainingState:
    """What a checkpoint saves and restores of a run (:class:`dfgan.gan.step.GanModels` adds the loss)."""

    generator: nn.Module
    discriminator: nn.Module
    opt_G: torch.optim.Optimizer
    opt_D: torch.optim.Optimizer
    sched_G: torch.optim.lr_scheduler.LambdaLR
    sched_D: torch.optim.lr_scheduler.LambdaLR
    scaler_G: torch.amp.GradScaler
    scaler_D: torch.amp.GradScaler


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def run_fingerprint(s: GanConfig, size: int, data: ImageSet, stats_path: Path) -> str:
    """Hash of the training config, the training rows and pixels, and the real-statistics file (the config under
    the key "settings", as it always was: an earlier run's checkpoint still resumes)."""
    digest = hashlib.sha256()
    digest.update(json.dumps({"settings": dataclasses.asdict(s), "size": size}, sort_keys=True).encode())
    digest.update(np.ascontiguousarray(data.rows, dtype=np.int64).tobytes())
    digest.update(np.ascontiguousarray(data.images).tobytes())
    digest.update(np.ascontiguousarray(data.masks).tobytes())
    digest.update(sha256_file(stats_path).encode())
    return digest.hexdigest()


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Atomic write: a kill during the save leaves the previous checkpoint intact."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path, fingerprint: str) -> dict[str, Any] | None:
    """The checkpoint at ``path`` if it belongs to this exact run, else None (and the run starts fresh)."""
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a foreign or damaged file: never fatal, just not resumable
        print(f"[train_gan] ignoring unreadable checkpoint {path}: {error}")
        return None
    if state.get("format") != CHECKPOINT_FORMAT or state.get("fingerprint") != fingerprint:
        print(f"[train_gan] checkpoint {path} is from another configuration: starting fresh")
        return None
    return state


def checkpoint_state(
    models: TrainingState, fingerprint: str, epoch: int, steps: int, seconds: float, history: list[dict[str, float]],
    device: torch.device,
) -> dict[str, Any]:
    """Plain tensors, dicts and lists only, so that ``torch.load(weights_only=True)`` reads it."""
    return {
        "format": CHECKPOINT_FORMAT,
        "fingerprint": fingerprint,
        "epoch": epoch,
        "steps": steps,
        "seconds": seconds,
        "history": history,
        "generator": models.generator.state_dict(),
        "discriminator": models.discriminator.state_dict(),
        "opt_G": models.opt_G.state_dict(),
        "opt_D": models.opt_D.state_dict(),
        "sched_G": models.sched_G.state_dict(),
        "sched_D": models.sched_D.state_dict(),
        "scaler_G": models.scaler_G.state_dict(),
        "scaler_D": models.scaler_D.state_dict(),
        "rng_cpu": torch.get_rng_state(),
        "rng_cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else torch.empty(0, dtype=torch.uint8),
    }


def restore_checkpoint(models: TrainingState, state: dict[str, Any], device: torch.device) -> None:
    models.generator.load_state_dict(state["generator"])
    models.discriminator.load_state_dict(state["discriminator"])
    models.opt_G.load_state_dict(state["opt_G"])
    models.opt_D.load_state_dict(state["opt_D"])
    models.sched_G.load_state_dict(state["sched_G"])
    models.sched_D.load_state_dict(state["sched_D"])
    for optimizer in (models.opt_G, models.opt_D):  # CUDA graphs: the rate back into a device tensor
        restore_capturable_lr(optimizer, device)
    for scaler, key in ((models.scaler_G, "scaler_G"), (models.scaler_D, "scaler_D")):
        if state[key]:  # empty when the saving run had no fp16 scaling (e.g. it ran on a CPU)
            scaler.load_state_dict(state[key])
    torch.set_rng_state(state["rng_cpu"])
    if device.type == "cuda" and state["rng_cuda"].numel() > 0:
        torch.cuda.set_rng_state(state["rng_cuda"], device)
